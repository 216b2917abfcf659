"""Benchmarks of ageflax, section by section and beside its peers, in one run.

What `scripts/benchmark.py` prints and writes as JSON. Each figure is timed in several
repetitions after warm-up and reported as median and min-max:

- input_pipeline: images/s of the tf.data training stream alone (the config's image store
  and full augmentation; the same decoding from files; the store alone when the train step
  augments, `data.augment.placement='device'`; the plain recipe of decode + resize + flip in
  tf.data), also per CPU core;
- train_step: images/s of the compiled train step on a fixed device-resident batch, with the
  compile time apart, and of the step that also augments the batch (placement 'device');
- end_to_end: images/s of train steps fed by the input pipeline from a data folder;
- utilisation: FLOP/s achieved by the step (from the compiled step's cost analysis, or the
  known ResNet count) against a matrix product timed in the same run;
- peers: the study's model in Keras and the same ResNet in plain torch.nn, at the same
  resolution, batch and data, timed in the same rounds as ageflax, taking turns, because a
  shared machine is noisy.

TensorFlow, Keras and torch are imported only where they are used, so the train-step section
runs where TensorFlow is absent; a missing peer is skipped with a note.
"""

import dataclasses
import importlib.metadata
import json
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from ageflax import augment as augment_lib
from ageflax import models, optimizers, reporting, sharding, synthetic
from ageflax import steps as steps_lib
from ageflax.errors import ConfigError

SECTIONS = ("input_pipeline", "train_step", "end_to_end", "utilisation", "peers")
PEERS = ("keras", "torch")
# Side of the synthetic photos written when no data folder is given (UTKFace's size).
SYNTHETIC_PHOTO_SIZE = 200
# Batches drawn before each timed pipeline window, so that tf.data's autotuner has settled.
PIPELINE_WARMUP_BATCHES = 5
_HEAD_BIAS = 30.0


@dataclasses.dataclass(frozen=True)
class Options:
  """What to measure and for how long; the model, resolution and batch come from the config."""

  sections: tuple[str, ...] = SECTIONS
  peers: tuple[str, ...] = PEERS
  repeats: int = 3  # Timed repetitions of every figure.
  steps: int = 2  # Train steps per repetition.
  warmup_steps: int = 1  # Untimed steps of each contender after compilation.
  pipeline_batches: int = 20  # Batches per repetition of the input-pipeline figures.
  synthetic_faces: int = 512  # Faces written to a temp dir when no data folder is given.
  matmul_size: int = 2048  # Side of the square matrices of the peak-rate product.


@dataclasses.dataclass(frozen=True)
class Figure:
  """The repeated measurements of one rate."""

  values: tuple[float, ...]
  unit: str = "images/s"

  @property
  def median(self) -> float:
    return statistics.median(self.values)

  def scaled(self, factor: float, unit: str) -> "Figure":
    return Figure(tuple(value * factor for value in self.values), unit)

  def to_dict(self) -> dict:
    return {"median": self.median, "min": min(self.values), "max": max(self.values),
            "values": list(self.values), "unit": self.unit}


@dataclasses.dataclass
class Report:
  """Figures by section, ratio lines and notes; printed as a table and written as JSON."""

  settings: dict
  sections: dict[str, dict[str, dict]] = dataclasses.field(default_factory=dict)
  ratios: dict[str, float] = dataclasses.field(default_factory=dict)
  notes: list[str] = dataclasses.field(default_factory=list)
  _rows: list[tuple[str, str, Figure, str]] = dataclasses.field(default_factory=list)

  def add(self, section: str, name: str, what: str, figure: Figure, extra: str = "",
          **fields) -> None:
    """Records one figure; `fields` go to the JSON beside it, `extra` to the table."""
    self.sections.setdefault(section, {})[name] = {"what": what, **figure.to_dict(), **fields}
    self._rows.append((section, what, figure, extra))

  def add_ratio(self, section: str, numerator: str, denominator: str) -> None:
    """Median over median of two figures of `section`, when both were measured."""
    figures = self.sections.get(section, {})
    if numerator in figures and denominator in figures:
      ratio = figures[numerator]["median"] / figures[denominator]["median"]
      self.ratios[f"{section} {numerator}/{denominator}"] = ratio

  def note(self, text: str) -> None:
    self.notes.append(text)
    reporting.log("%s", text)

  def text(self) -> str:
    """The table, the notes and one `ratio SECTION A/B: X.XX` line per ratio."""
    settings = self.settings
    lines = [settings["title"], f"data: {settings.get('data', 'none read (fixed batch only)')}",
             f"timing: median and min-max of {settings['repeats']} repetitions of "
             f"{settings['steps']} step(s) ({settings['pipeline_batches']} batches for "
             f"pipelines) after {settings['warmup_steps']} warm-up step(s), taking turns",
             f"{'section':<15}{'what':<58}{'median':>10}  {'min-max':<19}{'unit':<10}"]
    for section, what, figure, extra in self._rows:
      spread = f"{_number(min(figure.values))}-{_number(max(figure.values))}"
      lines.append(f"{section:<15}{what:<58}{_number(figure.median):>10}  {spread:<19}"
                   f"{figure.unit:<10}{extra}")
    lines += [f"note: {note}" for note in self.notes]
    lines += [f"ratio {name}: {value:.2f}" for name, value in self.ratios.items()]
    return "\n".join(lines)

  def to_json(self) -> dict:
    return {"settings": self.settings, "sections": self.sections, "ratios": self.ratios,
            "notes": self.notes}

  def write_json(self, path: str) -> None:
    with open(path, "w") as f:
      json.dump(self.to_json(), f, indent=2)


def _number(value: float) -> str:
  return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3g}"


# Timing helpers.


def _seconds(fn: Callable, *args) -> float:
  started = time.perf_counter()
  fn(*args)
  return time.perf_counter() - started


def interleaved_rates(
    runners: dict[str, Callable[[int], None]], steps: int, repeats: int, items_per_step: int
) -> dict[str, Figure]:
  """Times `steps` steps of every runner per round, the first runner rotating each round.

  Args:
    runners: name -> run(num_steps), which returns once the steps are done.
    steps: steps per timed repetition.
    repeats: rounds; each runner is timed once per round.
    items_per_step: images per step.

  Returns:
    name -> one rate (items/s) per round.
  """
  names = list(runners)
  rates = {name: [] for name in names}
  for round_index in range(repeats):
    shift = round_index % len(names)
    for name in names[shift:] + names[:shift]:
      rates[name].append(steps * items_per_step / _seconds(runners[name], steps))
    reporting.log("round %d/%d: %s", round_index + 1, repeats,
                  ", ".join(f"{name} {rates[name][-1]:.1f}" for name in names))
  return {name: Figure(tuple(values)) for name, values in rates.items()}


def pipeline_rates(
    pipelines: dict[str, Callable[[], Iterator]], batches: int, repeats: int, batch_size: int
) -> dict[str, Figure]:
  """Images/s of each stream, restarted, warmed up and timed over `batches` per round.

  A stream left running between windows would fill its prefetch buffers for free while
  another is timed, so every window starts from a fresh iterator past its warm-up.
  """
  names = list(pipelines)
  rates = {name: [] for name in names}
  for round_index in range(repeats):
    shift = round_index % len(names)
    for name in names[shift:] + names[:shift]:
      iterator = pipelines[name]()
      _draw(iterator, PIPELINE_WARMUP_BATCHES)
      rates[name].append(batches * batch_size / _seconds(_draw, iterator, batches))
      del iterator
  return {name: Figure(tuple(values)) for name, values in rates.items()}


def _draw(iterator: Iterator, count: int) -> None:
  for _ in range(count):
    next(iterator)


def matmul_rate(size: int, dtype: str, repeats: int, products: int = 5) -> Figure:
  """FLOP/s of a jitted size x size matrix product (2 size^3 FLOPs), per repetition."""
  keys = jax.random.split(jax.random.key(0))
  a, b = (jax.random.normal(key, (size, size), jnp.dtype(dtype)) for key in keys)
  product = jax.jit(jnp.matmul)
  product(a, b).block_until_ready()

  def run() -> None:
    for _ in range(products):
      out = product(a, b)
    out.block_until_ready()

  return Figure(tuple(2 * size**3 * products / _seconds(run) for _ in range(repeats)), "FLOP/s")


def resnet_train_flops_per_image(model_name: str, image_size: int) -> float:
  """The known count: 2 FLOPs per multiply-add of the convolutions and head, x3 for training.

  Backward costs twice the forward pass (gradients of activations and of weights).
  """
  architecture = models.ARCHITECTURES[model_name]
  width, expansion = architecture.get("width", 64), architecture["block_cls"].expansion
  size = -(-image_size // 2)  # the stem's stride-2 convolution
  macs = size * size * 7 * 7 * 3 * width
  size, in_features = -(-size // 2), width  # the stride-2 max pool
  for stage, num_blocks in enumerate(architecture["stage_sizes"]):
    block_width = width * 2**stage
    out_features = block_width * expansion
    for index in range(num_blocks):
      out_size = -(-size // 2) if stage > 0 and index == 0 else size
      if expansion == 1:
        convs = [(out_size, 9, in_features, block_width), (out_size, 9, block_width, block_width)]
      else:
        convs = [(size, 1, in_features, block_width), (out_size, 9, block_width, block_width),
                 (out_size, 1, block_width, out_features)]
      if in_features != out_features or out_size != size:
        convs.append((out_size, 1, in_features, out_features))
      macs += sum(side * side * taps * cin * cout for side, taps, cin, cout in convs)
      size, in_features = out_size, out_features
  return 6.0 * (macs + in_features)


# ageflax's step.


@dataclasses.dataclass
class AgeflaxStep:
  """The compiled train step and its state, which every run advances."""

  compiled: Callable
  state: steps_lib.TrainState
  mesh: jax.sharding.Mesh
  batch_size: int
  compile_seconds: float
  flops_per_image: float | None  # from the compiled step's cost analysis

  def run(self, batch: dict[str, jax.Array], num_steps: int) -> None:
    """`num_steps` steps on one device-resident batch."""
    for _ in range(num_steps):
      self.state, metrics = self.compiled(self.state, batch)
    jax.block_until_ready(metrics)

  def run_stream(self, batches: Iterator[dict[str, np.ndarray]], num_steps: int) -> None:
    """`num_steps` steps on the next host batches of a stream, as the trainer runs them."""
    for _ in range(num_steps):
      batch = sharding.global_batch(next(batches), self.mesh, self.batch_size)
      self.state, metrics = self.compiled(self.state, batch)
    jax.block_until_ready(metrics)


def compile_ageflax_step(
    config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh, batch: dict[str, jax.Array]
) -> AgeflaxStep:
  """`steps.jit_train_step` for `config`, compiled ahead of time for `batch`'s shapes."""
  schedule = optimizers.create_learning_rate_schedule(config.optim, total_steps=10_000,
                                                      steps_per_epoch=100)
  optimizer = optimizers.create_optimizer(config.optim, schedule)
  graphdef, state = steps_lib.create_train_state(config, optimizer, mesh, _HEAD_BIAS)
  jitted = steps_lib.jit_train_step(graphdef, optimizer, config.train, mesh, config.data.augment,
                                    config.seed)
  started = time.perf_counter()
  compiled = jitted.lower(state, batch).compile()
  compile_seconds = time.perf_counter() - started
  flops = _cost_analysis_flops(compiled)
  # Under SPMD the compiled program is one device's share of the global batch.
  flops_per_image = flops * mesh.size / config.train.batch_size if flops else None
  return AgeflaxStep(compiled, state, mesh, config.train.batch_size, compile_seconds,
                     flops_per_image)


def _cost_analysis_flops(compiled) -> float | None:
  try:
    analysis = compiled.cost_analysis()
  except (NotImplementedError, jax.errors.JaxRuntimeError):  # the known count stands in
    return None
  if isinstance(analysis, list | tuple):
    analysis = analysis[0] if analysis else {}
  flops = (analysis or {}).get("flops")
  return float(flops) if flops and math.isfinite(flops) and flops > 0 else None


def synthetic_batch(batch_size: int, image_size: int, seed: int = 0) -> dict[str, np.ndarray]:
  """Random uint8 images and ages: the fixed batch every framework trains on."""
  rng = np.random.default_rng(seed)
  return {"image": rng.integers(0, 256, (batch_size, image_size, image_size, 3), np.uint8),
          "age": rng.uniform(1, 90, batch_size).astype(np.float32)}


# The peers.


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
    self.first_step_seconds = _seconds(self.run, 1)
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
    kind = "applications" if config.model.name in _KERAS_APPLICATIONS else "layers"
    self.description = (f"keras/{keras.backend.backend()} {config.model.name} ({kind}), "
                        "train_on_batch")

  def run(self, num_steps: int) -> None:
    for _ in range(num_steps):
      self.model.train_on_batch(self.images, self.ages)

  def run_stream(self, batches: Iterator, num_steps: int) -> None:
    for _ in range(num_steps):
      images, ages = next(batches)
      self.model.train_on_batch(images, ages)


_KERAS_APPLICATIONS = {"resnet50": "ResNet50", "resnet101": "ResNet101",
                       "resnet152": "ResNet152"}


def _keras_backbone(keras, model_name: str, image_size: int):
  if model_name in _KERAS_APPLICATIONS:
    application = getattr(keras.applications, _KERAS_APPLICATIONS[model_name])
    return application(weights=None, include_top=False, input_shape=(image_size, image_size, 3))
  layers = keras.layers
  architecture = models.ARCHITECTURES[model_name]
  width, expansion = architecture.get("width", 64), architecture["block_cls"].expansion

  def conv_norm(x, features, kernel, strides=1, relu=True):
    x = layers.Conv2D(features, kernel, strides, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5)(x)
    return layers.ReLU()(x) if relu else x

  inputs = keras.Input((image_size, image_size, 3))
  x = layers.MaxPooling2D(3, 2, padding="same")(conv_norm(inputs, width, 7, 2))
  in_features = width
  for stage, num_blocks in enumerate(architecture["stage_sizes"]):
    block_width = width * 2**stage
    out_features = block_width * expansion
    for index in range(num_blocks):
      strides = 2 if stage > 0 and index == 0 else 1
      if expansion == 1:
        y = conv_norm(conv_norm(x, block_width, 3, strides), out_features, 3, relu=False)
      else:
        y = conv_norm(conv_norm(x, block_width, 1), block_width, 3, strides)
        y = conv_norm(y, out_features, 1, relu=False)
      if in_features != out_features or strides != 1:
        x = conv_norm(x, out_features, 1, strides, relu=False)
      x, in_features = layers.ReLU()(layers.Add()([y, x])), out_features
  return keras.Model(inputs, x)


def torch_resnet(model_name: str):
  """ageflax's ResNet (v1.5: the stride on the 3x3) + GAP + Linear(1) + ReLU in torch.nn.

  Args:
    model_name: a key of `models.ARCHITECTURES`.

  Returns:
    A `torch.nn.Module` mapping float32 NCHW images to ages [B].
  """
  import torch
  from torch import nn

  class Residual(nn.Module):
    """relu(body(x) + shortcut(x))."""

    def __init__(self, body: nn.Module, shortcut: nn.Module):
      super().__init__()
      self.body, self.shortcut = body, shortcut

    def forward(self, x):
      return torch.relu(self.body(x) + self.shortcut(x))

  def conv_norm(cin, cout, kernel, strides=1, relu=True) -> list:
    layers = [nn.Conv2d(cin, cout, kernel, strides, (kernel - 1) // 2, bias=False),
              nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)]
    return [*layers, nn.ReLU(inplace=True)] if relu else layers

  architecture = models.ARCHITECTURES[model_name]
  width, expansion = architecture.get("width", 64), architecture["block_cls"].expansion
  blocks, in_features = [], width
  for stage, num_blocks in enumerate(architecture["stage_sizes"]):
    block_width = width * 2**stage
    out_features = block_width * expansion
    for index in range(num_blocks):
      strides = 2 if stage > 0 and index == 0 else 1
      body = ([*conv_norm(in_features, block_width, 3, strides),
               *conv_norm(block_width, out_features, 3, relu=False)] if expansion == 1 else
              [*conv_norm(in_features, block_width, 1),
               *conv_norm(block_width, block_width, 3, strides),
               *conv_norm(block_width, out_features, 1, relu=False)])
      shortcut = (nn.Identity() if in_features == out_features and strides == 1 else
                  nn.Sequential(*conv_norm(in_features, out_features, 1, strides, relu=False)))
      blocks.append(Residual(nn.Sequential(*body), shortcut))
      in_features = out_features
  return nn.Sequential(*conv_norm(3, width, 7, 2), nn.MaxPool2d(3, 2, 1), *blocks,
                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_features, 1),
                       nn.ReLU(), nn.Flatten(0))


class TorchPeer(Peer):
  """`torch_resnet` trained with Adam and MSE on the CPU, channels_last, float32."""

  def __init__(self, config: ml_collections.ConfigDict, batch: dict[str, np.ndarray]):
    import torch

    self._torch = torch
    self.model = torch_resnet(config.model.name).to(memory_format=torch.channels_last)
    self.model.train()
    self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.optim.learning_rate,
                                      eps=config.optim.eps)
    self.images, self.ages = self.to_tensors(batch["image"], batch["age"])
    self.description = f"torch.nn {config.model.name}, channels_last, Adam"

  def to_tensors(self, images: np.ndarray, ages: np.ndarray):
    """NHWC numpy pixels -> float32 NCHW in channels_last memory, and ages."""
    torch = self._torch
    # tf.data hands out read-only arrays, which torch will not wrap without a copy.
    images, ages = (np.require(array, requirements="W") for array in (images, ages))
    images = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    return images.contiguous(memory_format=torch.channels_last), torch.from_numpy(ages)

  def _step(self, images, ages) -> None:
    self.optimizer.zero_grad(set_to_none=True)
    loss = self._torch.nn.functional.mse_loss(self.model(images), ages)
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
      peer = (KerasPeer if name == "keras" else TorchPeer)(config, batch)
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


# The sections.


def prepare_data(report: Report, config: ml_collections.ConfigDict, options: Options,
                 scratch: str):
  """`input_pipeline.prepare` of the data folder, or of synthetic faces written to `scratch`.

  Returns None, with a note, where TensorFlow is absent.
  """
  try:
    from ageflax import input_pipeline
  except ImportError as e:
    report.note(f"input_pipeline and end_to_end skipped: {e}")
    return None
  source = config.data.dir
  if not source:
    config.data.dir = os.path.join(scratch, "faces")
    synthetic.write_synthetic_faces(config.data.dir, options.synthetic_faces, seed=config.seed,
                                    image_size=SYNTHETIC_PHOTO_SIZE)
    source = (f"{options.synthetic_faces} synthetic {SYNTHETIC_PHOTO_SIZE}x"
              f"{SYNTHETIC_PHOTO_SIZE} faces (ageflax.synthetic, temp dir)")
  started = time.perf_counter()
  data = input_pipeline.prepare(config.data, problems_path=None)
  seconds = time.perf_counter() - started
  report.settings["data"] = (f"{source}: {len(data.store)} photos, "
                            f"{len(data.indices('train'))} train")
  if "input_pipeline" in options.sections:
    figure = Figure((len(data.store) / seconds,))
    report.add("input_pipeline", "prepare", "ageflax prepare: decode+resize each photo once",
               figure, _per_core(figure), per_core=figure.scaled(1 / _cores(), "images/s/core")
               .to_dict())
  return data


def _cores() -> int:
  return len(os.sched_getaffinity(0))


def _per_core(figure: Figure) -> str:
  return f"{figure.median / _cores():.1f} per core"


def with_placement(config: ml_collections.ConfigDict, placement: str) -> ml_collections.ConfigDict:
  """A copy of `config` that augments on the 'host' (tf.data) or the 'device' (train step)."""
  config = config.copy_and_resolve_references()
  config.data.augment.placement = placement
  return config


def _augmentation(config: ml_collections.ConfigDict) -> str:
  names = {"flip": "flip", "rotation_degrees": "rotate", "shift_fraction": "shift",
           "zoom_fraction": "zoom", "brightness": "brightness", "contrast": "contrast"}
  return "/".join(name for field, name in names.items() if config.augment[field]) or "no aug"


def input_pipeline_section(report: Report, config: ml_collections.ConfigDict, options: Options,
                           data) -> None:
  """Images/s of the training streams alone, and the ratios ageflax/plain.

  ageflax's stream augmenting on the host, the same decoding every photo from its file when
  the config caches them, ageflax's stream that leaves augmentation to the train step
  (placement 'device': the store and batching alone), and the plain recipe.
  """
  from ageflax import input_pipeline

  batch_size, train = config.train.batch_size, data.indices("train")
  rows = input_pipeline.HostRows(0, batch_size)
  num_steps = PIPELINE_WARMUP_BATCHES + options.pipeline_batches

  def ageflax_stream(store, placement):
    data_config = with_placement(config, placement).data
    return lambda: input_pipeline.as_numpy(input_pipeline.train_dataset(
        store, train, batch_size, rows, config.seed, 0, num_steps, data_config), config.data.dir)

  augmentation = _augmentation(config.data)
  source = "cache" if data.store.cache is not None else "decode+resize"
  pipelines = {"ageflax": ageflax_stream(data.store, "host")}
  whats = {"ageflax": f"ageflax tf.data: {source} + {augmentation}"}
  if data.store.cache is not None:
    pipelines["ageflax_uncached"] = ageflax_stream(dataclasses.replace(data.store, cache=None),
                                                   "host")
    whats["ageflax_uncached"] = f"ageflax tf.data: decode+resize + {augmentation}"
  pipelines["ageflax_device_augment"] = ageflax_stream(data.store, "device")
  whats["ageflax_device_augment"] = f"ageflax tf.data: {source} only (augment on device)"
  paths = _train_paths(report, data)
  if paths:
    pipelines["plain"] = lambda: plain_dataset(paths, data.store.ages[train], config.data,
                                               batch_size).as_numpy_iterator()
    whats["plain"] = "plain tf.data: decode+resize + flip"
  figures = pipeline_rates(pipelines, options.pipeline_batches, options.repeats, batch_size)
  for name, figure in figures.items():
    report.add("input_pipeline", name, whats[name], figure, _per_core(figure),
               per_core=figure.scaled(1 / _cores(), "images/s/core").to_dict())
  report.add_ratio("input_pipeline", "ageflax", "plain")
  report.add_ratio("input_pipeline", "ageflax_uncached", "plain")
  report.add_ratio("input_pipeline", "ageflax_device_augment", "plain")


def train_step_section(report: Report, options: Options, step: AgeflaxStep, peers: dict[str, Peer],
                       batch: dict[str, jax.Array], augmenting: AgeflaxStep | None = None,
                       augmentation: str = "") -> None:
  """Images/s of each framework's train step on a fixed batch, in interleaved rounds.

  `step` trains on the batch as it is; `augmenting`, when given, augments it first
  (`augmentation` names what it does), so the cost of augmenting on the device shows.
  """
  runners = {"ageflax": lambda num_steps: step.run(batch, num_steps)}
  if augmenting is not None:
    runners["ageflax_device_augment"] = lambda num_steps: augmenting.run(batch, num_steps)
  runners.update({name: peer.run for name, peer in peers.items()})
  figures = interleaved_rates(runners, options.steps, options.repeats, step.batch_size)
  report.add("train_step", "ageflax", "ageflax jitted step, device-resident batch",
             figures["ageflax"], f"compile {step.compile_seconds:.1f} s",
             compile_seconds=step.compile_seconds)
  if augmenting is not None:
    report.add("train_step", "ageflax_device_augment",
               f"ageflax jitted step + {augmentation} on device", figures["ageflax_device_augment"],
               f"compile {augmenting.compile_seconds:.1f} s",
               compile_seconds=augmenting.compile_seconds)
    report.add_ratio("train_step", "ageflax_device_augment", "ageflax")
  for name, peer in peers.items():
    report.add("train_step", name, peer.description, figures[name],
               f"first step {peer.first_step_seconds:.1f} s",
               first_step_seconds=peer.first_step_seconds)
    report.add_ratio("train_step", "ageflax", name)


def end_to_end_section(report: Report, config: ml_collections.ConfigDict, options: Options,
                       data, step: AgeflaxStep, peers: dict[str, Peer]) -> None:
  """Images/s of train steps fed from the data folder, in interleaved rounds after warm-up.

  ageflax is fed by its own training stream; the peers by the plain tf.data recipe.
  """
  from ageflax import input_pipeline

  batch_size, train = config.train.batch_size, data.indices("train")
  total_steps = options.warmup_steps + options.repeats * options.steps
  stream = input_pipeline.as_numpy(input_pipeline.train_dataset(
      data.store, train, batch_size, input_pipeline.HostRows(0, batch_size), config.seed, 0,
      total_steps, config.data), config.data.dir)
  runners = {"ageflax": lambda num_steps: step.run_stream(stream, num_steps)}
  whats = {"ageflax": "ageflax step fed by its tf.data stream"}
  paths = _train_paths(report, data) if peers else None
  for name, peer in (peers if paths else {}).items():
    plain = plain_dataset(paths, data.store.ages[train], config.data, batch_size)
    batches = iter(plain) if name == "keras" else plain.as_numpy_iterator()
    runners[name] = _stream_runner(peer, batches)
    whats[name] = f"{name} step fed by plain tf.data (decode+resize+flip)"
  for runner in runners.values():
    runner(options.warmup_steps)
  figures = interleaved_rates(runners, options.steps, options.repeats, batch_size)
  for name, figure in figures.items():
    report.add("end_to_end", name, whats[name], figure)
    if name != "ageflax":
      report.add_ratio("end_to_end", "ageflax", name)


def _train_paths(report: Report, data) -> list[str] | None:
  """The training photos' files for the plain recipe; None, with a note, without files."""
  if len(data.store.paths) != len(data.store):
    report.note("the plain recipe reads image files; this data source holds bytes: skipped")
    return None
  return [data.store.paths[i] for i in data.indices("train")]


def _stream_runner(peer, batches: Iterator) -> Callable[[int], None]:
  return lambda num_steps: peer.run_stream(batches, num_steps)


def utilisation_section(report: Report, config: ml_collections.ConfigDict, options: Options,
                        step: AgeflaxStep) -> None:
  """FLOP/s achieved by every measured train step against a matrix product's, as a fraction.

  Every framework is credited with the same FLOPs per image: the compiled ageflax step's
  cost analysis where the backend reports it, else the known ResNet count.
  """
  size, dtype = options.matmul_size, config.model.dtype
  peak = matmul_rate(size, dtype, options.repeats).scaled(1e-9, "GFLOP/s")
  report.add("utilisation", "matmul", f"{dtype} {size}x{size} matrix product (jnp)", peak)
  known = resnet_train_flops_per_image(config.model.name, config.data.image_size)
  per_image = step.flops_per_image or known
  source = "cost_analysis" if step.flops_per_image else "known ResNet count"
  for section in ("train_step", "end_to_end"):
    for name, entry in list(report.sections.get(section, {}).items()):
      achieved = Figure(tuple(entry["values"])).scaled(per_image * 1e-9, "GFLOP/s")
      fraction = achieved.median / peak.median
      report.add("utilisation", f"{section} {name}", f"{name} {section.replace('_', ' ')}",
                 achieved, f"{fraction:.3f} of matmul", fraction=fraction,
                 flops_per_image=per_image, flops_source=source,
                 known_flops_per_image=known)


# The whole run.


def configure(config: ml_collections.ConfigDict, *, model: str = "", image_size: int = 0,
              batch_size: int = 0, data_dir: str = "") -> ml_collections.ConfigDict:
  """A copy of `config` with the benchmark's overrides; an empty or 0 one keeps the config's."""
  config = config.copy_and_resolve_references()
  # The peers train the study's Dense(1) with MSE; so does ageflax here, for a like comparison.
  config.model.head, config.train.loss, config.train.label_sigma = "relu", "l2", 0.0
  if model:
    config.model.name = model
  if image_size:
    config.data.image_size = image_size
  if batch_size:
    config.train.batch_size = batch_size
  if data_dir:
    config.data.dir = data_dir
  if config.model.name not in models.ARCHITECTURES:
    raise ConfigError(f"model must be one of {tuple(models.ARCHITECTURES)}, not "
                      f"{config.model.name!r}")
  return config


def check_options(options: Options) -> None:
  """Raises ConfigError on an unknown section or peer, or a count that cannot work."""
  for field, known in (("sections", SECTIONS), ("peers", PEERS)):
    unknown = set(getattr(options, field)) - set(known)
    if unknown:
      raise ConfigError(f"--{field}: unknown {sorted(unknown)}; choose from {known}")
  for field in ("repeats", "steps", "warmup_steps", "pipeline_batches", "synthetic_faces",
                "matmul_size"):
    if getattr(options, field) < 1:
      raise ConfigError(f"--{field} must be at least 1, not {getattr(options, field)}")


def run(config: ml_collections.ConfigDict, options: Options) -> Report:
  """Measures the sections of `options` for `config` (see `configure`); returns the report."""
  check_options(options)
  config = config.copy_and_resolve_references()
  mesh = sharding.create_mesh()
  sharding.check_batch_size(config.train.batch_size, mesh, "train.batch_size")
  report = Report(_settings(config, options, mesh))
  sections = set(options.sections)
  with tempfile.TemporaryDirectory(prefix="ageflax-benchmark-") as scratch:
    data = None
    if sections & {"input_pipeline", "end_to_end"}:
      data = prepare_data(report, config, options, scratch)
    if data is not None and "input_pipeline" in sections:
      input_pipeline_section(report, config, options, data)
    if sections & {"train_step", "end_to_end", "utilisation"}:
      _step_sections(report, config, options, mesh, data)
  return report


def _step_sections(report, config, options, mesh, data) -> None:
  host_batch = synthetic_batch(config.train.batch_size, config.data.image_size, config.seed)
  batch = sharding.global_batch(host_batch, mesh, config.train.batch_size)
  reporting.log("compiling the ageflax train step")
  step = compile_ageflax_step(config, mesh, batch)  # as configured: the end-to-end one
  step.run(batch, options.warmup_steps)
  peers = create_peers(config, options, host_batch, report) if "peers" in options.sections else {}
  if "train_step" in options.sections:
    plain, augmenting = _plain_and_augmenting_steps(report, config, options, mesh, batch, step)
    train_step_section(report, options, plain, peers, batch, augmenting,
                       _augmentation(config.data))
  if data is not None and "end_to_end" in options.sections:
    end_to_end_section(report, config, options, data, step, peers)
  if "utilisation" in options.sections:
    utilisation_section(report, config, options, step)


def _plain_and_augmenting_steps(report, config, options, mesh, batch, step):
  """The step without and with device augmentation; `step` (as configured) is one of them."""
  augment = config.data.augment
  if not (augment_lib.has_warp(augment) or augment.brightness or augment.contrast):
    report.note("device augmentation not timed: data.augment switches nothing on")
    return step, None
  on_device = augment_lib.on_device(augment)
  reporting.log("compiling the ageflax train step %s device augmentation",
                "without" if on_device else "with")
  other = compile_ageflax_step(with_placement(config, "host" if on_device else "device"), mesh,
                               batch)
  other.run(batch, options.warmup_steps)
  return (other, step) if on_device else (step, other)


def _settings(config: ml_collections.ConfigDict, options: Options, mesh) -> dict:
  size = config.data.image_size
  title = (f"ageflax benchmark: {config.model.name} at {size}x{size}, batch "
           f"{config.train.batch_size}, {config.model.dtype}, conv_impl "
           f"{config.model.conv_impl}; {sharding.describe(mesh)}; {_cores()} CPU cores")
  return {"title": title, "model": config.model.name, "image_size": size,
          "batch_size": config.train.batch_size, "dtype": config.model.dtype,
          "conv_impl": config.model.conv_impl, "devices": sharding.describe(mesh),
          "cpu_cores": _cores(), **dataclasses.asdict(options), "versions": _versions()}


def _versions() -> dict[str, str]:
  versions = {}
  for name in ("jax", "jaxlib", "flax", "optax", "tensorflow", "tensorflow-cpu", "keras",
               "torch"):
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      continue
  return versions
