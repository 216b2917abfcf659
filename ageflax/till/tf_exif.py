"""A JPEG's EXIF orientation read from its bytes inside a TensorFlow graph (the SavedModel's).

Training reads the orientation in Python (`ageflax.data.image_files.exif_orientation`, with
Pillow) and turns each photo upright with `ageflax.data.tf_images.apply_exif_orientation`;
a served graph gets only the bytes, so this reads the same tag with tensor ops: it walks the
JPEG's segments to its first APP1 segment holding EXIF ('Exif\\0\\0'), reads the TIFF
header's byte order ('II' little-endian, 'MM' big-endian) and the first IFD, and takes tag
0x0112's value (a SHORT or a LONG). Anything else (no EXIF, a damaged or out-of-range value,
a PNG) reads as 1, upright, as training reads it. Only the first `_WINDOW` bytes are read:
the EXIF segment precedes the image data and is itself at most 64 KiB.
"""

import tensorflow as tf

_WINDOW = 128 * 1024
_MAX_SEGMENTS = 64  # segments before the EXIF one; real files have a handful
_MAX_ENTRIES = 512  # IFD0 entries searched; cameras write a few dozen
_ORIENTATION_TAG = 0x0112
_SHORT, _LONG = 3, 4  # TIFF field types
_START_OF_SCAN, _END_OF_IMAGE = 0xDA, 0xD9  # no header segment follows these markers


def exif_orientation(encoded: tf.Tensor) -> tf.Tensor:
  """The EXIF orientation (int32 scalar, 1-8) of one image's encoded bytes; 1 when absent."""
  head = tf.io.decode_raw(tf.strings.substr(encoded, 0, _WINDOW), tf.uint8)
  size = tf.shape(head, out_type=tf.int64)[0]
  # Zero padding lets every read below stay in bounds without a check of its own.
  data = tf.pad(tf.cast(head, tf.int64), [[0, _WINDOW + 16 - size]])
  tiff_start, tiff_end = _exif_segment(data)
  tiff_end = tf.minimum(tiff_end, size)
  orientation = tf.cond(tiff_start >= 0, lambda: _orientation_tag(data, tiff_start, tiff_end),
                        lambda: tf.constant(1, tf.int64))
  usable = tf.logical_and(orientation >= 1, orientation <= 8)
  return tf.cast(tf.where(usable, orientation, 1), tf.int32)


def _byte(data: tf.Tensor, at: tf.Tensor) -> tf.Tensor:
  return tf.gather(data, tf.clip_by_value(at, 0, _WINDOW + 15))


def _exif_segment(data: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """(start, end) of the TIFF data of the first APP1 EXIF segment; (-1, -1) if none."""
  exif_signature = tf.constant([0x45, 0x78, 0x69, 0x66, 0, 0], tf.int64)  # 'Exif\0\0'
  is_jpeg = tf.logical_and(tf.equal(data[0], 0xFF), tf.equal(data[1], 0xD8))

  def walk(position, start, end, running):
    marker = _byte(data, position + 1)
    length = _byte(data, position + 2) * 256 + _byte(data, position + 3)
    payload = tf.gather(data, tf.clip_by_value(position + 4 + tf.range(6, dtype=tf.int64), 0,
                                               _WINDOW + 15))
    is_exif = tf.logical_and(tf.equal(marker, 0xE1),
                             tf.reduce_all(tf.equal(payload, exif_signature)))
    valid = tf.logical_and(tf.equal(_byte(data, position), 0xFF), length >= 2)
    valid = tf.logical_and(valid, tf.logical_not(tf.logical_or(
        tf.equal(marker, _START_OF_SCAN), tf.equal(marker, _END_OF_IMAGE))))
    found = tf.logical_and(valid, is_exif)
    return (position + 2 + length, tf.where(found, position + 10, start),
            tf.where(found, position + 2 + length, end),
            tf.logical_and(valid, tf.logical_not(found)))

  def more(position, start, end, running):
    del start, end
    return tf.logical_and(running, position < _WINDOW)

  minus_one = tf.constant(-1, tf.int64)
  _, start, end, _ = tf.while_loop(more, walk, (tf.constant(2, tf.int64), minus_one, minus_one,
                                                is_jpeg), maximum_iterations=_MAX_SEGMENTS)
  return start, end


def _orientation_tag(data: tf.Tensor, start: tf.Tensor, end: tf.Tensor) -> tf.Tensor:
  """Tag 0x0112's value in the first IFD of the TIFF data in [start, end); 0 if absent."""
  little = tf.logical_and(tf.equal(_byte(data, start), 0x49), tf.equal(_byte(data, start + 1),
                                                                       0x49))
  big = tf.logical_and(tf.equal(_byte(data, start), 0x4D), tf.equal(_byte(data, start + 1),
                                                                    0x4D))

  def unsigned(at: tf.Tensor, width: int) -> tf.Tensor:
    """Unsigned integers of `width` bytes at offsets `at` of the TIFF data."""
    digits = tf.stack([_byte(data, start + at + i) for i in range(width)], axis=-1)
    weights = tf.constant([256**i for i in range(width)], tf.int64)
    return tf.reduce_sum(digits * tf.where(little, weights, tf.reverse(weights, [0])), axis=-1)

  first_ifd = unsigned(tf.constant(4, tf.int64), 4)
  count = unsigned(first_ifd, 2)
  entries = tf.range(_MAX_ENTRIES, dtype=tf.int64)
  offsets = first_ifd + 2 + 12 * entries
  kinds = unsigned(offsets + 2, 2)
  values = tf.where(tf.equal(kinds, _SHORT), unsigned(offsets + 8, 2),
                    tf.where(tf.equal(kinds, _LONG), unsigned(offsets + 8, 4), 0))
  # An entry counts only if it lies whole inside the segment.
  matches = tf.logical_and(tf.equal(unsigned(offsets, 2), _ORIENTATION_TAG),
                           tf.logical_and(entries < count, start + offsets + 12 <= end))
  found = tf.logical_and(tf.logical_or(little, big), tf.reduce_any(matches))
  first = tf.argmax(tf.cast(matches, tf.int32), output_type=tf.int64)
  return tf.where(found, tf.gather(values, first), tf.constant(0, tf.int64))
