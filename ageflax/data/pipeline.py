"""The tf.data input pipeline: preparing a data source, the training and evaluation streams.

A data folder (any `layouts` format) or prepared TFDS records become an image store
and each split's indices into it. What each step trains on is a pure function of
(seed, step): the epoch's order is a seeded permutation, each global batch is a fixed
slice of it, and every host takes its own rows of the global batch (or, with records
sharded per host, its own batch of its own shard). Evaluation pads the last batch and
carries a mask, so every photo counts exactly once on any number of hosts.
"""

import dataclasses
import os
import pathlib
from collections.abc import Iterator, Sequence

import ml_collections
import numpy as np
import tensorflow as tf
from absl import logging

from ageflax.core import age_stats
from ageflax.core.errors import ConfigError, DataError
from ageflax.data import label_rows, layouts, tf_augment
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


def _train_rows(indices: np.ndarray, global_batch: int, rows: HostRows, seed: int,
                host_shard: bool):
  """Returns f(epoch) -> (steps [spe], store indices [spe, rows.size]) for this host.

  With `host_shard`, `indices` are this host's own photos and each of its batches is
  drawn from them alone; otherwise every host orders all photos and takes its rows.
  """
  batch = rows.size if host_shard else global_batch
  first = 0 if host_shard else rows.start
  shard = (rows.start,) if host_shard else ()
  per_epoch = steps_per_epoch(len(indices), batch)

  def rows_of_epoch(epoch: np.int64) -> tuple[np.ndarray, np.ndarray]:
    order = indices[epoch_order(len(indices), seed, int(epoch), *shard)]
    batches = order[:per_epoch * batch].reshape(per_epoch, batch)
    steps = np.arange(per_epoch, dtype=np.int64) + int(epoch) * per_epoch
    return steps, batches[:, first:first + rows.size].astype(np.int64)

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
    host_shard: bool = False,
) -> tf.data.Dataset:
  """Batches {'image' uint8, 'age' float32} for steps start_step .. num_steps - 1.

  Step s covers epoch s // steps_per_epoch; its augmentation uses seed (seed, s). With
  `data.augment.placement='device'` the images come unaugmented: the train step augments.
  With `host_shard`, `indices` are this host's shard of the training photos.
  """
  per_epoch = steps_per_epoch(len(indices), rows.size if host_shard else global_batch_size)
  if per_epoch == 0:
    raise DataError(f"{len(indices)} training photos do not fill one batch of "
                    f"train.batch_size={global_batch_size}")
  rows_of_epoch = _train_rows(indices, global_batch_size, rows, seed, host_shard)

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
  """A validated data source: the image store and each split's indices into it.

  With prepared records on several hosts, 'train' holds only this host's shard
  (`host_shard`), and `totals` gives the split sizes and statistics over all hosts.
  """

  store: ImageStore
  splits: dict[str, np.ndarray]
  problems: tuple
  host_shard: bool = False
  totals: dict[str, float] | None = None

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
                    num_steps: int, config: ml_collections.ConfigDict) -> tf.data.Dataset:
    """`train_dataset` over this source's training photos (see there)."""
    return train_dataset(self.store, self.splits["train"], global_batch_size, rows, seed,
                         start_step, num_steps, config, self.host_shard)


def prepare(
    config: ml_collections.ConfigDict,
    problems_path: str | None,
    process_index: int = 0,
    process_count: int = 1,
    splits: Sequence[str] | None = None,
) -> PreparedData:
  """Reads, validates, decodes and splits `data.dir`, applying the bad-row policy.

  Args:
    config: the `data` config section.
    problems_path: where to write every skipped row as CSV (None: don't write).
    process_index: this host's index; with `data.source='tfds'` each host reads its own
      shard of the training records.
    process_count: the number of hosts.
    splits: the splits that will be read (default: all); with face framing on, only
      their photos are framed, the others' indices are left empty.

  Returns:
    The prepared data; skipped rows are logged with their count and names.
  """
  if not config.dir:
    raise DataError("no data folder: set --config.data.dir=DIR (labels.csv + final_files/, "
                    "or another layout: see data.format)")
  if config.source == "tfds":
    return _prepare_records(config, process_index, process_count)
  faces = layouts.read_faces(config)
  label_rows.apply_bad_row_policy(faces, config.bad_rows, config.max_bad_fraction)
  if config.face_framing.mode == "align":
    return _prepare_framed(faces, config, problems_path, splits or label_rows.SPLITS)
  store, failed = create_store(faces.records, config)
  faces = faces.without(failed)
  label_rows.apply_bad_row_policy(faces, config.bad_rows, config.max_bad_fraction)
  _report_problems(faces, problems_path)
  by_split = _split(faces.records, config)
  return PreparedData(store, _store_indices([r.key for r in faces.records], by_split),
                      faces.problems)


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
  records = [r for name in label_rows.SPLITS if name in wanted for r in by_split[name]]
  store, failed = create_store(records, config)
  faces = faces.without(failed)
  label_rows.apply_bad_row_policy(faces, config.bad_rows, config.max_bad_fraction)
  _report_problems(faces, problems_path)
  kept = [r.key for r in records if r.key not in failed]
  return PreparedData(store, _store_indices(kept, by_split), faces.problems)


def _split(records: Sequence[label_rows.Record], config: ml_collections.ConfigDict
           ) -> dict[str, tuple[label_rows.Record, ...]]:
  return label_rows.split_records(records, config.validation_fraction, config.test_fraction,
                                  config.split_seed, config.split_by)


def _store_indices(store_keys: Sequence[tuple[str, int]],
                   by_split: dict[str, Sequence[label_rows.Record]]) -> dict[str, np.ndarray]:
  """Each split's positions in the image store, whose photos are `store_keys` in order
  (a split's photos that are not in the store, e.g. not framed, are left out)."""
  position = {key: i for i, key in enumerate(store_keys)}
  return {name: np.array([position[r.key] for r in part if r.key in position], np.int64)
          for name, part in by_split.items()}


def _prepare_records(config, process_index: int, process_count: int) -> PreparedData:
  """Prepared records: every host reads all evaluation photos and its shard of 'train'."""
  if config.face_framing.mode != "none":
    # Records fix each split's photos when written; framing would drop some afterwards.
    raise ConfigError("data.face_framing.mode='align' reads a photo folder, not prepared "
                      "records (data.source='tfds'): train on the folder itself")
  from ageflax.data import tfds_records  # tensorflow_datasets loads only for records

  builder = tfds_records.load_builder(config.dir)
  prepared = tfds_records.PreparedRecords(builder)
  prepared.warn_on_changed_split(config)
  host_shard = process_count > 1
  all_records, encoded, splits = [], [], {}
  for split in label_rows.SPLITS:
    part, part_bytes = prepared.read(split, process_index if split == "train" else 0,
                                     process_count if split == "train" else 1)
    splits[split] = np.arange(len(all_records), len(all_records) + len(part), dtype=np.int64)
    all_records += part
    encoded += part_bytes
  store, failed = create_store(all_records, config, encoded)
  if failed:
    key, reason = next(iter(failed.items()))
    raise DataError(f"{builder.data_dir}: {len(failed)} stored image(s) do not decode, e.g. "
                    f"{key[0]} row {key[1]}: {reason}; the records are damaged, write them again")
  if host_shard and len(splits["train"]) < prepared.num_examples("train") // process_count:
    raise DataError(f"{builder.data_dir}: host {process_index} read "
                    f"{len(splits['train'])} training photos, expected "
                    f"{prepared.num_examples('train') // process_count}")
  return PreparedData(store, splits, (), host_shard, prepared.summary())


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
