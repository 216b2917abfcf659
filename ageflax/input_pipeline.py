"""The tf.data input pipeline: decoded image store, training stream and evaluation stream.

What each step trains on is a pure function of (seed, step): the epoch's order is a
seeded permutation, each global batch is a fixed slice of it, and every host takes its
own rows of the global batch. Evaluation pads the last batch and carries a mask, so
every photo counts exactly once on any number of hosts.
"""

import dataclasses
import os
from collections.abc import Iterator, Sequence

import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging

from ageflax import layouts, preprocessing, records
from ageflax.errors import DataError
from ageflax.records import Record

# JAX owns the accelerators; TensorFlow only reads and augments on the host.
tf.config.set_visible_devices([], "GPU")

AUTOTUNE = tf.data.AUTOTUNE


@dataclasses.dataclass(frozen=True)
class HostRows:
  """The rows [start, start + size) of each global batch that this host feeds."""

  start: int
  size: int


@dataclasses.dataclass
class ImageStore:
  """Where decoded images come from: an in-memory uint8 cache or the files themselves."""

  paths: tuple[str, ...]
  orientations: np.ndarray
  file_names: tuple[str, ...]
  ages: np.ndarray
  image_size: int
  cache: tf.Variable | None = None

  def __len__(self) -> int:
    return len(self.paths)

  def gather(self, indices: tf.Tensor) -> tf.Tensor:
    """uint8 [len(indices), S, S, 3] images for a vector of store indices."""
    if self.cache is not None:
      return tf.gather(self.cache, indices)
    paths = tf.gather(tf.constant(self.paths), indices)
    orientations = tf.gather(tf.constant(self.orientations), indices)
    size = self.image_size
    return tf.map_fn(lambda p: preprocessing.load_image(p[0], p[1], size), (paths, orientations),
                     fn_output_signature=tf.TensorSpec([size, size, 3], tf.uint8))


def cache_fits(num_images: int, image_size: int, config: ml_collections.ConfigDict) -> bool:
  """Whether `data.cache` asks for ('memory') or, when 'auto', allows an in-memory cache."""
  if config.cache in ("memory", "none"):
    return config.cache == "memory"
  if config.cache != "auto":
    raise DataError(f"data.cache must be 'auto', 'memory' or 'none', not {config.cache!r}")
  return num_images * image_size * image_size * 3 <= config.cache_max_gb * 2**30


def decode_all(
    records: Sequence[Record], image_size: int, keep: bool
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
  dataset = tf.data.Dataset.from_tensor_slices((np.arange(len(paths)), paths, orientations))
  dataset = dataset.map(lambda i, p, o: (i, preprocessing.load_image(p, o, image_size)),
                        num_parallel_calls=AUTOTUNE, deterministic=False)
  dataset = dataset.ignore_errors().batch(256).prefetch(2)
  images = np.zeros((len(paths), image_size, image_size, 3), np.uint8) if keep else None
  decoded = np.zeros(len(paths), bool)
  for indices, batch in dataset.as_numpy_iterator():
    decoded[indices] = True
    if keep:
      images[indices] = batch
  failed = {records[i].key: _decode_error(paths[i]) for i in np.flatnonzero(~decoded)}
  return images, failed


def _decode_error(path: str) -> str:
  """The first line of the decoder's own complaint about one file."""
  try:
    preprocessing.decode_image(tf.io.read_file(path))
  except tf.errors.OpError as e:
    return "cannot decode image: " + e.message.strip().splitlines()[0][:200]
  return "cannot decode image"


def create_store(
    records: Sequence[Record], config: ml_collections.ConfigDict
) -> tuple[ImageStore, dict[tuple[str, int], str]]:
  """Builds the image store for `records` and returns the rows whose images failed.

  With the cache on, every image is decoded and resized once here; with it off and
  `data.verify_images` on, the same pass runs but only keeps the verdicts.
  """
  use_cache = cache_fits(len(records), config.image_size, config)
  failed: dict[tuple[str, int], str] = {}
  images = None
  if use_cache or config.verify_images:
    images, failed = decode_all(records, config.image_size, keep=use_cache)
  keep = [i for i, r in enumerate(records) if r.key not in failed]
  cache = None
  if use_cache:
    cache = tf.Variable(images[keep], trainable=False, name="image_cache")
  logging.info("image store: %d images at %dx%d, %s", len(keep), config.image_size,
               config.image_size, f"cached in memory ({cache.shape.num_elements() / 2**20:.0f} MiB)"
               if use_cache else "decoded from files each epoch")
  store = ImageStore(
      paths=tuple(records[i].path for i in keep),
      orientations=np.array([records[i].orientation for i in keep], np.int32),
      file_names=tuple(records[i].file_name for i in keep),
      ages=np.array([records[i].age for i in keep], np.float32),
      image_size=config.image_size,
      cache=cache,
  )
  return store, failed


def epoch_order(num_examples: int, seed: int, epoch: int) -> np.ndarray:
  """The order in which one epoch visits the training examples."""
  return np.random.default_rng([seed, epoch]).permutation(num_examples)


def steps_per_epoch(num_examples: int, global_batch_size: int) -> int:
  """Full global batches per epoch (the remainder is dropped, a different one each epoch)."""
  return num_examples // global_batch_size


def _train_rows(indices: np.ndarray, global_batch: int, rows: HostRows, seed: int):
  """Returns f(epoch) -> (steps [spe], store indices [spe, rows.size]) for this host."""
  per_epoch = steps_per_epoch(len(indices), global_batch)

  def rows_of_epoch(epoch: np.int64) -> tuple[np.ndarray, np.ndarray]:
    order = indices[epoch_order(len(indices), seed, int(epoch))]
    batches = order[:per_epoch * global_batch].reshape(per_epoch, global_batch)
    steps = np.arange(per_epoch, dtype=np.int64) + int(epoch) * per_epoch
    return steps, batches[:, rows.start:rows.start + rows.size].astype(np.int64)

  return rows_of_epoch


def train_dataset(
    store: ImageStore,
    indices: np.ndarray,
    global_batch_size: int,
    rows: HostRows,
    seed: int,
    start_step: int,
    num_steps: int,
    config: ml_collections.ConfigDict,
) -> tf.data.Dataset:
  """Batches {'image' uint8, 'age' float32} for steps start_step .. num_steps - 1.

  Step s covers epoch s // steps_per_epoch; its augmentation uses seed (seed, s).
  """
  per_epoch = steps_per_epoch(len(indices), global_batch_size)
  if per_epoch == 0:
    raise DataError(f"{len(indices)} training photos do not fill one batch of "
                    f"train.batch_size={global_batch_size}")
  rows_of_epoch = _train_rows(indices, global_batch_size, rows, seed)

  def epoch_batches(epoch):
    steps, batch_rows = tf.numpy_function(rows_of_epoch, [epoch], (tf.int64, tf.int64))
    steps = tf.ensure_shape(steps, [per_epoch])
    batch_rows = tf.ensure_shape(batch_rows, [per_epoch, rows.size])
    return tf.data.Dataset.from_tensor_slices((steps, batch_rows))

  ages = tf.constant(store.ages)

  def load(step, batch_rows):
    images = preprocessing.augment_batch(
        store.gather(batch_rows), tf.stack([tf.cast(seed, tf.int64), step]),
        global_batch_size, rows.start, config.augment)
    return {"image": images, "age": tf.gather(ages, batch_rows)}

  first_epoch = start_step // per_epoch
  last_epoch = (num_steps - 1) // per_epoch
  dataset = tf.data.Dataset.range(first_epoch, last_epoch + 1).flat_map(epoch_batches)
  dataset = dataset.skip(start_step - first_epoch * per_epoch).take(num_steps - start_step)
  dataset = dataset.map(load, num_parallel_calls=AUTOTUNE)
  return _finish(dataset, config)


def eval_dataset(
    store: ImageStore,
    indices: np.ndarray,
    global_batch_size: int,
    rows: HostRows,
    config: ml_collections.ConfigDict,
) -> tf.data.Dataset:
  """Batches {'image', 'age', 'mask', 'index'} covering `indices` once, in order.

  The last global batch is padded (mask 0, index -1) so that every host runs the same
  number of batches and each photo is counted exactly once.
  """
  num_batches = -(-len(indices) // global_batch_size)
  padded = np.full(num_batches * global_batch_size, -1, np.int64)
  padded[:len(indices)] = indices
  host_rows = padded.reshape(num_batches, global_batch_size)[:, rows.start:rows.start + rows.size]
  ages = tf.constant(store.ages)

  def load(batch_rows):
    safe_rows = tf.maximum(batch_rows, 0)
    return {
        "image": store.gather(safe_rows),
        "age": tf.gather(ages, safe_rows),
        "mask": tf.cast(batch_rows >= 0, tf.float32),
        "index": batch_rows,
    }

  dataset = tf.data.Dataset.from_tensor_slices(host_rows).map(load, num_parallel_calls=AUTOTUNE)
  return _finish(dataset, config)


def _finish(dataset: tf.data.Dataset, config: ml_collections.ConfigDict) -> tf.data.Dataset:
  options = tf.data.Options()
  options.deterministic = True
  options.threading.private_threadpool_size = config.num_threads or os.cpu_count()
  return dataset.with_options(options).prefetch(config.prefetch_batches)


def as_numpy(dataset: tf.data.Dataset, source: str) -> Iterator[dict[str, np.ndarray]]:
  """Iterates numpy batches, turning a TensorFlow failure into a one-line DataError."""
  iterator = dataset.as_numpy_iterator()
  while True:
    try:
      batch = next(iterator)
    except StopIteration:
      return
    except tf.errors.OpError as e:
      first_line = e.message.strip().splitlines()[0][:300]
      raise DataError(f"reading {source} failed: {first_line} (an image changed since it was "
                      "checked? rerun with data.verify_images=True to find it)") from None
    yield batch


@dataclasses.dataclass(frozen=True)
class PreparedData:
  """A validated data folder: the image store and each split's indices into it."""

  store: ImageStore
  splits: dict[str, np.ndarray]
  problems: tuple

  def indices(self, split: str) -> np.ndarray:
    """Image-store indices of a split: 'train', 'validation', 'test' or 'all'."""
    if split == "all":
      return np.arange(len(self.store), dtype=np.int64)
    return self.splits[split]

  def ages(self, split: str) -> np.ndarray:
    return self.store.ages[self.indices(split)]

  def summary(self) -> dict[str, float]:
    """Split sizes and training-set age statistics (saved beside a run)."""
    train_ages = self.ages("train")
    return {
        **{f"num_{name}": len(indices) for name, indices in self.splits.items()},
        "num_skipped": len(self.problems),
        "train_mean_age": float(np.mean(train_ages)) if len(train_ages) else float("nan"),
        "train_median_age": float(np.median(train_ages)) if len(train_ages) else float("nan"),
    }


def prepare(config: ml_collections.ConfigDict, problems_path: str | None) -> PreparedData:
  """Reads, validates, decodes and splits `data.dir`, applying the bad-row policy.

  Args:
    config: the `data` config section.
    problems_path: where to write every skipped row as CSV (None: don't write).

  Returns:
    The prepared data; skipped rows are logged with their count and names.
  """
  if not config.dir:
    raise DataError("no data folder: set --config.data.dir=DIR (labels.csv + final_files/, "
                    "or another layout: see data.format)")
  faces = layouts.read_faces(config)
  records.apply_bad_row_policy(faces, config.bad_rows, config.max_bad_fraction)
  store, failed = create_store(faces.records, config)
  faces = faces.without(failed)
  records.apply_bad_row_policy(faces, config.bad_rows, config.max_bad_fraction)
  _report_problems(faces, problems_path)
  position = {record.key: i for i, record in enumerate(faces.records)}
  splits = records.split_records(faces.records, config.validation_fraction,
                                 config.test_fraction, config.split_seed)
  indices = {name: np.array([position[r.key] for r in split], np.int64)
             for name, split in splits.items()}
  return PreparedData(store, indices, faces.problems)


def _report_problems(faces: records.LabelledFaces, problems_path: str | None) -> None:
  if not faces.problems:
    return
  total = len(faces.records) + len(faces.problems)
  shown = faces.problems[:20]
  logging.warning("skipping %d of %d rows of %s (data.bad_rows='skip'):\n  %s%s",
                  len(faces.problems), total, faces.source,
                  "\n  ".join(p.describe() for p in shown),
                  f"\n  ... and {len(faces.problems) - len(shown)} more" if len(
                      faces.problems) > len(shown) else "")
  if problems_path:
    records.write_problems(faces.problems, problems_path)
    logging.warning("every skipped row is listed in %s", problems_path)
