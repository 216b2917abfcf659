"""The TensorFlow Datasets builder: a data folder, in any layout, written once as records.

Manual-download style: `FaceAges` reads one of the `layouts` from a local folder (the
`manual_dir`), checks every row and decodes every image as training would, splits
them as training would, and writes each split's photos (their original file bytes with
age, name, EXIF orientation and labels row) in row order. Reading the records back thus
gives exactly the examples the folder gives. Split sizes, age statistics, the settings
that made the split and the skipped rows are kept in the dataset's metadata. Nothing is
downloaded.
"""

import dataclasses
import json
import os
import pathlib
from collections.abc import Iterator, Sequence
from typing import ClassVar

import ml_collections
import numpy as np
import tensorflow_datasets as tfds
from absl import logging

from ageflax.core import age_stats, atomic_files, run_files
from ageflax.core.errors import DataError
from ageflax.data import image_store, label_rows, layouts
from ageflax.data.label_rows import Record

NAME = "face_ages"
# The `data` config fields that decide which photos go into which split.
SPLIT_FIELDS = ("validation_fraction", "test_fraction", "split_seed", "split_by")
# Every image is decoded once while writing, to set aside the undecodable; the size the
# decoded pixels are resized to does not matter, so keep it small.
_CHECK_SIZE = 16


@dataclasses.dataclass(eq=False)
class FaceAgesConfig(tfds.core.BuilderConfig):
  """Which folder layout to read and how to check and split it.

  Attributes:
    data_json: the `data` config section (format, csv/appa_real fields, checks, split
      settings) as JSON; its `dir` is ignored in favour of the manual folder.
  """

  data_json: str = "{}"


class FaceAges(tfds.core.GeneratorBasedBuilder):
  """Face photos with ages, from a local folder in one of the `layouts`."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES: ClassVar[dict[str, str]] = {
      "1.0.0": "Original file bytes, age, name, EXIF orientation, labels row."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Pass the data folder as the manual folder, in any layout ageflax reads (labels_csv, "
      "appa_real, utkface or csv; see ageflax/layouts.py): scripts/prepare_tfds.py "
      "--manual_dir=DIR.")

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description="Face photos labelled with age in years.",
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Tensor(shape=(), dtype=np.object_,
                                          doc="The photo's file bytes (JPEG/PNG/GIF/BMP)."),
            "age": tfds.features.Scalar(np.float32, doc="Age in years."),
            "file_name": tfds.features.Text(doc="Name in the source folder."),
            "orientation": tfds.features.Scalar(np.int32, doc="EXIF orientation (1-8)."),
            "origin": tfds.features.Text(doc="The labels file the row came from."),
            "row": tfds.features.Scalar(np.int64, doc="Line in `origin` (or listing position)."),
        }),
        disable_shuffling=True,  # row order, as the folder gives it
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    data = _data_config(self.builder_config.data_json, dl_manager.manual_dir)
    faces = checked_faces(data)
    splits = label_rows.split_records(faces.records, data.validation_fraction, data.test_fraction,
                                   data.split_seed, data.split_by)
    self.info.metadata.update(_metadata(data, faces, splits))
    return {name: self._generate_examples(part) for name, part in splits.items() if part}

  def _generate_examples(self, split_records: Sequence[Record]) -> Iterator:
    for position, record in enumerate(split_records):
      yield position, {
          "image": pathlib.Path(record.path).read_bytes(),
          "age": record.age,
          "file_name": record.file_name,
          "orientation": record.orientation,
          "origin": record.origin,
          "row": record.row,
      }


def _data_config(data_json: str, manual_dir: os.PathLike) -> ml_collections.ConfigDict:
  data = ml_collections.ConfigDict(json.loads(data_json))
  data.dir = str(manual_dir)
  return data


def checked_faces(data: ml_collections.ConfigDict) -> label_rows.LabelledFaces:
  """The folder's records, as training would accept them (bad-row policy included)."""
  faces = layouts.read_faces(data)
  label_rows.apply_bad_row_policy(faces, data.bad_rows, data.max_bad_fraction)
  _, failed = image_store.decode_all(faces.records, _CHECK_SIZE, keep=False)
  faces = faces.without(failed)
  label_rows.apply_bad_row_policy(faces, data.bad_rows, data.max_bad_fraction)
  return faces


def _metadata(data, faces: label_rows.LabelledFaces, splits) -> dict:
  """Split settings, per-split age statistics and every skipped row."""
  return {
      "format": data.format if data.format != "auto" else layouts.detect_format(
          pathlib.Path(data.dir)),
      "source": str(data.dir),
      "split": {name: data[name] for name in SPLIT_FIELDS},
      # float32 ages, as the image store holds them: the same statistics, the same run.
      "splits": {name: age_stats.age_statistics(np.array([r.age for r in part], np.float32))
                 for name, part in splits.items()},
      "skipped": [problem.describe() for problem in faces.problems],
  }


def write_records(
    data: ml_collections.ConfigDict, manual_dir: str, data_dir: str, name: str,
    num_shards: int | None = None,
) -> tfds.core.DatasetBuilder:
  """Reads `manual_dir` with the `data` settings and writes its records under `data_dir`.

  `num_shards` files per split (None: TFDS's choice, files of 64 MiB to 1 GiB); hosts
  read their share of a split from any number of files, so this only tunes I/O.

  Returns:
    The builder; `builder.data_dir` is the folder to train from (`data.dir` with
    `data.source='tfds'`).
  """
  data_json = json.dumps({k: v for k, v in data.to_dict().items() if k != "dir"})
  builder = FaceAges(config=FaceAgesConfig(name=name, data_json=data_json), data_dir=data_dir)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=manual_dir, try_download_gcs=False, num_shards=num_shards))
  skipped = builder.info.metadata["skipped"]
  if skipped:
    atomic_files.write_text_atomically(os.path.join(builder.data_dir, run_files.SKIPPED_ROWS),
                                       "\n".join(skipped) + "\n")
  return builder


def load_builder(directory: str) -> tfds.core.DatasetBuilder:
  """The prepared records in `directory`: the version folder, or a folder holding one."""
  path = pathlib.Path(directory)
  if not path.is_dir():
    raise DataError(f"prepared records folder {path} does not exist")
  found = sorted(p.parent for p in path.glob("**/dataset_info.json"))
  if not found:
    raise DataError(f"{path} holds no prepared records (no dataset_info.json below it): "
                    "write them with scripts/prepare_tfds.py")
  if len(found) > 1:
    raise DataError(f"{path} holds {len(found)} prepared datasets; set data.dir to one of: "
                    + ", ".join(str(p) for p in found))
  return tfds.builder_from_directory(found[0])


class PreparedRecords:
  """Reading records written by `write_records`: whole splits, or one host's shard."""

  def __init__(self, builder: tfds.core.DatasetBuilder):
    self.builder = builder
    self.metadata = builder.info.metadata or {}
    if "splits" not in self.metadata:
      raise DataError(f"{builder.data_dir} was not written by scripts/prepare_tfds.py "
                      "(no ageflax metadata)")

  def num_examples(self, split: str) -> int:
    return int(self.metadata["splits"][split]["count"])

  def summary(self) -> dict[str, float]:
    """Split sizes and training age statistics over all hosts, as `PreparedData.summary`."""
    return {
        **{f"num_{name}": self.num_examples(name) for name in label_rows.SPLITS},
        "num_skipped": len(self.metadata["skipped"]),
        **age_stats.training_summary(self.metadata["splits"]["train"]),
    }

  def warn_on_changed_split(self, data: ml_collections.ConfigDict) -> None:
    """The split was fixed when the records were written; say so if the config differs."""
    written = self.metadata["split"]
    changed = [f"data.{name}={data[name]} (records: {written.get(name)})"
               for name in SPLIT_FIELDS if data[name] != written.get(name)]
    if changed:
      logging.warning("%s: using the split the records were written with, not %s",
                      self.builder.data_dir, ", ".join(changed))

  def read(self, split: str, shard: int = 0, num_shards: int = 1
           ) -> tuple[list[Record], list[bytes]]:
    """The records and file bytes of `split`, or of its `shard`-th of `num_shards` equal parts.

    Shards are equal in size (the last few photos of the split are left to no host), so
    that every host runs the same number of steps per epoch.
    """
    if not self.num_examples(split):
      return [], []
    part = tfds.even_splits(split, n=num_shards, drop_remainder=True)[shard] if (
        num_shards > 1) else split
    dataset = self.builder.as_dataset(split=part, shuffle_files=False)
    found, encoded = [], []
    for batch in dataset.batch(1024).as_numpy_iterator():
      for i in range(len(batch["age"])):
        found.append(Record(batch["file_name"][i].decode(), "", float(batch["age"][i]),
                            int(batch["row"][i]), int(batch["orientation"][i]), split,
                            batch["origin"][i].decode()))
      encoded += list(batch["image"])
    return found, encoded
