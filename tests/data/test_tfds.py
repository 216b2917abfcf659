"""The TFDS builder: records written once give the folder's examples, read by index per host."""

import pathlib

import numpy as np
import pytest
from conftest import (
  data_config,
  error_line,
  run_entry_point,
  tiny_train_args,
  write_appa_real_folder,
  write_face_folder,
  write_utkface_folder,
)
from PIL import Image

from ageflax.core import run_files
from ageflax.core.errors import DataError
from ageflax.data import pipeline, tfds_records
from ageflax.devtools.synthetic import portraits


def _write(tmp_path, folder, **fields):
  builder = tfds_records.write_records(data_config(folder, **fields), str(folder),
                                      str(tmp_path / "records"), "test")
  return builder.data_dir


@pytest.mark.parametrize("layout", ["labels_csv", "appa_real", "utkface"])
def test_records_give_exactly_the_folders_examples(tmp_path, layout):
  folder = tmp_path / "data"
  if layout == "labels_csv":
    write_face_folder(folder, 30)
    (folder / "final_files" / "00004.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken \xff\xd9")
  elif layout == "appa_real":
    write_appa_real_folder(folder, (12, 5, 4))
  else:
    write_utkface_folder(folder, 30)
  fields = {"max_bad_fraction": 0.1, "test_fraction": 0.1}
  from_folder = pipeline.prepare(data_config(folder, **fields), None)
  from_records = pipeline.prepare(
      data_config(_write(tmp_path, folder, **fields), source="tfds", **fields), None)
  assert from_records.summary() == from_folder.summary()
  for split in ("train", "validation", "test"):
    folder_rows, record_rows = from_folder.indices(split), from_records.indices(split)
    assert len(folder_rows) and len(folder_rows) == len(record_rows)
    assert ([from_folder.store.file_names[i] for i in folder_rows] ==
            [from_records.store.file_names[i] for i in record_rows])
    np.testing.assert_array_equal(from_folder.store.ages[folder_rows],
                                  from_records.store.ages[record_rows])
    np.testing.assert_array_equal(from_folder.store.cache.numpy()[folder_rows],
                                  from_records.store.read(record_rows)[0])


def test_metadata_keeps_split_settings_statistics_and_skipped_rows(tmp_path):
  folder = write_face_folder(tmp_path / "faces", 40)
  (folder / "final_files" / "00002.jpg").unlink()
  records_dir = _write(tmp_path, folder, max_bad_fraction=0.1, split_seed=7,
                       split_by="content")
  metadata = tfds_records.load_builder(str(tmp_path / "records")).info.metadata
  assert metadata["format"] == "labels_csv"
  assert metadata["split"] == {"validation_fraction": 0.25, "test_fraction": 0.0,
                               "split_seed": 7, "split_by": "content"}
  assert metadata["splits"]["train"]["count"] + metadata["splits"]["validation"]["count"] == 39
  assert metadata["skipped"] == ["labels.csv row 4 (00002.jpg): file not found"]
  assert "00002.jpg" in (tmp_path / records_dir / run_files.SKIPPED_ROWS).read_text()


def test_each_host_reads_its_rows_of_the_folders_global_batches(tmp_path):
  folder = write_face_folder(tmp_path / "faces", 41)
  from_folder = pipeline.prepare(data_config(folder), None)
  config = data_config(_write(tmp_path, folder), source="tfds")
  from_records = pipeline.prepare(config, None)
  whole = list(pipeline.as_numpy(from_folder.train_dataset(
      8, pipeline.HostRows(0, 8), seed=3, start_step=2, num_steps=6, config=config), "folder"))
  hosts = [list(pipeline.as_numpy(from_records.train_dataset(
      8, pipeline.HostRows(start, 4), seed=3, start_step=2, num_steps=6, config=config),
      "records")) for start in (0, 4)]
  assert len(whole) == len(hosts[0]) == len(hosts[1]) == 4
  for batch, first, second in zip(whole, *hosts, strict=True):
    for name in ("image", "age"):  # augmented alike: bit for bit
      np.testing.assert_array_equal(batch[name], np.concatenate([first[name], second[name]]))


def test_missing_truncated_or_older_record_files_are_named_before_training(tmp_path):
  records_dir = pathlib.Path(_write(tmp_path, write_face_folder(tmp_path / "faces", 20)))
  config = data_config(records_dir, source="tfds")
  train_file = next(records_dir.glob("*-train.array_record-*"))
  train_file.write_bytes(train_file.read_bytes()[:200])
  with pytest.raises(DataError, match=rf"^{train_file}: truncated or damaged"):
    pipeline.prepare(config, None)
  train_file.unlink()
  with pytest.raises(DataError, match=rf"^{train_file}: record file missing"):
    pipeline.prepare(config, None)
  info = records_dir / "metadata.json"
  info.write_text(info.read_text().replace('"writer": 2', '"writer": 1'))
  with pytest.raises(DataError, match=rf"^{info}: records written by another version of "
                     r"scripts/prepare_tfds\.py \(writer 1"):
    pipeline.prepare(config, None)


def test_a_split_setting_other_than_the_records_is_named(tmp_path, caplog):
  records_dir = _write(tmp_path, write_face_folder(tmp_path / "faces", 20))
  pipeline.prepare(data_config(records_dir, source="tfds", validation_fraction=0.5), None)
  assert "data.validation_fraction=0.5 (records: 0.25)" in caplog.text


def test_missing_or_ambiguous_records_are_named(tmp_path):
  folder = write_face_folder(tmp_path / "faces", 20)
  with pytest.raises(DataError, match=r"holds no prepared records .*prepare_tfds\.py"):
    pipeline.prepare(data_config(folder, source="tfds"), None)
  _write(tmp_path, folder)
  tfds_records.write_records(data_config(folder), str(folder), str(tmp_path / "records"),
                             "other")
  with pytest.raises(DataError, match=r"holds 2 prepared datasets; set data\.dir to one of"):
    pipeline.prepare(data_config(tmp_path / "records", source="tfds"), None)


def test_prepare_script_then_training_from_records_matches_training_from_the_folder(tmp_path):
  folder = write_utkface_folder(tmp_path / "utk", 40)
  prepared = run_entry_point(["scripts/prepare_tfds.py", f"--manual_dir={folder}",
                              f"--output_dir={tmp_path / 'records'}"])
  assert prepared.returncode == 0, prepared.stderr[-3000:]
  assert "wrote 30 train, 10 validation, 0 test photos (0 skipped)" in prepared.stdout
  records_dir = prepared.stdout.split("--config.data.dir=")[1].strip()
  steps = "--config.train.num_steps=6"
  from_folder = run_entry_point(tiny_train_args(folder, tmp_path / "a", steps))
  from_records = run_entry_point(tiny_train_args(records_dir, tmp_path / "b", steps,
                                                 "--config.data.source=tfds"))
  for result in (from_folder, from_records):
    assert result.returncode == 0, result.stderr[-3000:]
  assert _validation_lines(from_records.stderr) == _validation_lines(from_folder.stderr)
  evaluated = run_entry_point(["scripts/eval.py", f"--workdir={tmp_path / 'b'}"])
  assert evaluated.returncode == 0, evaluated.stderr[-3000:]
  assert "on 10 images" in evaluated.stdout
  missing = run_entry_point(["scripts/prepare_tfds.py", f"--manual_dir={tmp_path / 'none'}",
                             f"--output_dir={tmp_path / 'records'}"])
  assert "--manual_dir" in error_line(missing) and "does not exist" in error_line(missing)


def _validation_lines(log: str) -> list[str]:
  return [line.split("validation MAE")[1].split("(")[0] for line in log.splitlines()
          if "validation MAE" in line]


def test_records_hold_framed_photos_and_a_framing_the_config_does_not_ask_for_is_named(
    tmp_path):
  root = tmp_path / "faces"
  portraits.write_synthetic_faces(root, 12, seed=0, image_size=96)
  Image.fromarray(np.full((96, 96, 3), 90, np.uint8)).save(root / "final_files" / "wall.jpg")
  with open(root / "labels.csv", "a") as f:
    f.write("wall.jpg,30\n")
  fields = {"image_size": 32, "face_framing__mode": "align", "max_bad_fraction": 0.5}
  from_folder = pipeline.prepare(data_config(root, **fields), None)
  records_dir = _write(tmp_path, root, **fields)
  from_records = pipeline.prepare(data_config(records_dir, source="tfds", **fields), None)
  assert from_records.summary() == from_folder.summary()
  for split in ("train", "validation"):
    folder_rows, record_rows = from_folder.indices(split), from_records.indices(split)
    assert ([from_folder.store.file_names[i] for i in folder_rows] ==
            [from_records.store.file_names[i] for i in record_rows])
    np.testing.assert_array_equal(from_folder.store.cache.numpy()[folder_rows],
                                  from_records.store.read(record_rows)[0])
  assert any("wall.jpg" in row for row in tfds_records.load_builder(
      records_dir).info.metadata["skipped"])
  with pytest.raises(DataError, match=r"holds photos framed with \{'mode': 'align', .*"
                     r"'image_size': 32\}, the config asks for \{'mode': 'none'\}"):
    pipeline.prepare(data_config(records_dir, source="tfds", image_size=32), None)
