"""Batch augmentation in TensorFlow, for the tf.data stream (`data.augment.placement='host'`).

A random horizontal flip, rotation, shift and zoom applied as one fused projective warp,
then brightness and contrast, as `augment_spec.AugmentSpec` says (the JAX twin,
`jax_augment`, reads the same spec). Augmentation is stateless: its randomness is a
function of (seed, step, position in the global batch), so a resumed or multi-host run
sees exactly the pictures a single uninterrupted run sees. Works eagerly and inside
`tf.data.Dataset.map`; images stay uint8.
"""

import tensorflow as tf

from ageflax.data.augment_spec import BRIGHTNESS, CONTRAST, AugmentSpec


def augment_batch(
    images: tf.Tensor,
    seed: tf.Tensor,
    global_batch_size: int,
    first_row: int,
    spec: AugmentSpec,
) -> tf.Tensor:
  """Randomly flips, rotates, shifts and zooms (one fused warp), then brightness/contrast.

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
  return tf.cast(tf.clip_by_value(tf.round(pixels), 0, 255), tf.uint8)
