"""The decoded image store: every photo decoded once, kept in memory or re-read per batch.

The store holds a split-independent list of photos (file paths, or their encoded bytes
when they come from prepared records) and, when it fits, an in-memory uint8 cache of
the decoded, upright, resized pixels. Decoding everything once up front is also how
undecodable images are found and named before training starts.
"""

import concurrent.futures
import dataclasses
import os
from collections.abc import Iterator, Sequence

import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging

from ageflax.core.errors import DataError
from ageflax.core.progress import Progress
from ageflax.data import tf_images
from ageflax.data.label_rows import Record

AUTOTUNE = tf.data.AUTOTUNE
NO_FACE = "no face found (data.face_framing.mode='align')"
_FRAMING_CHUNK = 256  # photos decoded at full size and framed at a time (bounds memory)


@dataclasses.dataclass
class ImageStore:
  """Where decoded images come from: the in-memory cache, held file bytes, or the files."""

  paths: tuple[str, ...]  # empty for photos that came as bytes
  orientations: np.ndarray
  file_names: tuple[str, ...]
  ages: np.ndarray
  image_size: int
  cache: tf.Variable | None = None  # uint8 [N, S, S, 3]
  encoded: tf.Variable | None = None  # the file bytes, when uncached photos came as bytes

  def __len__(self) -> int:
    return len(self.ages)

  def gather(self, indices: tf.Tensor) -> tf.Tensor:
    """uint8 [len(indices), S, S, 3] images for a vector of store indices."""
    if self.cache is not None:
      return tf.gather(self.cache, indices)
    orientations = tf.gather(tf.constant(self.orientations), indices)
    if self.encoded is not None:
      sources, load = tf.gather(self.encoded, indices), tf_images.load_encoded_image
    else:
      sources, load = tf.gather(tf.constant(self.paths), indices), tf_images.load_image
    size = self.image_size
    return tf.map_fn(lambda p: load(p[0], p[1], size), (sources, orientations),
                     fn_output_signature=tf.TensorSpec([size, size, 3], tf.uint8))


def cache_fits(num_images: int, image_size: int, config: ml_collections.ConfigDict) -> bool:
  """Whether `data.cache` asks for ('memory') or, when 'auto', allows an in-memory cache."""
  if config.cache in ("memory", "none"):
    return config.cache == "memory"
  return num_images * image_size * image_size * 3 <= config.cache_max_gb * 2**30


def decode_all(
    records: Sequence[Record], image_size: int, keep: bool, encoded: Sequence[bytes] = ()
) -> tuple[np.ndarray | None, dict[tuple[str, int], str]]:
  """Decodes every image once, in parallel, to find those no decoder can read.

  Args:
    records: photos to decode.
    image_size: output size of the resize.
    keep: return the decoded images (the in-memory cache) rather than dropping them.
    encoded: the photos' file bytes, when they came as bytes (else their paths are read).

  Returns:
    uint8 [N, S, S, 3] images (or None when not kept; rows of failed images are zero)
    and {record key: reason} for each record whose image failed to decode.
  """
  sources = list(encoded) if encoded else [r.path for r in records]
  load = tf_images.load_encoded_image if encoded else tf_images.load_image
  orientations = np.array([r.orientation for r in records], np.int32)
  dataset = tf.data.Dataset.from_tensor_slices((np.arange(len(records)), sources, orientations))
  dataset = dataset.map(lambda i, p, o: (i, load(p, o, image_size)),
                        num_parallel_calls=AUTOTUNE, deterministic=False)
  dataset = dataset.ignore_errors().batch(256).prefetch(2)
  images = np.zeros((len(records), image_size, image_size, 3), np.uint8) if keep else None
  decoded = np.zeros(len(records), bool)
  for indices, batch in dataset.as_numpy_iterator():
    decoded[indices] = True
    if keep:
      images[indices] = batch
  failed = {records[i].key: _decode_error(sources[i], bool(encoded))
            for i in np.flatnonzero(~decoded)}
  return images, failed


def _decode_error(source: str | bytes, is_encoded: bool) -> str:
  """The first line of the decoder's own complaint about one image."""
  try:
    tf_images.decode_image(source if is_encoded else tf.io.read_file(source))
  except tf.errors.OpError as e:
    return "cannot decode image: " + e.message.strip().splitlines()[0][:200]
  return "cannot decode image"


def frame_all(
    records: Sequence[Record], config: ml_collections.ConfigDict, encoded: Sequence[bytes] = ()
) -> tuple[np.ndarray, dict[tuple[str, int], str]]:
  """Every photo framed once by the face normaliser (`data.face_framing`), in parallel.

  Photos are decoded and turned upright by TensorFlow as everywhere else, at full size, then
  framed on their main face by a thread pool (one detector per thread).

  Returns:
    uint8 [N, S, S, 3] framed photos (rows of failed photos are zero) and {record key:
    reason} for each photo that failed to decode or shows no usable face.
  """
  from ageflax.data import faces  # OpenCV loads only when faces are framed

  normaliser = faces.FaceNormaliser.from_config(config)
  size = config.image_size
  images = np.zeros((len(records), size, size, 3), np.uint8)
  failed: dict[tuple[str, int], str] = {}
  workers = config.num_threads or os.cpu_count() or 1
  framed = np.zeros(len(records), bool)
  progress = Progress(len(records), "framed {done:,}/{total:,} photos", "photo",
                      log_fn=logging.info, every_seconds=10.0)
  with concurrent.futures.ThreadPoolExecutor(workers) as pool:
    for chunk in _full_size_chunks(records, encoded):
      for (index, _), face in zip(chunk, pool.map(lambda item: normaliser.frame_main(item[1]),
                                                   chunk), strict=True):
        framed[index] = True
        if face is None:
          failed[records[index].key] = NO_FACE
        else:
          images[index] = face
      progress.update(int(framed.sum()))
  for index in np.flatnonzero(~framed):  # the decoder refused these
    failed[records[index].key] = _decode_error(
        encoded[index] if encoded else records[index].path, bool(encoded))
  return images, failed


def _full_size_chunks(records: Sequence[Record], encoded: Sequence[bytes]
                      ) -> Iterator[list[tuple[int, np.ndarray]]]:
  """(index, upright uint8 photo at full size) in chunks; photos that fail to decode are left
  out."""
  sources = list(encoded) if encoded else [r.path for r in records]
  orientations = np.array([r.orientation for r in records], np.int32)

  def load(source: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
    data = source if encoded else tf.io.read_file(source)
    return tf_images.apply_exif_orientation(tf_images.decode_image(data), orientation)

  dataset = tf.data.Dataset.from_tensor_slices((np.arange(len(records)), sources, orientations))
  dataset = dataset.map(lambda i, s, o: (i, load(s, o)), num_parallel_calls=AUTOTUNE,
                        deterministic=False)
  chunk = []
  for index, image in dataset.ignore_errors().prefetch(_FRAMING_CHUNK).as_numpy_iterator():
    chunk.append((int(index), image))
    if len(chunk) == _FRAMING_CHUNK:
      yield chunk
      chunk = []
  if chunk:
    yield chunk


def _check_framing_fits(use_cache: bool, num_images: int, config: ml_collections.ConfigDict):
  """Framed photos are kept in memory: the framing pass runs once per run, not per epoch."""
  if not use_cache:
    gib = num_images * config.image_size ** 2 * 3 / 2**30
    raise DataError(f"data.face_framing.mode='align' keeps the {num_images:,} framed photos in "
                    f"memory ({gib:.1f} GiB): set data.cache='memory' or raise "
                    f"data.cache_max_gb (data.cache={config.cache!r})")


def create_store(
    records: Sequence[Record], config: ml_collections.ConfigDict, encoded: Sequence[bytes] = ()
) -> tuple[ImageStore, dict[tuple[str, int], str]]:
  """Builds the image store for `records` and returns the rows whose images failed.

  With the cache on, every image is decoded and resized once here; with it off and
  `data.verify_images` on, the same pass runs but only keeps the verdicts. Photos that
  come as `encoded` bytes (prepared records) keep those bytes when not cached.
  """
  use_cache = cache_fits(len(records), config.image_size, config)
  failed: dict[tuple[str, int], str] = {}
  images = None
  if config.face_framing.mode == "align":
    _check_framing_fits(use_cache, len(records), config)
    images, failed = frame_all(records, config, encoded)
  elif use_cache or config.verify_images:
    images, failed = decode_all(records, config.image_size, keep=use_cache, encoded=encoded)
  keep = [i for i, r in enumerate(records) if r.key not in failed]
  cache = held_bytes = None
  if use_cache:
    cache = tf.Variable(images[keep], trainable=False, name="image_cache")
  elif encoded:
    held_bytes = tf.Variable([encoded[i] for i in keep], trainable=False, name="image_bytes")
  logging.info("image store: %d images at %dx%d, %s", len(keep), config.image_size,
               config.image_size, _describe_storage(cache, held_bytes))
  store = ImageStore(
      paths=() if encoded else tuple(records[i].path for i in keep),
      orientations=np.array([records[i].orientation for i in keep], np.int32),
      file_names=tuple(records[i].file_name for i in keep),
      ages=np.array([records[i].age for i in keep], np.float32),
      image_size=config.image_size,
      cache=cache,
      encoded=held_bytes,
  )
  return store, failed


def _describe_storage(cache: tf.Variable | None, held_bytes: tf.Variable | None) -> str:
  if cache is not None:
    return f"cached in memory ({cache.shape.num_elements() / 2**20:.0f} MiB)"
  if held_bytes is not None:
    return "decoded each epoch from file bytes held in memory"
  return "decoded from files each epoch"
