"""The benchmark's peers: the study's model in Keras and the same ResNet in plain torch.nn.

Both build their ResNet from `ageflax.model.architectures` (Keras' own applications for
ResNet50/101/152, which the table matches), train with Adam and MSE on the CPU, and are
fed either a fixed batch or the plain tf.data recipe (`plain_dataset`). The torch peer runs
as people run it at their best: channels_last, ageflax's thread count, bf16 autocast where
ageflax computes in bfloat16, `torch.compile` if asked. Keras, TensorFlow and torch are
imported only when a peer is built.
"""

import math
import os
from collections.abc import Iterator

import jax
import ml_collections
import numpy as np

from ageflax.devtools.bench.report import Options, Report, cores
from ageflax.devtools.bench.timing import seconds
from ageflax.model import architectures


class Peer:
  """A framework's train step, on its fixed batch (`run`) or on a stream (`run_stream`)."""

  description = ""
  first_step_seconds = math.nan  # The first step also builds (Keras: traces) the step.

  def run(self, num_steps: int) -> None:
    raise NotImplementedError

  def run_stream(self, batches: Iterator, num_steps: int) -> None:
    raise NotImplementedError

  def warm_up(self, num_steps: int) -> None:
    """Runs `num_steps` untimed steps, timing the first."""
    self.first_step_seconds = seconds(self.run, 1)
    self.run(num_steps - 1)


class KerasPeer(Peer):
  """The study's model in Keras: ResNet + GlobalAveragePooling2D + Dense(1, relu), Adam, MSE.

  ResNet50/101/152 are `keras.applications` (v1, as the study used); the smaller
  architectures, which Keras does not ship, are the v1.5 layout of ageflax's models in
  `keras.layers`. Images go in as float32 pixels in [0, 255].
  """

  def __init__(self, config: ml_collections.ConfigDict, batch: dict[str, np.ndarray]):
    import keras
    import tensorflow as tf

    size = config.data.image_size
    backbone = _keras_backbone(keras, config.model.name, size)
    self.model = keras.Sequential([backbone, keras.layers.GlobalAveragePooling2D(),
                                   keras.layers.Dense(1, activation="relu")])
    self.model.compile(optimizer=keras.optimizers.Adam(config.optim.learning_rate,
                                                       epsilon=config.optim.eps), loss="mse")
    self.images = tf.constant(batch["image"], tf.float32)
    self.ages = tf.constant(batch["age"])
    kind = "applications" if config.model.name in KERAS_APPLICATIONS else "layers"
    self.description = (f"keras/{keras.backend.backend()} {config.model.name} ({kind}), "
                        "train_on_batch")

  def run(self, num_steps: int) -> None:
    for _ in range(num_steps):
      self.model.train_on_batch(self.images, self.ages)

  def run_stream(self, batches: Iterator, num_steps: int) -> None:
    for _ in range(num_steps):
      images, ages = next(batches)
      self.model.train_on_batch(images, ages)


# Keras ships these as applications (v1, as the study used); `architectures` must match them.
KERAS_APPLICATIONS = {"resnet50": "ResNet50", "resnet101": "ResNet101",
                      "resnet152": "ResNet152"}


def _keras_backbone(keras, model_name: str, image_size: int):
  if model_name in KERAS_APPLICATIONS:
    application = getattr(keras.applications, KERAS_APPLICATIONS[model_name])
    return application(weights=None, include_top=False, input_shape=(image_size, image_size, 3))
  layers = keras.layers
  architecture = architectures.get(model_name)

  def conv_norm(x, features, kernel, strides=1, relu=True):
    x = layers.Conv2D(features, kernel, strides, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5)(x)
    return layers.ReLU()(x) if relu else x

  inputs = keras.Input((image_size, image_size, 3))
  x = conv_norm(inputs, architecture.width, architecture.stem_kernel, 2)
  if architecture.pool_size:
    x = layers.MaxPooling2D(architecture.pool_size, 2, padding="same")(x)
  for block in architecture.blocks():
    if architecture.block == "basic":
      y = conv_norm(conv_norm(x, block.width, 3, block.strides), block.out_features, 3,
                    relu=False)
    else:
      y = conv_norm(conv_norm(x, block.width, 1), block.width, 3, block.strides)
      y = conv_norm(y, block.out_features, 1, relu=False)
    if block.has_projection:
      x = conv_norm(x, block.out_features, 1, block.strides, relu=False)
    x = layers.ReLU()(layers.Add()([y, x]))
  return keras.Model(inputs, x)


def torch_resnet(model_name: str):
  """ageflax's ResNet (v1.5: the stride on the 3x3) + GAP + Linear(1) + ReLU in torch.nn.

  Args:
    model_name: a key of `architectures.ARCHITECTURES`.

  Returns:
    A `torch.nn.Module` mapping float32 NCHW images to ages [B].
  """
  from torch import nn

  architecture = architectures.get(model_name)
  residual = _torch_residual_class()
  blocks = []
  for block in architecture.blocks():
    body = _torch_block_body(nn, architecture.block, block)
    shortcut = (nn.Sequential(*_torch_conv_norm(nn, block.in_features, block.out_features, 1,
                                                block.strides, relu=False))
                if block.has_projection else nn.Identity())
    blocks.append(residual(nn.Sequential(*body), shortcut))
  stem = _torch_conv_norm(nn, 3, architecture.width, architecture.stem_kernel, 2)
  pool = ([nn.MaxPool2d(architecture.pool_size, 2, (architecture.pool_size - 1) // 2)]
          if architecture.pool_size else [])
  return nn.Sequential(*stem, *pool, *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                       nn.Linear(architecture.num_features, 1), nn.ReLU(), nn.Flatten(0))


def _torch_residual_class():
  """A torch.nn module class computing relu(body(x) + shortcut(x))."""
  import torch
  from torch import nn

  class Residual(nn.Module):
    """relu(body(x) + shortcut(x))."""

    def __init__(self, body: nn.Module, shortcut: nn.Module):
      super().__init__()
      self.body, self.shortcut = body, shortcut

    def forward(self, x):
      return torch.relu(self.body(x) + self.shortcut(x))

  return Residual


def _torch_conv_norm(nn, cin: int, cout: int, kernel: int, strides: int = 1,
                     relu: bool = True) -> list:
  layers = [nn.Conv2d(cin, cout, kernel, strides, (kernel - 1) // 2, bias=False),
            nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)]
  return [*layers, nn.ReLU(inplace=True)] if relu else layers


def _torch_block_body(nn, kind: str, block: architectures.BlockShape) -> list:
  """The layers of one residual block's body: two 3x3 (basic) or 1x1, 3x3, 1x1 (bottleneck)."""
  if kind == "basic":
    return [*_torch_conv_norm(nn, block.in_features, block.width, 3, block.strides),
            *_torch_conv_norm(nn, block.width, block.out_features, 3, relu=False)]
  return [*_torch_conv_norm(nn, block.in_features, block.width, 1),
          *_torch_conv_norm(nn, block.width, block.width, 3, block.strides),
          *_torch_conv_norm(nn, block.width, block.out_features, 1, relu=False)]


class TorchPeer(Peer):
  """`torch_resnet` trained with Adam and MSE on the CPU, as people run it at their best.

  channels_last memory, as many intra-op threads as ageflax has CPU cores, bf16 autocast
  (float32 parameters and loss) where ageflax computes in bfloat16, and, if asked,
  `torch.compile`.
  """

  def __init__(self, config: ml_collections.ConfigDict, batch: dict[str, np.ndarray],
               compile_model: bool = False):
    import torch

    self._torch = torch
    torch.set_num_threads(cores())
    model = torch_resnet(config.model.name).to(memory_format=torch.channels_last)
    model.train()
    self.optimizer = torch.optim.Adam(model.parameters(), lr=config.optim.learning_rate,
                                      eps=config.optim.eps)
    self.model = torch.compile(model) if compile_model else model
    self.autocast = config.model.dtype == "bfloat16"
    self.images, self.ages = self.to_tensors(batch["image"], batch["age"])
    self.description = (f"torch.nn {config.model.name}, channels_last"
                        f"{', bf16 autocast' if self.autocast else ''}"
                        f"{', torch.compile' if compile_model else ''}, Adam")

  def to_tensors(self, images: np.ndarray, ages: np.ndarray):
    """NHWC numpy pixels -> float32 NCHW in channels_last memory, and ages."""
    torch = self._torch
    # tf.data hands out read-only arrays, which torch will not wrap without a copy.
    images, ages = (np.require(array, requirements="W") for array in (images, ages))
    images = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    return images.contiguous(memory_format=torch.channels_last), torch.from_numpy(ages)

  def _step(self, images, ages) -> None:
    torch = self._torch
    self.optimizer.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.autocast):
      predictions = self.model(images)
    loss = torch.nn.functional.mse_loss(predictions.float(), ages)
    loss.backward()
    self.optimizer.step()

  def run(self, num_steps: int) -> None:
    for _ in range(num_steps):
      self._step(self.images, self.ages)

  def run_stream(self, batches: Iterator, num_steps: int) -> None:
    for _ in range(num_steps):
      self._step(*self.to_tensors(*next(batches)))


def create_peers(
    config: ml_collections.ConfigDict, options: Options, batch: dict[str, np.ndarray],
    report: Report,
) -> dict[str, Peer]:
  """The peers that can run here, past their warm-up; a note says why any other is skipped."""
  platform = jax.devices()[0].platform
  if platform != "cpu":
    report.note(f"peers skipped: they run on the CPU here, ageflax on {platform}")
    return {}
  peers = {}
  for name in options.peers:
    try:
      peer = (KerasPeer(config, batch) if name == "keras"
              else TorchPeer(config, batch, options.torch_compile))
    except ImportError as e:
      hint = " (pip install -r requirements-peers.txt)" if name == "torch" else ""
      report.note(f"{name} peer skipped: {e}{hint}")
      continue
    peer.warm_up(options.warmup_steps)
    peers[name] = peer
  return peers


def plain_dataset(
    paths: list[str], ages: np.ndarray, config: ml_collections.ConfigDict, batch_size: int
):
  """The plain tf.data recipe, repeated: decode, resize, random flip; float32 batches.

  Args:
    paths: image files.
    ages: their ages.
    config: the `data` config section (image size, threads and prefetch, as ageflax's).
    batch_size: images per batch.

  Returns:
    A `tf.data.Dataset` of (images float32 [B, S, S, 3] in [0, 255], ages [B]).
  """
  import tensorflow as tf

  size = config.image_size

  @tf.autograph.experimental.do_not_convert  # Plain ops, nothing for AutoGraph to convert.
  def load(path, age):
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    return tf.image.random_flip_left_right(tf.image.resize(image, [size, size])), age

  dataset = tf.data.Dataset.from_tensor_slices((list(paths), ages)).repeat()
  dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE)
  options = tf.data.Options()
  options.threading.private_threadpool_size = config.num_threads or os.cpu_count()
  dataset = dataset.batch(batch_size, drop_remainder=True).with_options(options)
  return dataset.prefetch(config.prefetch_batches)
