"""Records read by index: a photo that fails to decode is replaced alike everywhere, named, capped."""

import csv
import io

import numpy as np
import pytest
from PIL import Image

from ageflax.core.errors import DataError
from ageflax.data.photo_sources import RecordPhotos
from ageflax.data.record_store import RecordStore, prefetched

_BROKEN = b"\xff\xd8\xff\xe0 broken \xff\xd9"


class _Source(list):
  """A data source as `tfds.data_source` gives one: indexable, with batched reads."""

  def __getitems__(self, positions):
    return [self[position] for position in positions]


def _png(value: int) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(buffer, format="PNG")
  return buffer.getvalue()


def _store(tmp_path, broken=(), max_bad_fraction=0.7) -> RecordStore:
  """Train photos 0..5 of brightness 10 * (i + 1) and age i; `broken` ones do not decode."""
  examples = _Source({"image": _BROKEN if i in broken else _png(10 * (i + 1)), "age": float(i),
                      "orientation": 1, "origin": b"labels.csv", "row": i + 2,
                      "file_name": f"{i}.png".encode()} for i in range(6))
  labels = {"train_age": np.arange(6, dtype=np.float32),
            "train_file_name": np.array([f"{i}.png".encode() for i in range(6)]),
            "validation_age": np.zeros(0, np.float32),
            "validation_file_name": np.zeros(0, np.bytes_)}
  photos = RecordPhotos({"train": examples}, labels, ("train", "validation"))
  return RecordStore(photos, photos.splits, 4, max_bad_fraction, num_threads=2,
                     problems_path=str(tmp_path / "skipped_rows.csv"), name="records")


def test_a_photo_that_fails_to_decode_is_replaced_by_the_next_one_named_once(tmp_path, caplog):
  store = _store(tmp_path, broken=(2, 3))
  assert store.file_names == tuple(f"{i}.png" for i in range(6))
  images, ages = store.read(np.array([2, 0, -1, 3]))
  np.testing.assert_array_equal(ages, [4.0, 0.0, 0.0, 4.0])  # 2 and 3: both become photo 4
  assert images[0].max() == images[0].min() == 50 and images[2].max() == 0
  np.testing.assert_array_equal(images[0], images[3])
  again, _ = _store(tmp_path, broken=(2, 3), max_bad_fraction=1).read(np.array([3]))  # a resume: the same photo
  np.testing.assert_array_equal(again[0], images[3])
  assert ("records: labels.csv row 4 (2.png): cannot decode image: jpeg::Uncompress failed"
          in caplog.text)
  with open(tmp_path / "skipped_rows.csv", newline="") as f:
    rows = list(csv.reader(f))
  assert rows[0][:3] == ["origin", "row", "file_name"]  # each once, though read twice
  assert sorted(row[:3] for row in rows[1:]) == [["labels.csv", "4", "2.png"],
                                                 ["labels.csv", "5", "3.png"]]


def test_more_bad_photos_than_max_bad_fraction_stop_the_stream(tmp_path):
  store = _store(tmp_path, broken=(1,), max_bad_fraction=0.4)
  store.read(np.array([0, 1, 2]))  # 1 of 3 read
  store.read(np.array([1]))  # 2 bad: under 0.4 of the 6 records, though half of what was read
  with pytest.raises(DataError, match=r"^records: 3 of the 5 photos read so far do not decode, "
                     r"more than data\.max_bad_fraction=0\.4"):
    list(prefetched((store.read(np.array([rows])) for rows in (1, 3)), depth=1))
