"""Batch augmentation in TensorFlow, for the tf.data stream (`data.augment.placement='host'`).

A random horizontal flip, rotation, shift and zoom applied as one fused projective warp,
then brightness, contrast, colour cast and gamma, then the till camera's blur, low
resolution and JPEG recompression, as `augment_spec.AugmentSpec` says (the JAX twin,
`jax_augment`, reads the same spec and does all but the camera's three). Augmentation is stateless: its randomness is a
function of (seed, step, position in the global batch), so a resumed or multi-host run
sees exactly the pictures a single uninterrupted run sees. Works eagerly and inside
`tf.data.Dataset.map`; images stay uint8.
"""

import math

import tensorflow as tf

from ageflax.data.augment_spec import (
    BLUR,
    BRIGHTNESS,
    CONTRAST,
    GAMMA,
    JPEG_QUALITY,
    LOW_RES,
    AugmentSpec,
)


def augment_batch(
    images: tf.Tensor,
    seed: tf.Tensor,
    global_batch_size: int,
    first_row: int,
    spec: AugmentSpec,
) -> tf.Tensor:
  """Randomly flips, rotates, shifts and zooms (one fused warp), then the photometric parts
  (brightness, contrast, colour cast, gamma), then the camera's (blur, low resolution, JPEG).

  Args:
    images: uint8 [B, H, W, 3], rows `first_row .. first_row + B` of the global batch.
    seed: int [2] stateless seed, e.g. (training seed, step).
    global_batch_size: rows in the whole global batch; random draws are made for all of
      them and sliced, so each row's augmentation does not depend on how many hosts
      share the batch.
    first_row: this host's first row in the global batch.
    spec: what to do (`data.augment`).

  Returns:
    Augmented uint8 images of the same shape.
  """
  num_images = tf.shape(images)[0]
  draw = _Draws(seed, global_batch_size, first_row, num_images)
  if spec.has_warp:
    height, width = images.shape[1], images.shape[2]
    a0, a1, a2, b0, b1, b2 = spec.warp_coefficients(draw.uniform, height, width, tf)
    zeros = tf.zeros_like(a0)
    images = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1),
        output_shape=[height, width], fill_value=0.0, interpolation="BILINEAR",
        fill_mode=spec.fill_mode.upper())
  if spec.has_photometric:
    images = _adjust_photometric(images, draw, spec)
  if spec.blur_sigma_max:
    images = gaussian_blur(images, spec.blur_sigma(draw.uniform(BLUR)), spec.blur_sigma_max)
  if spec.low_res_probability:
    images = low_resolution(images, spec.is_low_res(draw.uniform(LOW_RES)), spec.low_res_side)
  if spec.jpeg_quality_min:
    images = recompress(images, spec.jpeg_quality(draw.uniform(JPEG_QUALITY)))
  return images


class _Draws:
  """Uniform draws in [-1, 1) per image, one independent stream per `augment_spec` stream."""

  def __init__(self, seed: tf.Tensor, global_batch_size: int, first_row: int, num_rows):
    self._seed = tf.cast(seed, tf.int32)
    self._global = global_batch_size
    self._first = first_row
    self._num = num_rows

  def uniform(self, stream: int) -> tf.Tensor:
    stream_seed = tf.random.experimental.stateless_fold_in(self._seed, stream)
    values = tf.random.stateless_uniform([self._global], stream_seed, minval=-1.0, maxval=1.0)
    return values[self._first:self._first + self._num]


def _adjust_photometric(images: tf.Tensor, draw: _Draws, spec: AugmentSpec) -> tf.Tensor:
  pixels = tf.cast(images, tf.float32)
  if spec.contrast:
    factor = spec.contrast_factor(draw.uniform(CONTRAST))
    mean = tf.reduce_mean(pixels, axis=[1, 2, 3], keepdims=True)
    pixels = (pixels - mean) * factor[:, None, None, None] + mean
  if spec.brightness:
    pixels = pixels + spec.brightness_offset(draw.uniform(BRIGHTNESS))[:, None, None, None]
  if spec.colour_cast:
    pixels = pixels * spec.channel_gains(draw.uniform, tf)[:, None, None, :]
  if spec.gamma:
    exponent = spec.gamma_exponent(draw.uniform(GAMMA))[:, None, None, None]
    pixels = 255.0 * (tf.clip_by_value(pixels, 0.0, 255.0) / 255.0) ** exponent
  return _to_uint8(pixels)


def _to_uint8(pixels: tf.Tensor) -> tf.Tensor:
  return tf.cast(tf.clip_by_value(tf.round(pixels), 0, 255), tf.uint8)


def gaussian_blur(images: tf.Tensor, sigma: tf.Tensor, sigma_max: float) -> tf.Tensor:
  """Separable Gaussian blur of uint8 [B, H, W, 3], each image with its own `sigma` [B]
  (pixels; 0 leaves it as it is); the kernel spans 3 x `sigma_max` either side."""
  radius = max(1, math.ceil(3 * sigma_max))
  offsets = tf.range(-radius, radius + 1, dtype=tf.float32)
  # A sigma of 0 would divide by zero; a tiny one puts all the weight on the centre tap.
  spread = tf.maximum(tf.cast(sigma, tf.float32), 1e-3)[:, None]
  weights = tf.exp(-0.5 * tf.square(offsets[None, :] / spread))
  weights = weights / tf.reduce_sum(weights, axis=1, keepdims=True)
  pixels = tf.cast(images, tf.float32)
  height, width = images.shape[1], images.shape[2]
  rows = tf.pad(pixels, [[0, 0], [radius, radius], [0, 0], [0, 0]], mode="SYMMETRIC")
  pixels = sum(weights[:, tap, None, None, None] * rows[:, tap:tap + height]
               for tap in range(2 * radius + 1))
  cols = tf.pad(pixels, [[0, 0], [0, 0], [radius, radius], [0, 0]], mode="SYMMETRIC")
  pixels = sum(weights[:, tap, None, None, None] * cols[:, :, tap:tap + width]
               for tap in range(2 * radius + 1))
  return _to_uint8(pixels)


def low_resolution(images: tf.Tensor, chosen: tf.Tensor, side: int) -> tf.Tensor:
  """The `chosen` [B] images of uint8 [B, H, W, 3] resized down to side x side and back up."""
  height, width = images.shape[1], images.shape[2]
  small = tf.image.resize(images, [side, side], method="bilinear", antialias=True)
  restored = _to_uint8(tf.image.resize(small, [height, width], method="bilinear"))
  return tf.where(chosen[:, None, None, None], restored, images)


def recompress(images: tf.Tensor, quality: tf.Tensor) -> tf.Tensor:
  """Each uint8 image [B, H, W, 3] encoded as JPEG at its own `quality` [B] and decoded."""
  qualities = tf.cast(tf.round(quality), tf.int32)
  return tf.map_fn(lambda pair: tf.image.adjust_jpeg_quality(pair[0], pair[1]),
                   (images, qualities), fn_output_signature=tf.TensorSpec(images.shape[1:],
                                                                          tf.uint8))
