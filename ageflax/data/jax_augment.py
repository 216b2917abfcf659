"""Batch augmentation in JAX, for the train step (`data.augment.placement='device'`).

The same augmentation as `tf_augment.augment_batch`, the tf.data one, both reading one
`augment_spec.AugmentSpec`: a random horizontal flip, rotation, shift and zoom applied as
one affine warp with bilinear sampling, then brightness, contrast, colour cast and gamma
(the till camera's blur, low resolution and JPEG are not per-pixel: the tf.data path does
them, and the schema refuses them here). With it the host
only gathers cached uint8 pixels and ships them; the accelerator warps them inside the
jitted step.

Each example's randomness comes from its own key,
`fold_in(fold_in(key(seed), step), row)`, `row` being its row in the global batch, so an
example is augmented the same way on any number of devices or hosts. The draws come from
jax.random rather than TensorFlow's generator, so the pictures differ from the tf.data
path's, but every quantity has the same distribution and the warp is the same.
This module never imports TensorFlow.
"""

import jax
import jax.numpy as jnp

from ageflax.data.augment_spec import (
    BRIGHTNESS,
    CONTRAST,
    GAMMA,
    NUM_ALL_DRAWS,
    NUM_DRAWS,
    AugmentSpec,
)


def augment_batch(
    images: jax.Array,
    seed: int,
    step: jax.Array,
    spec: AugmentSpec,
    first_row: int | jax.Array = 0,
) -> jax.Array:
  """Randomly flips, rotates, shifts and zooms (one warp), then brightness, contrast,
  colour cast and gamma.

  Args:
    images: uint8 [B, H, W, 3], rows `first_row .. first_row + B` of the global batch.
    seed: the training seed.
    step: the train step (finished steps so far), an int scalar, traced or not.
    spec: what to do (`data.augment`).
    first_row: the first row of `images` in the global batch (0 for the whole batch).

  Returns:
    Augmented uint8 images of the same shape; `images` itself when nothing is on. The
    result is rounded back to uint8, as the tf.data path's, so the model sees the same
    kind of input from either placement; inside the step the rounding fuses into the warp
    and costs next to nothing.
  """
  if not spec.is_on:
    return images
  height, width = images.shape[1], images.shape[2]
  uniform = draws(seed, step, first_row + jnp.arange(images.shape[0]))
  if spec.has_warp:
    pixels = warp(images, affine_matrices(uniform, spec, height, width), spec.fill_mode)
  else:
    pixels = images.astype(jnp.float32)
  if spec.has_photometric:
    pixels = _adjust_photometric(pixels, uniform, spec)
  return jnp.clip(jnp.round(pixels), 0, 255).astype(jnp.uint8)


def draws(seed: int, step: jax.Array, rows: jax.Array) -> jax.Array:
  """Uniform draws in [-1, 1), float32 [len(rows), 14]: a row per example, a column per stream.

  Row r's draws come from the key fold_in(fold_in(key(seed), step), r); the columns are
  `augment_spec`'s streams. A flip is a draw below 0, so it happens with probability 1/2.
  The till-like streams come from that key folded with NUM_DRAWS, which leaves the first
  seven columns as they were before those streams were added.
  """
  step_key = jax.random.fold_in(jax.random.key(seed), step)

  def row_draws(row):
    row_key = jax.random.fold_in(step_key, row)
    first = jax.random.uniform(row_key, (NUM_DRAWS,), minval=-1.0, maxval=1.0)
    till = jax.random.uniform(jax.random.fold_in(row_key, NUM_DRAWS),
                              (NUM_ALL_DRAWS - NUM_DRAWS,), minval=-1.0, maxval=1.0)
    return jnp.concatenate([first, till])

  return jax.vmap(row_draws)(rows)


def affine_matrices(uniform: jax.Array, spec: AugmentSpec, height: int, width: int) -> jax.Array:
  """Per-example [B, 2, 3] matrices mapping an output pixel (x, y, 1) to input (x, y)."""
  a0, a1, a2, b0, b1, b2 = spec.warp_coefficients(lambda stream: uniform[:, stream], height,
                                                  width, jnp)
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
  return clipped, ((index >= 0) & (index < size)).astype(jnp.float32)  # 'constant'


def _adjust_photometric(pixels: jax.Array, uniform: jax.Array, spec: AugmentSpec) -> jax.Array:
  if spec.contrast:
    factor = spec.contrast_factor(uniform[:, CONTRAST])
    mean = jnp.mean(pixels, axis=(1, 2, 3), keepdims=True)
    pixels = (pixels - mean) * factor[:, None, None, None] + mean
  if spec.brightness:
    pixels = pixels + spec.brightness_offset(uniform[:, BRIGHTNESS])[:, None, None, None]
  if spec.colour_cast:
    pixels = pixels * spec.channel_gains(lambda stream: uniform[:, stream], jnp)[:, None, None, :]
  if spec.gamma:
    exponent = spec.gamma_exponent(uniform[:, GAMMA])[:, None, None, None]
    pixels = 255.0 * (jnp.clip(pixels, 0.0, 255.0) / 255.0) ** exponent
  return pixels
