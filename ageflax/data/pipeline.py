"""The tf.data input pipeline: preparing a data source, the training and evaluation streams.

A data folder (any `layouts` format) or prepared TFDS records become an image store
and each split's indices into it. What each step trains on is a pure function of
(seed, step): the epoch's order is a seeded permutation, each global batch is a fixed
slice of it, and every host takes its own rows of the global batch, the same batches
from a folder or its records on any number of hosts. Records, and a folder too large
for the in-memory cache, are read by index (`record_store`): each host reads and decodes
only its rows. Evaluation pads the last
batch and carries a mask, so every photo counts exactly once on any number of hosts.
"""

import dataclasses
import os
import pathlib
from collections.abc import Iterable, Iterator, Sequence

import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging

from ageflax.core import age_stats
from ageflax.core.errors import DataError
from ageflax.data import image_store, label_rows, layouts, photo_sources, record_store, tf_augment
from ageflax.data.augment_spec import AugmentSpec
from ageflax.data.image_store import ImageStore, create_store

AUTOTUNE = tf.data.AUTOTUNE


@dataclasses.dataclass(frozen=True)
class HostRows:
  """The rows [start, start + size) of each global batch that this host feeds."""

  start: int
  size: int


def epoch_order(num_examples: int, seed: int, epoch: int, *shard: int) -> np.ndarray:
  """The order in which one epoch visits the training examples (of one host's `shard`)."""
  return np.random.default_rng([seed, epoch, *shard]).permutation(num_examples)


def steps_per_epoch(num_examples: int, global_batch_size: int) -> int:
  """Full global batches per epoch (the remainder is dropped, a different one each epoch)."""
  return num_examples // global_batch_size


def _train_rows(indices: np.ndarray, global_batch: int, rows: HostRows, seed: int):
  """Returns f(epoch) -> (steps [spe], store indices [spe, rows.size]) for this host.

  Every host orders all photos alike and takes its rows of each global batch.
  """
  per_epoch = steps_per_epoch(len(indices), global_batch)

  def rows_of_epoch(epoch: np.int64) -> tuple[np.ndarray, np.ndarray]:
    order = indices[epoch_order(len(indices), seed, int(epoch))]
    batches = order[:per_epoch * global_batch].reshape(per_epoch, global_batch)
    steps = np.arange(per_epoch, dtype=np.int64) + int(epoch) * per_epoch
    return steps, batches[:, rows.start:rows.start + rows.size].astype(np.int64)

  return rows_of_epoch


def train_dataset(
    store: ImageStore | record_store.RecordStore,
    indices: np.ndarray,
    global_batch_size: int,
    rows: HostRows,
    seed: int,
    start_step: int,
    num_steps: int,
    config: ml_collections.ConfigDict,
) -> tf.data.Dataset | Iterator[dict[str, np.ndarray]]:
  """Batches {'image' uint8, 'age' float32} for steps start_step .. num_steps - 1.

  Step s covers epoch s // steps_per_epoch; its augmentation uses seed (seed, s). With
  `data.augment.placement='device'` the images come unaugmented: the train step augments.
  From a `RecordStore` (records, or a folder's files) the batches come as numpy, read by a
  background thread.
  """
  per_epoch = steps_per_epoch(len(indices), global_batch_size)
  if per_epoch == 0:
    raise DataError(f"{len(indices)} training photos do not fill one batch of "
                    f"train.batch_size={global_batch_size}")
  rows_of_epoch = _train_rows(indices, global_batch_size, rows, seed)
  if isinstance(store, record_store.RecordStore):
    batches = _record_train_batches(store, rows_of_epoch, global_batch_size, rows, seed,
                                    (start_step, num_steps, per_epoch), config)
    return record_store.prefetched(batches, config.prefetch_batches)

  def epoch_batches(epoch):
    steps, batch_rows = tf.numpy_function(rows_of_epoch, [epoch], (tf.int64, tf.int64))
    steps = tf.ensure_shape(steps, [per_epoch])
    batch_rows = tf.ensure_shape(batch_rows, [per_epoch, rows.size])
    return tf.data.Dataset.from_tensor_slices((steps, batch_rows))

  first_epoch = start_step // per_epoch
  last_epoch = (num_steps - 1) // per_epoch
  dataset = tf.data.Dataset.range(first_epoch, last_epoch + 1).flat_map(epoch_batches)
  dataset = dataset.skip(start_step - first_epoch * per_epoch).take(num_steps - start_step)
  load = _train_batch_loader(store, seed, global_batch_size, rows, config)
  dataset = dataset.map(load, num_parallel_calls=AUTOTUNE)
  return _finish(dataset, config)


def _train_batch_loader(store: ImageStore, seed: int, global_batch_size: int, rows: HostRows,
                        config: ml_collections.ConfigDict):
  """(step, batch rows) -> the batch's pixels, augmented on the host unless on the device."""
  ages = tf.constant(store.ages)
  augment = AugmentSpec.from_config(config.augment)

  def load(step, batch_rows):
    images = store.gather(batch_rows)
    if not augment.on_device:
      images = tf_augment.augment_batch(images, tf.stack([tf.cast(seed, tf.int64), step]),
                                        global_batch_size, rows.start, augment)
    return {"image": images, "age": tf.gather(ages, batch_rows)}

  return load


def _record_train_batches(store: record_store.RecordStore, rows_of_epoch, global_batch_size: int,
                          rows: HostRows, seed: int, step_range: tuple[int, int, int],
                          config: ml_collections.ConfigDict) -> Iterator[dict[str, np.ndarray]]:
  """This host's rows of each step's batch from records, augmented as `_train_batch_loader`."""
  start_step, num_steps, per_epoch = step_range
  augment = AugmentSpec.from_config(config.augment)
  augment_fn = tf.function(lambda images, step_seed: tf_augment.augment_batch(
      images, step_seed, global_batch_size, rows.start, augment))
  for epoch in range(start_step // per_epoch, (num_steps - 1) // per_epoch + 1):
    for step, batch_rows in zip(*rows_of_epoch(epoch), strict=True):
      if start_step <= step < num_steps:
        images, ages = store.read(batch_rows)
        if not augment.on_device:
          images = augment_fn(images, np.array([seed, step], np.int64)).numpy()
        yield {"image": images, "age": ages}


def eval_dataset(
    store: ImageStore | record_store.RecordStore,
    indices: np.ndarray,
    global_batch_size: int,
    rows: HostRows,
    config: ml_collections.ConfigDict,
) -> tf.data.Dataset | Iterator[dict[str, np.ndarray]]:
  """Batches {'image', 'age', 'mask', 'index'} covering `indices` once, in order.

  The last global batch is padded (mask 0, index -1) so that every host runs the same
  number of batches and each photo is counted exactly once. Each host reads only its rows.
  """
  num_batches = -(-len(indices) // global_batch_size)
  padded = np.full(num_batches * global_batch_size, -1, np.int64)
  padded[:len(indices)] = indices
  host_rows = padded.reshape(num_batches, global_batch_size)[:, rows.start:rows.start + rows.size]
  if isinstance(store, record_store.RecordStore):
    return record_store.prefetched(_record_eval_batches(store, host_rows),
                                   config.prefetch_batches)
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


def _record_eval_batches(store: record_store.RecordStore, host_rows: np.ndarray
                         ) -> Iterator[dict[str, np.ndarray]]:
  for batch_rows in host_rows:
    images, ages = store.read(batch_rows)
    yield {"image": images, "age": ages, "mask": (batch_rows >= 0).astype(np.float32),
           "index": batch_rows}


def _finish(dataset: tf.data.Dataset, config: ml_collections.ConfigDict) -> tf.data.Dataset:
  options = tf.data.Options()
  options.deterministic = True
  options.threading.private_threadpool_size = config.num_threads or os.cpu_count()
  return dataset.with_options(options).prefetch(config.prefetch_batches)


def as_numpy(dataset: tf.data.Dataset | Iterable[dict[str, np.ndarray]], source: str
             ) -> Iterator[dict[str, np.ndarray]]:
  """Iterates numpy batches, turning a TensorFlow failure into a one-line DataError."""
  if not isinstance(dataset, tf.data.Dataset):
    yield from dataset
    return
  iterator = dataset.as_numpy_iterator()
  while True:
    try:
      batch = next(iterator)
    except StopIteration:
      return
    except tf.errors.OpError as e:
      first_line = e.message.strip().splitlines()[0][:300]
      raise DataError(f"reading {source} failed: {first_line} (the in-memory cache of "
                      "decoded photos is damaged; rerun the same command)") from None
    yield batch


@dataclasses.dataclass(frozen=True)
class PreparedData:
  """A validated data source: the image store and each split's indices into it.

  With prepared records the store is a `RecordStore` and `totals` gives the split sizes
  and statistics the records were written with. From a folder, `split_records` holds the
  records each split was drawn with (before framing), from which `shifted_copy` makes a
  split again without reading the folder a second time.
  """

  store: ImageStore | record_store.RecordStore
  splits: dict[str, np.ndarray]
  problems: tuple
  totals: dict[str, float] | None = None
  split_records: dict[str, tuple[label_rows.Record, ...]] | None = None

  def indices(self, split: str) -> np.ndarray:
    """Image-store indices of a split: 'train', 'validation', 'test' or 'all'."""
    if split == "all":
      return np.arange(len(self.store), dtype=np.int64)
    return self.splits[split]

  def ages(self, split: str) -> np.ndarray:
    return self.store.ages[self.indices(split)]

  def num_examples(self, split: str) -> int:
    """Photos in `split` over all hosts."""
    return int(self.summary()[f"num_{split}"])

  def summary(self) -> dict[str, float]:
    """Split sizes and training-set age statistics (saved beside a run)."""
    if self.totals is not None:
      return dict(self.totals)
    return {
        **{f"num_{name}": len(indices) for name, indices in self.splits.items()},
        "num_skipped": len(self.problems),
        **age_stats.training_summary(age_stats.age_statistics(self.ages("train"))),
    }

  def train_dataset(self, global_batch_size: int, rows: HostRows, seed: int, start_step: int,
                    num_steps: int, config: ml_collections.ConfigDict
                    ) -> tf.data.Dataset | Iterator[dict[str, np.ndarray]]:
    """`train_dataset` over this source's training photos (see there)."""
    return train_dataset(self.store, self.splits["train"], global_batch_size, rows, seed,
                         start_step, num_steps, config)


def prepare(
    config: ml_collections.ConfigDict,
    problems_path: str | None,
    process_index: int = 0,
    splits: Sequence[str] | None = None,
) -> PreparedData:
  """Reads, validates, decodes and splits `data.dir`, applying the bad-row policy.

  Args:
    config: the `data` config section.
    problems_path: where to write every skipped row as CSV (None: don't write); from a
      folder only process 0 writes it, from records each host appends the photos it
      finds that fail to decode.
    process_index: this host's index; every host reads its rows of the same batches,
      however many hosts there are.
    splits: the splits that will be read (default: all); with face framing on, only
      their photos are framed, the others' indices are left empty.

  Returns:
    The prepared data; skipped rows are logged with their count and names.
  """
  if not config.dir:
    raise DataError("no data folder: set --config.data.dir=DIR (labels.csv + final_files/, "
                    "or another layout: see data.format)")
  if config.source == "tfds":
    return _prepare_records(config, problems_path)
  writer_path = problems_path if process_index == 0 else None
  faces = layouts.read_faces(config)
  label_rows.apply_bad_row_policy(faces, config.bad_rows, config.max_bad_fraction)
  if config.face_framing.mode == "align":
    return _prepare_framed(faces, config, writer_path, splits or label_rows.SPLITS)
  if not image_store.cache_fits(len(faces.records), config.image_size, config):
    return _prepare_streamed(faces, config, writer_path, problems_path)
  store, failed = create_store(faces.records, config)
  faces = faces.without(failed)
  label_rows.apply_bad_row_policy(faces, config.bad_rows, config.max_bad_fraction)
  _report_problems(faces, writer_path)
  by_split = _split(faces.records, config)
  return PreparedData(store, _store_indices([r.key for r in faces.records], by_split),
                      faces.problems, split_records=by_split)


def shifted_copy(data: PreparedData, split: str, config: ml_collections.ConfigDict,
                 shift: image_store.PhotoShift) -> PreparedData:
  """`split` of `data` made again from its photos, each changed by `shift` at full size
  before framing or resizing (a till camera's, `till_shifts`); the other splits' indices
  are left empty.

  The photos are those the split was drawn with, in the same order (so `shift` sees the
  same index for a photo every time), read again from their files; the folder is not
  listed, checked or split again. Its problems are the photos whose face the shift lost.

  Raises:
    DataError: `data` came from prepared records, whose photos are already resized.
  """
  if data.split_records is None:
    raise DataError(f"{config.dir}: prepared records hold photos already resized (and "
                    "framed); shifted copies are made from a photo folder")
  records = _records_of(data.split_records,
                        label_rows.SPLITS if split == "all" else [split])
  store, failed = create_store(records, config, shift=shift)
  shifted = label_rows.LabelledFaces(config.dir, tuple(records), ()).without(failed)
  return PreparedData(store, _store_indices([r.key for r in shifted.records],
                                            data.split_records), shifted.problems,
                      split_records=data.split_records)


def holds_records(directory: str) -> bool:
  """Whether `directory` holds records written by `tfds_records.write_records` (at any depth)."""
  return next(pathlib.Path(directory).glob("**/dataset_info.json"), None) is not None


def _prepare_framed(faces: label_rows.LabelledFaces, config: ml_collections.ConfigDict,
                    problems_path: str | None, wanted: Sequence[str]) -> PreparedData:
  """A folder whose photos are framed by the face normaliser.

  The split is drawn before framing, so which photos are held out does not depend on the
  detector; a photo without a usable face is then a bad row of its split, named and counted
  like any other (data.bad_rows, data.max_bad_fraction).
  """
  by_split = _split(faces.records, config)
  records = _records_of(by_split, wanted)
  store, failed = create_store(records, config)
  faces = faces.without(failed)
  label_rows.apply_bad_row_policy(faces, config.bad_rows, config.max_bad_fraction)
  _report_problems(faces, problems_path)
  kept = [r.key for r in records if r.key not in failed]
  return PreparedData(store, _store_indices(kept, by_split), faces.problems,
                      split_records=by_split)


def _prepare_streamed(faces: label_rows.LabelledFaces, config: ml_collections.ConfigDict,
                      writer_path: str | None, problems_path: str | None) -> PreparedData:
  """A folder that does not fit the in-memory cache, read from its files by index per batch.

  Up front only the files' headers were checked (`layouts`), unless `data.verify_images`
  decodes every photo once too (keeping no pixels). A photo that fails to decode in the
  stream is replaced as a damaged record is, each host appending it to the skipped rows.
  """
  if config.verify_images:
    faces = faces.without(image_store.undecodable(faces.records))
    label_rows.apply_bad_row_policy(faces, config.bad_rows, config.max_bad_fraction)
  _report_problems(faces, writer_path)
  by_split = _split(faces.records, config)
  splits = _store_indices([r.key for r in faces.records], by_split)
  store = record_store.RecordStore(
      photo_sources.FilePhotos(faces.records, config.num_threads), splits, config.image_size,
      config.max_bad_fraction, config.num_threads, problems_path, config.dir)
  logging.info("%s: %d photos read from their files by index, decoded at %dx%d per batch "
               "(not cached: data.cache=%r, data.cache_max_gb=%g)", config.dir, len(store),
               config.image_size, config.image_size, config.cache, config.cache_max_gb)
  return PreparedData(store, splits, faces.problems, split_records=by_split)


def _split(records: Sequence[label_rows.Record], config: ml_collections.ConfigDict
           ) -> dict[str, tuple[label_rows.Record, ...]]:
  return label_rows.split_records(records, config.validation_fraction, config.test_fraction,
                                  config.split_seed, config.split_by)


def _records_of(by_split: dict[str, Sequence[label_rows.Record]], wanted: Sequence[str]
                ) -> list[label_rows.Record]:
  """The records of the `wanted` splits, in split order."""
  return [r for name in label_rows.SPLITS if name in wanted for r in by_split[name]]


def _store_indices(store_keys: Sequence[tuple[str, int]],
                   by_split: dict[str, Sequence[label_rows.Record]]) -> dict[str, np.ndarray]:
  """Each split's positions in the image store, whose photos are `store_keys` in order
  (a split's photos that are not in the store, e.g. not framed, are left out)."""
  position = {key: i for i, key in enumerate(store_keys)}
  return {name: np.array([position[r.key] for r in part if r.key in position], np.int64)
          for name, part in by_split.items()}


def _prepare_records(config: ml_collections.ConfigDict, problems_path: str | None
                     ) -> PreparedData:
  """Prepared records, checked and opened for reading by index; no photo is read yet.

  Records written with `data.face_framing.mode='align'` hold framed photos: the config
  must ask for the same framing, which was done once, when they were written.
  """
  from ageflax.data import tfds_records  # tensorflow_datasets loads only for records

  builder = tfds_records.load_builder(config.dir)
  prepared = tfds_records.PreparedRecords(builder)
  prepared.check_framing(config)
  prepared.warn_on_changed_split(config)
  photos = photo_sources.RecordPhotos(prepared.data_sources(), prepared.labels(),
                                      label_rows.SPLITS)
  splits = {split: photos.splits.get(split, np.zeros(0, np.int64)) for split in label_rows.SPLITS}
  store = record_store.RecordStore(
      photos, splits, config.image_size, config.max_bad_fraction, config.num_threads,
      problems_path, str(builder.data_dir))
  logging.info("%s: %d photos read by index, decoded at %dx%d per batch", builder.data_dir,
               len(store), config.image_size, config.image_size)
  return PreparedData(store, splits, (), prepared.summary())


def _report_problems(faces: label_rows.LabelledFaces, problems_path: str | None) -> None:
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
    label_rows.write_problems(faces.problems, problems_path)
    logging.warning("every skipped row is listed in %s", problems_path)
