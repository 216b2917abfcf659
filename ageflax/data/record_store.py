"""Photos read by index: each host reads and decodes only its rows of a batch.

A `RecordStore` reads the photos of a `photo_sources` source (prepared records, or the
files of a folder too large for the in-memory cache) by their store indices when asked,
and decodes a batch's photos together in one TensorFlow call (its decodes run in
parallel; that was twice as fast as a Python thread pool decoding photo by photo, and as
tf.data mapping over the index stream), so no host holds the data set or decodes it up
front; it holds only the photos' ages and names.
A photo that fails to decode is replaced by the next photo of its split that decodes (the
same replacement on every host and resume), named in the log and in the run's skipped
rows; once more than `data.max_bad_fraction` of what was read (at least the source's size)
is bad, the run stops.
`prefetched` runs a stream of such batches ahead of the training step in a thread.
"""

import csv
import functools
import os
import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

import numpy as np
import tensorflow as tf
from absl import logging

from ageflax.core.errors import DataError
from ageflax.data import tf_images
from ageflax.data.photo_sources import FilePhotos, RecordPhotos

Item = TypeVar("Item")
_END = object()
_PROBLEM_HEADER = ["origin", "row", "file_name", "reason"]


class RecordStore:
  """Photos read and decoded per batch from a source; their ages and names in memory."""

  def __init__(self, photos: RecordPhotos | FilePhotos, splits: dict[str, np.ndarray],
               image_size: int, max_bad_fraction: float, num_threads: int,
               problems_path: str | None = None, name: str = ""):
    """
    Args:
      photos: where the photos are read from, by store index.
      splits: each split's store indices; a bad photo is replaced by one of its split.
      image_size: the side decoded photos are resized to.
      max_bad_fraction: the share of the photos read that may fail to decode.
      num_threads: photos decoded at once (0: one per CPU core).
      problems_path: where each photo that failed is appended as a CSV row (None: not).
      name: the records' or photos' folder, for messages.
    """
    self._photos = photos
    self._splits = {split: members for split, members in splits.items() if len(members)}
    self.ages = photos.ages
    self.file_names = photos.file_names
    self.groups = photos.groups
    self.paths = photos.paths
    self.image_size = image_size
    self._max_bad_fraction = max_bad_fraction
    self._problems_path = problems_path
    self._name = name
    self._lock = threading.Lock()
    self._num_read = self._num_bad = 0
    self._reported: set[int] = set()
    self._split_position = np.full(len(photos), -1, np.int8)  # each photo's split in _splits
    for position, members in enumerate(self._splits.values()):
      self._split_position[members] = position
    load = functools.partial(tf_images.load_encoded_image, image_size=image_size)
    self._decode = tf.function(load).get_concrete_function(
        tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.int32))
    self._decode_batch = tf.function(lambda encoded, orientations: tf.map_fn(
        lambda pair: load(*pair), (encoded, orientations),
        fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.uint8),
        parallel_iterations=num_threads or os.cpu_count() or 1)).get_concrete_function(
        tf.TensorSpec([None], tf.string), tf.TensorSpec([None], tf.int32))

  def __len__(self) -> int:
    return len(self.ages)

  def read(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [n, S, S, 3] photos and float32 [n] ages of store `indices` (-1: zeros)."""
    indices = np.asarray(indices, np.int64)
    wanted = np.flatnonzero(indices >= 0)
    photos = self._photos.read(indices[wanted])
    images = np.zeros((len(indices), self.image_size, self.image_size, 3), np.uint8)
    ages = np.zeros(len(indices), np.float32)
    try:
      images[wanted] = self._decode_batch(
          tf.constant([photo["image"] for photo in photos], tf.string),
          tf.constant([photo["orientation"] for photo in photos], tf.int32)).numpy()
      ages[wanted] = self.ages[indices[wanted]]
      num_bad = 0
    except tf.errors.OpError:  # a photo does not decode: find it, photo by photo
      decoded = [self._decode_or_replace(index, photo)
                 for index, photo in zip(indices[wanted], photos, strict=True)]
      for row, (image, age, _) in zip(wanted, decoded, strict=True):
        images[row], ages[row] = image, age
      num_bad = sum(bad for _, _, bad in decoded)
    self._count(len(wanted), num_bad)
    return images, ages

  def _split_of(self, index: int) -> tuple[str, np.ndarray]:
    """The split holding store `index`, and that split's store indices."""
    position = int(self._split_position[index])
    if position < 0:
      return "all", np.arange(len(self), dtype=np.int64)
    split = list(self._splits)[position]
    return split, self._splits[split]

  def _try_decode(self, photo: dict) -> np.ndarray | str:
    """The decoded photo, or the decoder's own complaint about it."""
    try:
      return self._decode(tf.constant(photo["image"]),
                          tf.constant(photo["orientation"], tf.int32)).numpy()
    except tf.errors.OpError:
      try:  # eagerly, for the decoder's message rather than the graph's
        tf_images.decode_image(tf.constant(photo["image"]))
      except tf.errors.OpError as e:
        message = e.message.strip().splitlines()[0].split("}} ")[-1].split(" [Op:")[0]
        return "cannot decode image: " + message[:200]
      return "cannot decode image"

  def _decode_or_replace(self, index: int, photo: dict) -> tuple[np.ndarray, float, bool]:
    """The photo, or, when it fails to decode, the next one of its split that decodes."""
    image = self._try_decode(photo)
    bad = isinstance(image, str)
    if bad:
      split, members = self._split_of(int(index))
      self._report(int(index), photo, image, split)
      position = int(np.flatnonzero(members == index)[0])
      for offset in range(1, len(members)):
        index = members[(position + offset) % len(members)]
        image = self._try_decode(self._photos.read([index])[0])
        if not isinstance(image, str):
          break
      else:
        raise DataError(f"{self._name}: no photo of split {split!r} decodes")
    return image, float(self.ages[index]), bad

  def _count(self, num_read: int, num_bad: int) -> None:
    """Counts a batch's photos; past `max_bad_fraction` bad, the run stops. The share is of
    the photos read, but never of fewer than the source holds: the first bad photo of a
    run is no more than one bad row of the data set, as in a folder's up-front check."""
    with self._lock:
      self._num_read += num_read
      self._num_bad += num_bad
      if self._num_bad > self._max_bad_fraction * max(self._num_read, len(self)):
        raise DataError(
            f"{self._name}: {self._num_bad} of the {self._num_read} photos read so far do not "
            f"decode, more than data.max_bad_fraction={self._max_bad_fraction:g}; "
            + self._photos.remedy)

  def _report(self, index: int, photo: dict, reason: str, split: str) -> None:
    """Logs a photo that failed to decode once per run, and appends it to the skipped rows."""
    with self._lock:
      if index in self._reported:
        return
      self._reported.add(index)
    row = [photo["origin"], photo["row"], photo["file_name"],
           f"{reason} (split {split!r}; the next photo of the split takes its place)"]
    logging.warning("%s: %s row %d (%s): %s", self._name, *row)
    if self._problems_path:
      with self._lock:
        _append_problem(self._problems_path, row)


def _append_problem(path: str, row: list) -> None:
  """Appends one skipped row, unless the file already lists it (a resumed run reads it again)."""
  exists = os.path.exists(path)
  if exists:
    with open(path, newline="", encoding="utf-8") as f:
      if any(line[:3] == [str(value) for value in row[:3]] for line in csv.reader(f)):
        return
  with open(path, "a", newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    if not exists:
      writer.writerow(_PROBLEM_HEADER)
    writer.writerow(row)


def prefetched(items: Iterator[Item], depth: int) -> Iterator[Item]:
  """`items`, made by a background thread up to `depth` ahead; its errors are raised here."""
  ready: queue.Queue = queue.Queue(maxsize=max(depth, 1))
  stop = threading.Event()

  def put(entry) -> bool:
    while not stop.is_set():
      try:
        ready.put(entry, timeout=0.1)
        return True
      except queue.Full:
        continue
    return False

  def produce() -> None:
    try:
      for item in items:
        if not put((item, None)):
          return
      put((_END, None))
    except Exception as e:  # handed to the consumer, which raises it
      put((None, e))

  threading.Thread(target=produce, daemon=True, name="record-prefetch").start()
  try:
    while True:
      item, error = ready.get()
      if error is not None:
        raise error
      if item is _END:
        return
      yield item
  finally:
    stop.set()
