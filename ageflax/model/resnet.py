"""Flax NNX ResNets with a global-average-pool age head, built from `architectures`' table.

Two block styles: 'v1.5' (torchvision's: bias-free convolutions, a bottleneck's stride on
its 3x3) and 'keras_v1' (Keras applications': biases on every convolution, a bottleneck's
stride on its first 1x1), so either family of ImageNet weights can be loaded exactly.
The model takes uint8-range RGB images [B, H, W, 3] and normalises them itself, because
the right normalisation is a property of the weights. Parameters are float32; the
compute dtype is configurable (bfloat16 on GPU); the age output is always float32.
The head regresses the age (Dense(1), 'relu' or 'affine'), or ('dex') is a softmax over
one bin per year whose mean or median (`dex_readout`) is the age (see `ageflax.model.dex`).
This module never imports TensorFlow.
"""

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from ageflax.core.errors import ConfigError
from ageflax.model import architectures, dex
from ageflax.model.architectures import Architecture, BlockShape

# Per-channel (mean, std) of pixel values in [0, 255], and whether channels go BGR.
INPUT_NORMALIZATIONS = {
    "imagenet": ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375), False),
    "caffe": ((103.939, 116.779, 123.68), (1.0, 1.0, 1.0), True),
    "unit": ((127.5, 127.5, 127.5), (127.5, 127.5, 127.5), False),
}
# Each image's channels brought to mean 0 and std 1 by their own statistics: a photo's
# light level, contrast and colour cast (per-channel gains) no longer reach the network.
PER_IMAGE = "per_image"
PER_IMAGE_MIN_STD = 1.0  # pixel levels; a flat channel is not blown up into noise
NORMALIZATION_NAMES = (*INPUT_NORMALIZATIONS, PER_IMAGE)
HEADS = ("relu", "affine", "dex")
# The dex head starts as a Gaussian of this width in years over its bins, centred on the
# training mean age: it first predicts that mean, as the affine head does, where a uniform
# start would predict dex_max_age / 2 (50) for everyone; every age keeps some mass.
DEX_INIT_SIGMA = 15.0
BLOCK_STYLES = ("v1.5", "keras_v1")
CONV_IMPLS = ("xla", "matmul", "auto")
# With conv_impl='auto', convolutions whose output is at most this many pixels per image
# run as patch matmuls: XLA's CPU convolution is up to 100x slower there (see README).
AUTO_MATMUL_MAX_PIXELS = 64


class Conv(nnx.Module):
  """A 2-D convolution (HWIO kernel, NHWC input, optional bias) with a selectable algorithm.

  'xla' is `lax.conv_general_dilated`; 'matmul' gathers the kernel's shifted, strided
  views of the input into patches and multiplies them by the kernel in one matmul (a
  1x1 convolution is a matmul already); 'auto' picks 'matmul' for small outputs. All
  three share one parameter layout, so a checkpoint serves any of them.
  """

  def __init__(self, in_features: int, out_features: int, kernel_size: tuple[int, int], *,
               strides: int, dtype: jnp.dtype, impl: str, rngs: nnx.Rngs,
               use_bias: bool = False):
    init = nnx.initializers.variance_scaling(2.0, "fan_out", "normal")
    self.kernel = nnx.Param(init(rngs.params(), (*kernel_size, in_features, out_features),
                                 jnp.float32))
    self.bias = (nnx.Param(jnp.zeros((out_features,), jnp.float32)) if use_bias
                 else nnx.data(None))
    self.strides = strides
    self.padding = tuple(((k - 1) // 2, k // 2) for k in kernel_size)
    self.dtype = dtype
    self.impl = impl

  def __call__(self, x: jax.Array) -> jax.Array:
    x, kernel = x.astype(self.dtype), self.kernel[...].astype(self.dtype)
    out_pixels = (x.shape[1] // self.strides) * (x.shape[2] // self.strides)
    if self.impl == "matmul" or (self.impl == "auto" and out_pixels <= AUTO_MATMUL_MAX_PIXELS):
      y = _conv_as_matmul(x, kernel, self.strides, self.padding)
    else:
      y = jax.lax.conv_general_dilated(x, kernel, (self.strides,) * 2, self.padding,
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y if self.bias is None else y + self.bias[...].astype(self.dtype)


def _conv_as_matmul(x: jax.Array, kernel: jax.Array, strides: int, padding) -> jax.Array:
  height, width = kernel.shape[:2]
  out_h = (x.shape[1] + sum(padding[0]) - height) // strides + 1
  out_w = (x.shape[2] + sum(padding[1]) - width) // strides + 1
  x = jnp.pad(x, ((0, 0), padding[0], padding[1], (0, 0)))
  views = [x[:, i:i + strides * out_h:strides, j:j + strides * out_w:strides, :]
           for i in range(height) for j in range(width)]
  patches = views[0] if len(views) == 1 else jnp.concatenate(views, axis=-1)
  return patches @ kernel.reshape(-1, kernel.shape[-1])


class BasicBlock(nnx.Module):
  """Two 3x3 convolutions (ResNet18/34)."""

  def __init__(self, shape: BlockShape, *, layers, rngs: nnx.Rngs):
    self.conv1 = layers.conv(shape.in_features, shape.width, (3, 3), strides=shape.strides,
                             rngs=rngs)
    self.norm1 = layers.norm(shape.width, rngs=rngs)
    self.conv2 = layers.conv(shape.width, shape.out_features, (3, 3), rngs=rngs)
    self.norm2 = layers.norm(shape.out_features, last_in_block=True, rngs=rngs)
    self.shortcut = _make_shortcut(shape, layers, rngs)

  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    y = nnx.relu(self.norm1(self.conv1(x), use_running_average=not train))
    y = self.norm2(self.conv2(y), use_running_average=not train)
    return nnx.relu(y + _apply_shortcut(self.shortcut, x, train))


class Bottleneck(nnx.Module):
  """1x1 reduce, 3x3, 1x1 expand (ResNet50 and up).

  The stride is on the 3x3 in v1.5 (torchvision) and on the first 1x1 in Keras' v1.
  """

  def __init__(self, shape: BlockShape, *, layers, rngs: nnx.Rngs):
    width, strides = shape.width, shape.strides
    reduce_strides, middle_strides = (strides, 1) if layers.stride_on_reduce else (1, strides)
    self.conv1 = layers.conv(shape.in_features, width, (1, 1), strides=reduce_strides, rngs=rngs)
    self.norm1 = layers.norm(width, rngs=rngs)
    self.conv2 = layers.conv(width, width, (3, 3), strides=middle_strides, rngs=rngs)
    self.norm2 = layers.norm(width, rngs=rngs)
    self.conv3 = layers.conv(width, shape.out_features, (1, 1), rngs=rngs)
    self.norm3 = layers.norm(shape.out_features, last_in_block=True, rngs=rngs)
    self.shortcut = _make_shortcut(shape, layers, rngs)

  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    y = nnx.relu(self.norm1(self.conv1(x), use_running_average=not train))
    y = nnx.relu(self.norm2(self.conv2(y), use_running_average=not train))
    y = self.norm3(self.conv3(y), use_running_average=not train)
    return nnx.relu(y + _apply_shortcut(self.shortcut, x, train))


class Projection(nnx.Module):
  """1x1 strided convolution + BatchNorm that matches a block's output shape."""

  def __init__(self, in_features: int, out_features: int, strides: int, *, layers, rngs):
    self.conv = layers.conv(in_features, out_features, (1, 1), strides=strides, rngs=rngs)
    self.norm = layers.norm(out_features, rngs=rngs)

  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    return self.norm(self.conv(x), use_running_average=not train)


_BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}  # by `Architecture.block`


def _make_shortcut(shape: BlockShape, layers, rngs) -> Projection | None:
  if not shape.has_projection:
    return None
  return Projection(shape.in_features, shape.out_features, shape.strides, layers=layers,
                    rngs=rngs)


def _apply_shortcut(shortcut: Projection | None, x: jax.Array, train: bool) -> jax.Array:
  return x if shortcut is None else shortcut(x, train)


@dataclasses.dataclass(frozen=True)
class _Layers:
  """Convolution and BatchNorm factories sharing dtype, block style and initialisation."""

  dtype: jnp.dtype
  conv_impl: str
  bn_momentum: float
  bn_epsilon: float
  zero_init_residual: bool
  conv_bias: bool = False  # Keras' v1: a bias on every convolution
  stride_on_reduce: bool = False  # Keras' v1: a bottleneck's stride on its first 1x1

  def conv(self, in_features, out_features, kernel_size, *, rngs, strides=1):
    return Conv(in_features, out_features, kernel_size, strides=strides, dtype=self.dtype,
                impl=self.conv_impl, use_bias=self.conv_bias, rngs=rngs)

  def norm(self, num_features, *, rngs, last_in_block=False):
    # A zero scale on each block's last norm starts every residual block as the identity.
    zero = last_in_block and self.zero_init_residual
    return nnx.BatchNorm(num_features, momentum=self.bn_momentum, epsilon=self.bn_epsilon,
                         dtype=self.dtype, param_dtype=jnp.float32,
                         scale_init=nnx.initializers.zeros if zero else nnx.initializers.ones,
                         rngs=rngs)


class ResNetRegressor(nnx.Module):
  """ResNet backbone + global average pool + an age head: Dense(1), or Dense(bins) for 'dex'.

  `architecture` is the topology (an entry of `architectures.ARCHITECTURES`). `head_bias`
  is where the head starts: the affine head's output, the centre of the dex head's
  distribution (the training mean age); the relu head ignores it. The other
  arguments are the `model` config fields of the same names, as `ageflax.config.schema`
  allows them.
  """

  def __init__(
      self,
      architecture: Architecture,
      *,
      rngs: nnx.Rngs,
      head: str = "affine",
      head_bias: float = 0.0,
      input_normalization: str = "imagenet",
      dtype: str = "float32",
      conv_impl: str = "xla",
      bn_momentum: float = 0.9,
      bn_epsilon: float = 1e-5,
      zero_init_residual: bool = True,
      block_style: str = "v1.5",
      dex_max_age: int = 100,
      dex_readout: str = "mean",
  ):
    keras_v1 = block_style == "keras_v1"
    layers = _Layers(jnp.dtype(dtype), conv_impl, bn_momentum, bn_epsilon, zero_init_residual,
                     conv_bias=keras_v1, stride_on_reduce=keras_v1)
    self.head_kind = head
    self.dex_readout = dex_readout
    self.input_normalization = input_normalization
    self.dtype = jnp.dtype(dtype)
    self.pool_size = architecture.pool_size
    stem_kernel = (architecture.stem_kernel,) * 2
    self.stem_conv = layers.conv(3, architecture.width, stem_kernel, strides=2, rngs=rngs)
    self.stem_norm = layers.norm(architecture.width, rngs=rngs)
    block_cls = _BLOCKS[architecture.block]
    self.blocks = nnx.List([block_cls(shape, layers=layers, rngs=rngs)
                            for shape in architecture.blocks()])
    self.num_features = in_features = architecture.num_features
    # Affine and dex heads start at exactly their bias (big_vision's zero-init head); a
    # relu head needs a random kernel, or relu(0) passes no gradient.
    kernel_init = (nnx.initializers.lecun_normal() if head == "relu"
                   else nnx.initializers.zeros)
    bias_init = (_log_gaussian(head_bias, DEX_INIT_SIGMA) if head == "dex"
                 else nnx.initializers.constant(head_bias))
    num_outputs = int(dex_max_age) + 1 if head == "dex" else 1
    self.head = nnx.Linear(in_features, num_outputs, dtype=jnp.float32,
                           param_dtype=jnp.float32, kernel_init=kernel_init,
                           bias_init=bias_init, rngs=rngs)

  def features(self, images: jax.Array, train: bool = False) -> jax.Array:
    """Globally pooled float32 backbone features [B, num_features]."""
    x = normalize_images(images, self.input_normalization).astype(self.dtype)
    x = nnx.relu(self.stem_norm(self.stem_conv(x), use_running_average=not train))
    if self.pool_size:
      # -inf padding as torch's; equal to Keras' zero padding, as x >= 0 after the relu.
      pad = (self.pool_size - 1) // 2
      x = nnx.max_pool(x, (self.pool_size,) * 2, strides=(2, 2), padding=((pad, pad),) * 2)
    for block in self.blocks:
      x = block(x, train)
    return jnp.mean(x.astype(jnp.float32), axis=(1, 2))

  def head_outputs(self, images: jax.Array, train: bool = False) -> jax.Array:
    """The head's float32 outputs [B, K]: the age (K = 1), or the dex head's bin logits."""
    return self.head(self.features(images, train))

  def ages_from_outputs(self, outputs: jax.Array) -> jax.Array:
    """Predicted ages, float32 [B], from `head_outputs`."""
    if self.head_kind == "dex":
      return self.age_from_distribution(jax.nn.softmax(outputs, axis=-1))
    ages = outputs[:, 0]
    return nnx.relu(ages) if self.head_kind == "relu" else ages

  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    """Predicted ages, float32 [B]."""
    return self.ages_from_outputs(self.head_outputs(images, train))

  def age_distribution(self, images: jax.Array, train: bool = False) -> jax.Array:
    """The dex head's P(age = k) for k = 0..model.dex_max_age, float32 [B, bins].

    `dex.age_spread` and `dex.probability_under` turn it into each photo's spread and
    P(age < threshold).
    """
    if self.head_kind != "dex":
      raise ConfigError(f"an age distribution needs model.head='dex', not {self.head_kind!r}")
    return jax.nn.softmax(self.head_outputs(images, train), axis=-1)

  def age_from_distribution(self, distribution: jax.Array) -> jax.Array:
    """The dex head's estimate, float32 [B], from `age_distribution` (model.dex_readout)."""
    return dex.point_estimate(distribution, self.dex_readout)


def _log_gaussian(centre: float, sigma: float):
  """Bias init: a Gaussian's log density over bins of ages 0..K-1 (up to a constant)."""

  def init(key, shape, dtype=jnp.float32):
    del key  # deterministic
    return (-jnp.square(dex.bin_ages(shape[0]) - centre) / (2 * sigma**2)).astype(dtype)

  return init


def normalize_images(images: jax.Array, kind: str) -> jax.Array:
  """Maps [0, 255] RGB pixels to what the weights expect (float32)."""
  x = images.astype(jnp.float32)
  if kind == PER_IMAGE:
    mean = jnp.mean(x, axis=(1, 2), keepdims=True)
    variance = jnp.mean(jnp.square(x - mean), axis=(1, 2), keepdims=True)
    return (x - mean) / jnp.sqrt(jnp.maximum(variance, PER_IMAGE_MIN_STD**2))
  mean, std, bgr = INPUT_NORMALIZATIONS[kind]
  if bgr:
    x = x[..., ::-1]
  return (x - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)


def create_model(model_config, *, head_bias: float, seed: int) -> ResNetRegressor:
  """Builds the `model.name` ResNet from the `model` config section."""
  return ResNetRegressor(
      architectures.get(model_config.name),
      rngs=nnx.Rngs(seed),
      head=model_config.head,
      head_bias=0.0 if model_config.head == "relu" else head_bias,
      input_normalization=model_config.input_normalization,
      dtype=model_config.dtype,
      conv_impl=model_config.conv_impl,
      bn_momentum=model_config.bn_momentum,
      bn_epsilon=model_config.bn_epsilon,
      zero_init_residual=model_config.zero_init_residual,
      block_style=model_config.block_style,
      dex_max_age=model_config.dex_max_age,
      dex_readout=model_config.dex_readout,
  )


