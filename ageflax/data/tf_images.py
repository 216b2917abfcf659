"""TensorFlow image ops for the input pipeline: decode, EXIF orientation and resize.

Each op works eagerly and inside `tf.data.Dataset.map`. Images stay uint8 in [0, 255];
normalisation belongs to the model (it depends on the weights), which also keeps
host-to-device transfers four times smaller. Augmentation is `tf_augment`'s.
"""

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
