"""The TensorFlow Datasets builder: a data folder, in any layout, written once as records.

Manual-download style: `FaceAges` reads one of the `layouts` from a local folder (the
`manual_dir`), checks every row and decodes every image as training would, splits
them as training would, and writes each split's photos (their original file bytes with
age, name, EXIF orientation and labels row; with `data.face_framing.mode='align'`, the
photo framed by the face normaliser, as PNG) in row order, as ArrayRecord files that are
read by index (`tfds.data_source`). Reading the records back thus gives exactly the
examples the folder gives. Split sizes, age statistics, the settings that made the split,
the skipped rows and the writer's version are kept in the dataset's metadata; each
split's ages and file names also in a small `LABELS` file beside the records, so that a
run knows its labels without reading a photo. Nothing is downloaded.
"""

import dataclasses
import json
import os
import pathlib
import tempfile
from collections.abc import Iterator, Sequence
from typing import ClassVar

import ml_collections
import numpy as np
import tensorflow_datasets as tfds
from absl import logging
from PIL import Image

from ageflax.core import age_stats, atomic_files, run_files
from ageflax.core.errors import DataError
from ageflax.data import image_store, label_rows, layouts
from ageflax.data.label_rows import Record

NAME = "face_ages"
# Bumped whenever what the records hold or how they are laid out changes.
WRITER_VERSION = 2
FILE_FORMAT = "array_record"
# Each split's ages and file names, beside the records (numpy arrays '<split>_age', ...).
LABELS = "labels.npz"
# The `data` config fields that decide which photos go into which split.
SPLIT_FIELDS = ("validation_fraction", "test_fraction", "split_seed", "split_by")
_FRAMING_CHUNK = 1024  # photos framed at a time: bounds the writer's memory


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

  VERSION = tfds.core.Version(f"{WRITER_VERSION}.0.0")
  RELEASE_NOTES: ClassVar[dict[str, str]] = {
      "1.0.0": "Original file bytes, age, name, EXIF orientation, labels row.",
      "2.0.0": "ArrayRecord, read by index; labels.npz beside the records; framed photos."}
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
    if data.face_framing.mode == "align":
      splits, faces = _framed(splits, faces, data, pathlib.Path(self.framed_dir))
    self.info.metadata.update(_metadata(data, faces, splits))
    self.split_labels = {name: _labels(part) for name, part in splits.items()}
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
  faces = faces.without(image_store.undecodable(faces.records))
  label_rows.apply_bad_row_policy(faces, data.bad_rows, data.max_bad_fraction)
  return faces


def _framed(splits: dict[str, Sequence[Record]], faces: label_rows.LabelledFaces,
            data: ml_collections.ConfigDict, framed_dir: pathlib.Path
            ) -> tuple[dict[str, tuple[Record, ...]], label_rows.LabelledFaces]:
  """Each split's photos framed by the face normaliser, as PNGs in `framed_dir`.

  As when training from the folder, the split is drawn first and a photo without a usable
  face is then a bad row of its split (data.bad_rows, data.max_bad_fraction).
  """
  failed: dict[tuple[str, int], str] = {}
  framed = {}
  for split, part in splits.items():
    kept = []
    for start in range(0, len(part), _FRAMING_CHUNK):
      chunk = part[start:start + _FRAMING_CHUNK]
      images, chunk_failed = image_store.frame_all(chunk, data)
      failed.update(chunk_failed)
      for record, image in zip(chunk, images, strict=True):
        if record.key not in chunk_failed:
          path = framed_dir / f"{split}_{len(kept):07d}.png"
          Image.fromarray(image).save(path, format="PNG")
          kept.append(dataclasses.replace(record, path=str(path), orientation=1))
    framed[split] = tuple(kept)
  faces = faces.without(failed)
  label_rows.apply_bad_row_policy(faces, data.bad_rows, data.max_bad_fraction)
  return framed, faces


def framing_settings(data: ml_collections.ConfigDict) -> dict:
  """What decides the pixels of framed records (kept in their metadata)."""
  framing = data.face_framing
  if framing.mode == "none":
    return {"mode": "none"}
  return {"mode": framing.mode, "min_face_fraction": framing.min_face_fraction,
          "min_score": framing.min_score, "image_size": data.image_size}


def _labels(split_records: Sequence[Record]) -> dict[str, np.ndarray]:
  return {"age": np.array([r.age for r in split_records], np.float32),
          "file_name": np.array([r.file_name.encode() for r in split_records], np.bytes_)}


def _metadata(data, faces: label_rows.LabelledFaces, splits) -> dict:
  """Split settings, per-split age statistics, every skipped row and the writer's version."""
  return {
      "writer": WRITER_VERSION,
      "framing": framing_settings(data),
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
  os.makedirs(data_dir, exist_ok=True)
  with tempfile.TemporaryDirectory(prefix="framed-", dir=data_dir) as framed_dir:
    builder.framed_dir = framed_dir  # where framed photos wait to be written
    builder.download_and_prepare(
        file_format=FILE_FORMAT, download_config=tfds.download.DownloadConfig(
            manual_dir=manual_dir, try_download_gcs=False, num_shards=num_shards))
  if hasattr(builder, "split_labels"):  # written just now, not found already there
    _write_labels(builder.split_labels, os.path.join(builder.data_dir, LABELS))
  skipped = builder.info.metadata["skipped"]
  if skipped:
    atomic_files.write_text_atomically(os.path.join(builder.data_dir, run_files.SKIPPED_ROWS),
                                       "\n".join(skipped) + "\n")
  return builder


def _write_labels(split_labels: dict[str, dict[str, np.ndarray]], path: str) -> None:
  arrays = {f"{split}_{name}": values for split, labels in split_labels.items()
            for name, values in labels.items()}
  with atomic_files.open_atomically(path, mode="wb") as f:
    np.savez(f, **arrays)


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
  """Records written by `write_records`, checked: their metadata, labels and files."""

  def __init__(self, builder: tfds.core.DatasetBuilder):
    self.builder = builder
    self.metadata = builder.info.metadata or {}
    if "splits" not in self.metadata:
      raise DataError(f"{builder.data_dir} was not written by scripts/prepare_tfds.py "
                      "(no ageflax metadata)")
    written = self.metadata.get("writer", 1)
    if written != WRITER_VERSION or builder.info.file_format != tfds.core.FileFormat.ARRAY_RECORD:
      raise DataError(f"{pathlib.Path(builder.data_dir) / 'metadata.json'}: records written by "
                      f"another version of scripts/prepare_tfds.py (writer {written}, this one "
                      f"reads writer {WRITER_VERSION}): write the records again")

  def num_examples(self, split: str) -> int:
    return int(self.metadata["splits"][split]["count"])

  def summary(self) -> dict[str, float]:
    """Split sizes and training age statistics over all hosts, as `PreparedData.summary`."""
    return {
        **{f"num_{name}": self.num_examples(name) for name in label_rows.SPLITS},
        "num_skipped": len(self.metadata["skipped"]),
        **age_stats.training_summary(self.metadata["splits"]["train"]),
    }

  def check_framing(self, data: ml_collections.ConfigDict) -> None:
    """Framed records hold the pixels of one framing: the config must ask for the same."""
    written = self.metadata.get("framing", {"mode": "none"})
    wanted = framing_settings(data)
    if written != wanted:
      raise DataError(f"{self.builder.data_dir} holds photos framed with {written}, the config "
                      f"asks for {wanted} (data.face_framing, data.image_size): write the records "
                      "again with this config, or train with theirs")

  def warn_on_changed_split(self, data: ml_collections.ConfigDict) -> None:
    """The split was fixed when the records were written; say so if the config differs."""
    written = self.metadata["split"]
    changed = [f"data.{name}={data[name]} (records: {written.get(name)})"
               for name in SPLIT_FIELDS if data[name] != written.get(name)]
    if changed:
      logging.warning("%s: using the split the records were written with, not %s",
                      self.builder.data_dir, ", ".join(changed))

  def labels(self) -> dict[str, np.ndarray]:
    """Each split's '<split>_age' and '<split>_file_name' (bytes), from `LABELS`."""
    path = pathlib.Path(self.builder.data_dir) / LABELS
    try:
      with np.load(path) as arrays:
        return {name: arrays[name] for name in arrays.files}
    except (OSError, ValueError) as e:
      raise DataError(f"{path}: cannot be read ({e}); write the records again") from None

  def data_sources(self) -> dict[str, Sequence[dict]]:
    """Each non-empty split's records, read by index, once every file is checked whole."""
    sources = {}
    for split in label_rows.SPLITS:
      if self.num_examples(split):
        for instruction in self.builder.info.splits[split].file_instructions:
          _check_file(instruction.filename, instruction.examples_in_shard)
        sources[split] = self.builder.as_data_source(split=split)
    return sources


def _check_file(path: str, expected: int) -> None:
  """A record file that is missing, truncated or damaged: one line naming it."""
  from array_record.python import array_record_module  # only where records are read

  if not os.path.isfile(path):
    raise DataError(f"{path}: record file missing; write the records again")
  try:
    reader = array_record_module.ArrayRecordReader(path)
    found = reader.num_records()
    reader.close()
  except (OSError, RuntimeError, ValueError) as e:
    found, reason = -1, str(e).splitlines()[0][:200]
  else:
    reason = f"{found} records, expected {expected}"
  if found != expected:
    raise DataError(f"{path}: truncated or damaged ({reason}); write the records again")
