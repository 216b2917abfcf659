"""TensorFlow image ops for the input pipeline: decode, resize and batch augmentation.

Each op works eagerly and inside `tf.data.Dataset.map`. Augmentation is stateless:
its randomness is a function of (seed, step, position in the global batch), so a
resumed or multi-host run sees exactly the pictures a single uninterrupted run sees.
Images stay uint8 in [0, 255]; normalisation belongs to the model (it depends on the
weights), which also keeps host-to-device transfers four times smaller.
"""

import math

import ml_collections
import tensorflow as tf


def decode_image(encoded: tf.Tensor) -> tf.Tensor:
  """Decodes JPEG/PNG/GIF/BMP bytes to uint8 RGB [H, W, 3], whatever the channel count."""
  image = tf.io.decode_image(encoded, channels=3, dtype=tf.uint8, expand_animations=False)
  image.set_shape([None, None, 3])
  return image


def apply_exif_orientation(image: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
  """Turns a decoded image upright according to its EXIF orientation (1-8)."""
  branches = [
      lambda: image,
      lambda: tf.image.flip_left_right(image),
      lambda: tf.image.rot90(image, 2),
      lambda: tf.image.flip_up_down(image),
      lambda: tf.image.transpose(image),
      lambda: tf.image.rot90(image, 3),
      lambda: tf.image.rot90(tf.image.transpose(image), 2),
      lambda: tf.image.rot90(image, 1),
  ]
  index = tf.clip_by_value(tf.cast(orientation, tf.int32) - 1, 0, 7)
  return tf.switch_case(index, branches)


def resize(image: tf.Tensor, image_size: int) -> tf.Tensor:
  """Resizes to image_size x image_size with antialiasing; returns uint8."""
  resized = tf.image.resize(image, [image_size, image_size], method="bilinear", antialias=True)
  return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def load_image(path: tf.Tensor, orientation: tf.Tensor, image_size: int) -> tf.Tensor:
  """Reads, decodes, turns upright (EXIF orientation) and resizes one image file."""
  return load_encoded_image(tf.io.read_file(path), orientation, image_size)


def load_encoded_image(encoded: tf.Tensor, orientation: tf.Tensor, image_size: int) -> tf.Tensor:
  """Decodes, turns upright (EXIF orientation) and resizes one image's file bytes."""
  image = apply_exif_orientation(decode_image(encoded), orientation)
  return resize(image, image_size)


def augment_batch(
    images: tf.Tensor,
    seed: tf.Tensor,
    global_batch_size: int,
    first_row: int,
    config: ml_collections.ConfigDict,
) -> tf.Tensor:
  """Randomly flips, rotates, shifts and zooms (one fused warp), then brightness/contrast.

  Args:
    images: uint8 [B, H, W, 3], rows `first_row .. first_row + B` of the global batch.
    seed: int [2] stateless seed, e.g. (training seed, step).
    global_batch_size: rows in the whole global batch; random draws are made for all of
      them and sliced, so each row's augmentation does not depend on how many hosts
      share the batch.
    first_row: this host's first row in the global batch.
    config: `data.augment` (see configs).

  Returns:
    Augmented uint8 images of the same shape.
  """
  num_images = tf.shape(images)[0]
  draw = _Draws(seed, global_batch_size, first_row, num_images)
  if _has_warp(config):
    height, width = images.shape[1], images.shape[2]
    transforms = _warp_transforms(draw, config, height, width)
    images = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=[height, width],
        fill_value=0.0, interpolation="BILINEAR", fill_mode=config.fill_mode.upper())
  if config.brightness or config.contrast:
    images = _adjust_photometric(images, draw, config)
  return images


class _Draws:
  """Uniform draws in [-1, 1) per image, one independent stream per named quantity."""

  def __init__(self, seed: tf.Tensor, global_batch_size: int, first_row: int, num_rows):
    self._seed = tf.cast(seed, tf.int32)
    self._global = global_batch_size
    self._first = first_row
    self._num = num_rows

  def uniform(self, stream: int) -> tf.Tensor:
    stream_seed = tf.random.experimental.stateless_fold_in(self._seed, stream)
    values = tf.random.stateless_uniform([self._global], stream_seed, minval=-1.0, maxval=1.0)
    return values[self._first:self._first + self._num]


def _has_warp(config: ml_collections.ConfigDict) -> bool:
  return bool(config.flip or config.rotation_degrees or config.shift_fraction
              or config.zoom_fraction)


def _warp_transforms(draw: _Draws, config, height: int, width: int) -> tf.Tensor:
  """Per-image 8-parameter projective transforms mapping output to input pixels."""
  angle = draw.uniform(0) * config.rotation_degrees * (math.pi / 180.0)
  zoom = 1.0 + draw.uniform(1) * config.zoom_fraction
  shift_x = draw.uniform(2) * config.shift_fraction * width
  shift_y = draw.uniform(3) * config.shift_fraction * height
  mirror = tf.where(draw.uniform(4) < 0.0, -1.0, 1.0) if config.flip else tf.ones_like(zoom)
  cos, sin = tf.cos(angle) / zoom, tf.sin(angle) / zoom
  center_x, center_y = (width - 1) / 2.0, (height - 1) / 2.0
  # Output pixel p maps to input center + R(-angle)/zoom * (p - center - shift), x mirrored.
  a0, a1 = mirror * cos, sin
  b0, b1 = -mirror * sin, cos
  a2 = center_x - a0 * (center_x + shift_x) - a1 * (center_y + shift_y)
  b2 = center_y - b0 * (center_x + shift_x) - b1 * (center_y + shift_y)
  zeros = tf.zeros_like(a0)
  return tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)


def _adjust_photometric(images: tf.Tensor, draw: _Draws, config) -> tf.Tensor:
  pixels = tf.cast(images, tf.float32)
  if config.contrast:
    factor = 1.0 + draw.uniform(5) * config.contrast
    mean = tf.reduce_mean(pixels, axis=[1, 2, 3], keepdims=True)
    pixels = (pixels - mean) * factor[:, None, None, None] + mean
  if config.brightness:
    pixels = pixels + (draw.uniform(6) * config.brightness * 255.0)[:, None, None, None]
  return tf.cast(tf.clip_by_value(tf.round(pixels), 0, 255), tf.uint8)
