"""Batch augmentation in JAX, for the train step (`data.augment.placement='device'`).

The same augmentation as `preprocessing.augment_batch`, the tf.data one: a random
horizontal flip, rotation, shift and zoom applied as one affine warp with bilinear
sampling, then brightness and contrast. With it the host only gathers cached uint8
pixels and ships them; the accelerator warps them inside the jitted step.

Each example's randomness comes from its own key,
`fold_in(fold_in(key(seed), step), row)`, `row` being its row in the global batch, so an
example is augmented the same way on any number of devices or hosts. The draws come from
jax.random rather than TensorFlow's generator, so the pictures differ from the tf.data
path's, but every quantity has the same distribution and the warp is the same.
This module never imports TensorFlow.
"""

import math

import jax
import jax.numpy as jnp
import ml_collections

from ageflax.errors import ConfigError

PLACEMENTS = ("host", "device")
FILL_MODES = ("reflect", "nearest", "wrap", "constant")
# The columns of `draws`, in the order of the tf.data path's streams. Every example draws
# all of them, whatever is switched on, so switching one on leaves the others' values be.
ANGLE, ZOOM, SHIFT_X, SHIFT_Y, FLIP, CONTRAST, BRIGHTNESS = range(7)
_NUM_DRAWS = 7


def check_config(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError unless `data.augment`'s placement and fill mode are known."""
  if config.placement not in PLACEMENTS:
    raise ConfigError(f"data.augment.placement must be one of {PLACEMENTS}, not "
                      f"{config.placement!r}")
  if config.fill_mode not in FILL_MODES:
    raise ConfigError(f"data.augment.fill_mode must be one of {FILL_MODES}, not "
                      f"{config.fill_mode!r}")


def on_device(config: ml_collections.ConfigDict) -> bool:
  """Whether `data.augment` (checked first) asks the train step to augment."""
  check_config(config)
  return config.placement == "device"


def has_warp(config: ml_collections.ConfigDict) -> bool:
  """Whether `data.augment` flips, rotates, shifts or zooms (the warp's parts)."""
  return bool(config.flip or config.rotation_degrees or config.shift_fraction
              or config.zoom_fraction)


def augment_batch(
    images: jax.Array,
    seed: int,
    step: jax.Array,
    config: ml_collections.ConfigDict,
    first_row: int | jax.Array = 0,
) -> jax.Array:
  """Randomly flips, rotates, shifts and zooms (one warp), then brightness/contrast.

  Args:
    images: uint8 [B, H, W, 3], rows `first_row .. first_row + B` of the global batch.
    seed: the training seed.
    step: the train step (finished steps so far), an int scalar, traced or not.
    config: `data.augment` (see configs).
    first_row: the first row of `images` in the global batch (0 for the whole batch).

  Returns:
    Augmented uint8 images of the same shape; `images` itself when nothing is on. The
    result is rounded back to uint8, as the tf.data path's, so the model sees the same
    kind of input from either placement; inside the step the rounding fuses into the warp
    and costs next to nothing.
  """
  photometric = bool(config.brightness or config.contrast)
  if not (has_warp(config) or photometric):
    return images
  height, width = images.shape[1], images.shape[2]
  uniform = draws(seed, step, first_row + jnp.arange(images.shape[0]))
  if has_warp(config):
    pixels = warp(images, affine_matrices(uniform, config, height, width), config.fill_mode)
  else:
    pixels = images.astype(jnp.float32)
  if photometric:
    pixels = _adjust_photometric(pixels, uniform, config)
  return jnp.clip(jnp.round(pixels), 0, 255).astype(jnp.uint8)


def draws(seed: int, step: jax.Array, rows: jax.Array) -> jax.Array:
  """Uniform draws in [-1, 1), float32 [len(rows), 7]: a row per example, a column per quantity.

  Row r's draws come from the key fold_in(fold_in(key(seed), step), r); a flip is a draw
  below 0, so it happens with probability 1/2.
  """
  step_key = jax.random.fold_in(jax.random.key(seed), step)

  def row_draws(row):
    return jax.random.uniform(jax.random.fold_in(step_key, row), (_NUM_DRAWS,),
                              minval=-1.0, maxval=1.0)

  return jax.vmap(row_draws)(rows)


def affine_matrices(
    uniform: jax.Array, config: ml_collections.ConfigDict, height: int, width: int
) -> jax.Array:
  """Per-example [B, 2, 3] matrices mapping an output pixel (x, y, 1) to input (x, y).

  The same transform as the tf.data path's: output pixel p comes from input
  center + R(-angle) / zoom * (p - center - shift), with x mirrored when flipped.
  """
  angle = uniform[:, ANGLE] * config.rotation_degrees * (math.pi / 180.0)
  zoom = 1.0 + uniform[:, ZOOM] * config.zoom_fraction
  shift_x = uniform[:, SHIFT_X] * config.shift_fraction * width
  shift_y = uniform[:, SHIFT_Y] * config.shift_fraction * height
  mirror = jnp.where(uniform[:, FLIP] < 0.0, -1.0, 1.0) if config.flip else jnp.ones_like(zoom)
  cos, sin = jnp.cos(angle) / zoom, jnp.sin(angle) / zoom
  center_x, center_y = (width - 1) / 2.0, (height - 1) / 2.0
  a0, a1 = mirror * cos, sin
  b0, b1 = -mirror * sin, cos
  a2 = center_x - a0 * (center_x + shift_x) - a1 * (center_y + shift_y)
  b2 = center_y - b0 * (center_x + shift_x) - b1 * (center_y + shift_y)
  return jnp.stack([jnp.stack([a0, a1, a2], -1), jnp.stack([b0, b1, b2], -1)], -2)


def warp(images: jax.Array, matrices: jax.Array, fill_mode: str) -> jax.Array:
  """Bilinear affine warp of [B, H, W, C] images; float32 pixels of the same shape.

  Args:
    images: [B, H, W, C] pixels (uint8 or float).
    matrices: [B, 2, 3] maps from output pixel (x, y, 1) to input (x, y).
    fill_mode: how pixels from outside the image are filled, as in TensorFlow's
      ImageProjectiveTransform (the tf.data path's warp, matched to float precision):
      'reflect' (dcba|abcd|dcba), 'nearest' (aaaa|abcd|dddd), 'constant' (zeros) or
      'wrap' (abcd|abcd|abcd; here it blends across the seam, where TensorFlow's clamps).
  """
  batch, height, width, channels = images.shape
  rows, cols = jnp.meshgrid(jnp.arange(height, dtype=jnp.float32),
                            jnp.arange(width, dtype=jnp.float32), indexing="ij")
  # Elementwise, not a matmul: GPUs may run float32 matmuls at TF32, too coarse for pixels.
  m = matrices[:, :, :, None, None]
  source_x = m[:, 0, 0] * cols + m[:, 0, 1] * rows + m[:, 0, 2]
  source_y = m[:, 1, 0] * cols + m[:, 1, 1] * rows + m[:, 1, 2]
  x0, y0 = jnp.floor(source_x), jnp.floor(source_y)
  frac_x, frac_y = source_x - x0, source_y - y0
  x0, y0 = x0.astype(jnp.int32), y0.astype(jnp.int32)
  flat = images.reshape(batch, height * width, channels)
  out = jnp.zeros((batch, height * width, channels), jnp.float32)
  for dy, weight_y in ((0, 1.0 - frac_y), (1, frac_y)):
    row, row_inside = _fold(y0 + dy, height, fill_mode)
    for dx, weight_x in ((0, 1.0 - frac_x), (1, frac_x)):
      col, col_inside = _fold(x0 + dx, width, fill_mode)
      weight = weight_y * weight_x * row_inside * col_inside
      index = (row * width + col).reshape(batch, height * width, 1)
      values = jnp.take_along_axis(flat, index, axis=1, mode="promise_in_bounds")
      out = out + weight.reshape(batch, height * width, 1) * values.astype(jnp.float32)
  return out.reshape(batch, height, width, channels)


def _fold(index: jax.Array, size: int, fill_mode: str) -> tuple[jax.Array, jax.Array | float]:
  """Maps pixel indices outside [0, size) inside; also 0/1 for whether a pixel counts."""
  if fill_mode == "reflect":
    index = jnp.mod(index, 2 * size)
    return jnp.where(index < size, index, 2 * size - 1 - index), 1.0
  if fill_mode == "wrap":
    return jnp.mod(index, size), 1.0
  clipped = jnp.clip(index, 0, size - 1)
  if fill_mode == "nearest":
    return clipped, 1.0
  if fill_mode == "constant":
    return clipped, ((index >= 0) & (index < size)).astype(jnp.float32)
  raise ConfigError(f"data.augment.fill_mode must be one of {FILL_MODES}, not {fill_mode!r}")


def _adjust_photometric(pixels: jax.Array, uniform: jax.Array,
                        config: ml_collections.ConfigDict) -> jax.Array:
  if config.contrast:
    factor = 1.0 + uniform[:, CONTRAST] * config.contrast
    mean = jnp.mean(pixels, axis=(1, 2, 3), keepdims=True)
    pixels = (pixels - mean) * factor[:, None, None, None] + mean
  if config.brightness:
    pixels = pixels + (uniform[:, BRIGHTNESS] * config.brightness * 255.0)[:, None, None, None]
  return pixels
