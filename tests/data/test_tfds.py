"""The TFDS builder: records written once give the folder's examples, sharded per host."""

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

from ageflax.core import run_files
from ageflax.core.errors import DataError
from ageflax.data import pipeline, tfds_records


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
                                  from_records.store.cache.numpy()[record_rows])


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


def test_each_host_reads_an_equal_disjoint_shard_of_train_and_all_of_validation(tmp_path):
  folder = write_face_folder(tmp_path / "faces", 41)
  config = data_config(_write(tmp_path, folder), source="tfds")
  hosts = [pipeline.prepare(config, None, index, 2) for index in range(2)]
  whole = pipeline.prepare(config, None)
  shards = [{h.store.file_names[i] for i in h.indices("train")} for h in hosts]
  assert len(shards[0]) == len(shards[1]) == whole.num_examples("train") // 2
  assert not shards[0] & shards[1]
  assert shards[0] | shards[1] <= {whole.store.file_names[i] for i in whole.indices("train")}
  for host in hosts:
    assert host.host_shard and host.summary() == whole.summary()
    assert len(host.indices("validation")) == whole.num_examples("validation")
  rows = pipeline.HostRows(start=4, size=4)  # host 1 of a global batch of 8
  stream = hosts[1].train_dataset(8, rows, seed=0, start_step=0, num_steps=3, config=config)
  store_rows_seen = set()
  for batch in pipeline.as_numpy(stream, "test"):
    assert batch["image"].shape == (4, 32, 32, 3)
    store_rows_seen |= {float(age) for age in batch["age"]}
  assert store_rows_seen <= set(hosts[1].ages("train").tolist())


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
