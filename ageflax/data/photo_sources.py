"""Where a streamed store's photos come from: prepared records, or a folder's files.

A source numbers its photos (the store indices a run's batches and predictions use),
holds their ages and names, and reads the photos of any store indices when asked: each
photo's file bytes with its EXIF orientation and the labels row that named it. The
`record_store.RecordStore` decodes what a source reads, whichever source it is.
"""

import concurrent.futures
import os
import pathlib
from collections.abc import Sequence

import numpy as np

from ageflax.data.label_rows import Record


class RecordPhotos:
  """The photos of prepared records, numbered split after split; ages and names in memory."""

  remedy = "the records are damaged, write them again (scripts/prepare_tfds.py)"
  paths: tuple[str, ...] = ()  # records hold bytes, not files
  groups: tuple = ()  # records do not keep the folder's photo groups

  def __init__(self, sources: dict[str, Sequence[dict]], labels: dict[str, np.ndarray],
               splits: Sequence[str]):
    """
    Args:
      sources: each non-empty split's records, read by index (`tfds.data_source`).
      labels: each split's '<split>_age' and '<split>_file_name' (`tfds_records.LABELS`).
      splits: the split names in the order their photos are numbered.
    """
    self._sources = sources
    names = [split for split in splits if len(labels[f"{split}_age"])]
    self._starts = np.cumsum([0, *(len(labels[f"{split}_age"]) for split in names)])
    self._names = names
    self.splits = {split: np.arange(start, end, dtype=np.int64) for split, start, end
                   in zip(names, self._starts[:-1], self._starts[1:], strict=True)}
    self.ages = np.concatenate([labels[f"{s}_age"] for s in names]).astype(np.float32)
    self.file_names = tuple(name.decode() for split in names
                            for name in labels[f"{split}_file_name"])

  def __len__(self) -> int:
    return len(self.ages)

  def read(self, indices: Sequence[int]) -> list[dict]:
    """The photos of store `indices`, each split's read together (in parallel by TFDS)."""
    located = [self._locate(index) for index in indices]
    photos: list[dict] = [{}] * len(located)
    for split in {split for split, _ in located}:
      rows = [row for row, (name, _) in enumerate(located) if name == split]
      found = self._sources[split].__getitems__([located[row][1] for row in rows])
      for row, example in zip(rows, found, strict=True):
        photos[row] = {"image": example["image"], "orientation": int(example["orientation"]),
                       "origin": example["origin"].decode(), "row": int(example["row"]),
                       "file_name": example["file_name"].decode()}
    return photos

  def _locate(self, index: int) -> tuple[str, int]:
    position = int(np.searchsorted(self._starts, index, side="right")) - 1
    return self._names[position], int(index - self._starts[position])


class FilePhotos:
  """The photo files of a folder's checked rows, in the rows' order, read when asked."""

  remedy = "check the folder's photos (or set data.verify_images=True to find them up front)"

  def __init__(self, records: Sequence[Record], num_threads: int):
    """
    Args:
      records: the photos, in store order.
      num_threads: files read at once (0: one per CPU core); a networked file system
        answers each read late, many reads in flight hide that.
    """
    self._records = tuple(records)
    self._num_threads = num_threads or os.cpu_count() or 1
    self._pool = concurrent.futures.ThreadPoolExecutor(self._num_threads,
                                                       thread_name_prefix="photo-read")
    self.paths = tuple(record.path for record in records)
    self.ages = np.array([record.age for record in records], np.float32)
    self.file_names = tuple(record.file_name for record in records)
    self.groups = tuple(record.groups for record in records)

  def __len__(self) -> int:
    return len(self._records)

  def read(self, indices: Sequence[int]) -> list[dict]:
    """The photos of store `indices`; a file that cannot be read gives no bytes (it then
    fails to decode, and is replaced like a damaged one)."""
    records = [self._records[int(index)] for index in indices]
    # A chunk per thread: a task per file cost more than reading a local file.
    chunks = [records[start::self._num_threads] for start in range(self._num_threads)]
    read = list(self._pool.map(lambda chunk: [_read(record) for record in chunk], chunks))
    return [read[row % self._num_threads][row // self._num_threads]
            for row in range(len(records))]


def _read(record: Record) -> dict:
  """One photo's bytes (none when the file cannot be read) with its labels row."""
  try:
    image = pathlib.Path(record.path).read_bytes()
  except OSError:
    image = b""
  return {"image": image, "orientation": record.orientation, "origin": record.origin,
          "row": record.row, "file_name": record.file_name}
