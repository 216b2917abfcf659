"""The in-memory image store: a folder's photos decoded once, kept as uint8 pixels.

The store holds a split-independent list of photos and the in-memory cache of their
decoded, upright, resized (or framed) pixels, the fastest source for data that fits.
Decoding everything once up front is also how undecodable images are found and named
before training starts. A folder too large for the cache streams from its files instead
(`record_store`), checked up front by `undecodable` at most.
"""

import concurrent.futures
import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence

import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging

from ageflax.core.errors import DataError
from ageflax.core.progress import Progress, log_line
from ageflax.data import tf_images
from ageflax.data.label_rows import Record

AUTOTUNE = tf.data.AUTOTUNE
NO_FACE = "no face found (data.face_framing.mode='align')"
_FRAMING_CHUNK = 256  # photos decoded at full size and framed at a time (bounds memory)
# Photos decoded only to find the undecodable are resized this small: the size does not matter.
_CHECK_SIZE = 16
# (upright uint8 photo at full size, its index among the records) -> the changed photo,
# e.g. a till-camera shift (`till_shifts`), applied before framing or resizing.
PhotoShift = Callable[[np.ndarray, int], np.ndarray]


@dataclasses.dataclass
class ImageStore:
  """A folder's photos decoded into memory, with their files, names and ages."""

  paths: tuple[str, ...]
  file_names: tuple[str, ...]
  ages: np.ndarray
  image_size: int
  cache: tf.Variable  # uint8 [N, S, S, 3]
  groups: tuple[tuple[tuple[str, str], ...], ...] = ()  # each photo's Record.groups, if any

  def __len__(self) -> int:
    return len(self.ages)

  def gather(self, indices: tf.Tensor) -> tf.Tensor:
    """uint8 [len(indices), S, S, 3] images for a vector of store indices."""
    return tf.gather(self.cache, indices)


def cache_fits(num_images: int, image_size: int, config: ml_collections.ConfigDict) -> bool:
  """Whether `data.cache` asks for ('memory') or, when 'auto', allows an in-memory cache."""
  if config.cache in ("memory", "none"):
    return config.cache == "memory"
  return num_images * image_size * image_size * 3 <= config.cache_max_gb * 2**30


def decode_all(records: Sequence[Record], image_size: int, keep: bool
               ) -> tuple[np.ndarray | None, dict[tuple[str, int], str]]:
  """Decodes every image once, in parallel, to find those no decoder can read.

  Args:
    records: photos to decode.
    image_size: output size of the resize.
    keep: return the decoded images (the in-memory cache) rather than dropping them.

  Returns:
    uint8 [N, S, S, 3] images (or None when not kept; rows of failed images are zero)
    and {record key: reason} for each record whose image failed to decode.
  """
  paths = [r.path for r in records]
  orientations = np.array([r.orientation for r in records], np.int32)
  dataset = tf.data.Dataset.from_tensor_slices((np.arange(len(records)), paths, orientations))
  dataset = dataset.map(lambda i, p, o: (i, tf_images.load_image(p, o, image_size)),
                        num_parallel_calls=AUTOTUNE, deterministic=False)
  dataset = dataset.ignore_errors().batch(256).prefetch(2)
  images = np.zeros((len(records), image_size, image_size, 3), np.uint8) if keep else None
  decoded = np.zeros(len(records), bool)
  for indices, batch in dataset.as_numpy_iterator():
    decoded[indices] = True
    if keep:
      images[indices] = batch
  failed = {records[i].key: _decode_error(paths[i]) for i in np.flatnonzero(~decoded)}
  return images, failed


def undecodable(records: Sequence[Record]) -> dict[tuple[str, int], str]:
  """{record key: reason} of each photo no decoder can read; decoded ones are dropped."""
  return decode_all(records, _CHECK_SIZE, keep=False)[1]


def _decode_error(path: str) -> str:
  """The first line of the decoder's own complaint about one image."""
  try:
    tf_images.decode_image(tf.io.read_file(path))
  except tf.errors.OpError as e:
    return "cannot decode image: " + e.message.strip().splitlines()[0][:200]
  return "cannot decode image"


def frame_all(
    records: Sequence[Record], config: ml_collections.ConfigDict, shift: PhotoShift | None = None,
) -> tuple[np.ndarray, dict[tuple[str, int], str]]:
  """Every photo framed once by the face normaliser (`data.face_framing`), in parallel.

  Photos are decoded and turned upright by TensorFlow as everywhere else, at full size,
  changed by `shift` (if given), then framed on their main face by a thread pool (one
  detector per thread).

  Returns:
    uint8 [N, S, S, 3] framed photos (rows of failed photos are zero) and {record key:
    reason} for each photo that failed to decode or shows no usable face.
  """
  from ageflax.data import faces  # OpenCV loads only when faces are framed

  normaliser = faces.FaceNormaliser.from_config(config)
  return _each_full_size(records, config, lambda image, index: normaliser.frame_main(
      image if shift is None else shift(image, index)), "framed")


def shift_all(records: Sequence[Record], config: ml_collections.ConfigDict, shift: PhotoShift
              ) -> tuple[np.ndarray, dict[tuple[str, int], str]]:
  """Every photo decoded at full size, changed by `shift`, then resized as `tf_images` does;
  returns what `frame_all` returns (no photo lacks a face here)."""
  size = config.image_size
  return _each_full_size(records, config, lambda image, index: tf_images.resize(
      shift(image, index), size).numpy(), "shifted")


def _each_full_size(records: Sequence[Record], config: ml_collections.ConfigDict,
                    finish: Callable[[np.ndarray, int], np.ndarray | None], verb: str) -> tuple[np.ndarray, dict[tuple[str, int], str]]:
  """`finish(photo at full size, index)` of every photo, in a thread pool: uint8 [N, S, S, 3]
  (zero rows where it failed) and {record key: reason} where it returned None (no face) or
  the photo failed to decode."""
  size = config.image_size
  images = np.zeros((len(records), size, size, 3), np.uint8)
  failed: dict[tuple[str, int], str] = {}
  workers = config.num_threads or os.cpu_count() or 1
  done = np.zeros(len(records), bool)
  progress = Progress(len(records), verb + " {done:,}/{total:,} photos", "photo",
                      log_fn=log_line, every_seconds=10.0)
  with concurrent.futures.ThreadPoolExecutor(workers) as pool:
    for chunk in _full_size_chunks(records):
      for (index, _), image in zip(chunk, pool.map(lambda item: finish(item[1], item[0]),
                                                    chunk), strict=True):
        done[index] = True
        if image is None:
          failed[records[index].key] = NO_FACE
        else:
          images[index] = image
      progress.update(int(done.sum()))
  for index in np.flatnonzero(~done):  # the decoder refused these
    failed[records[index].key] = _decode_error(records[index].path)
  return images, failed


def _full_size_chunks(records: Sequence[Record]) -> Iterator[list[tuple[int, np.ndarray]]]:
  """(index, upright uint8 photo at full size) in chunks; photos that fail to decode are left
  out."""
  paths = [r.path for r in records]
  orientations = np.array([r.orientation for r in records], np.int32)

  def load(path: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
    image = tf_images.decode_image(tf.io.read_file(path))
    return tf_images.apply_exif_orientation(image, orientation)

  dataset = tf.data.Dataset.from_tensor_slices((np.arange(len(records)), paths, orientations))
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


def check_framing_fits(num_images: int, config: ml_collections.ConfigDict) -> None:
  """Framing runs once, before training, and its photos stay in memory: framing a streamed
  folder at every step would cost the face detector per photo per epoch."""
  if not cache_fits(num_images, config.image_size, config):
    gib = num_images * config.image_size ** 2 * 3 / 2**30
    raise DataError(f"data.face_framing.mode='align' keeps the {num_images:,} framed photos in "
                    f"memory ({gib:.1f} GiB), more than data.cache={config.cache!r} allows "
                    f"(data.cache_max_gb={config.cache_max_gb:g}): raise it, set "
                    "data.cache='memory', or write framed records once with "
                    "scripts/prepare_tfds.py and train from them (data.source='tfds')")


def create_store(
    records: Sequence[Record], config: ml_collections.ConfigDict,
    shift: PhotoShift | None = None,
) -> tuple[ImageStore, dict[tuple[str, int], str]]:
  """Decodes every photo of `records` once into the in-memory cache; returns the store and
  the rows whose images failed.

  With `data.face_framing.mode='align'` each photo is framed on its face, with a `shift`
  changed by it at full size first (before framing or resizing). A folder that does not
  fit in memory streams from its files instead (`record_store`): framing does not.
  """
  if config.face_framing.mode == "align":
    if shift is None:
      check_framing_fits(len(records), config)
    images, failed = frame_all(records, config, shift)
  elif shift is not None:
    images, failed = shift_all(records, config, shift)
  else:
    images, failed = decode_all(records, config.image_size, keep=True)
  keep = [i for i, r in enumerate(records) if r.key not in failed]
  cache = tf.Variable(images[keep], trainable=False, name="image_cache")
  logging.info("image store: %d images at %dx%d, cached in memory (%.0f MiB)", len(keep),
               config.image_size, config.image_size, cache.shape.num_elements() / 2**20)
  store = ImageStore(
      paths=tuple(records[i].path for i in keep),
      file_names=tuple(records[i].file_name for i in keep),
      ages=np.array([records[i].age for i in keep], np.float32),
      image_size=config.image_size,
      cache=cache,
      groups=tuple(records[i].groups for i in keep),
  )
  return store, failed
