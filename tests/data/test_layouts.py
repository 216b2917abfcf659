"""The layout readers: APPA-REAL, UTKFace and any CSV, their detection and their bad input."""

import csv
import json

import numpy as np
import pytest
from conftest import (
  data_config,
  error_line,
  run_entry_point,
  tiny_train_args,
  write_appa_real_folder,
  write_face_folder,
  write_jpeg,
  write_labels,
  write_utkface_folder,
)

from ageflax.core.errors import DataError
from ageflax.data import label_rows, layouts


@pytest.mark.parametrize("writer, expected", [
    (lambda d: write_face_folder(d, 3), "labels_csv"),
    (lambda d: write_appa_real_folder(d, (3, 2, 0)), "appa_real"),
    (lambda d: write_utkface_folder(d, 3), "utkface"),
])
def test_the_layout_is_told_from_the_files(tmp_path, writer, expected):
  assert layouts.detect_format(writer(tmp_path / "d")) == expected


def test_an_unknown_layout_names_what_was_looked_for(tmp_path):
  write_jpeg(tmp_path / "photo.jpg", 30, np.random.default_rng(0))
  with pytest.raises(DataError, match=r"cannot tell the layout of .*set data\.format"):
    layouts.read_faces(data_config(tmp_path))


def test_appa_real_keeps_its_splits_and_prefers_face_crops(tmp_path):
  folder = write_appa_real_folder(tmp_path / "appa", (6, 3, 3))
  faces = layouts.read_faces(data_config(folder))
  assert not faces.problems
  splits = label_rows.split_records(faces.records, 0.25, 0.0, seed=0)
  assert {name: len(part) for name, part in splits.items()} == {
      "train": 6, "validation": 3, "test": 3}
  assert {r.file_name for r in splits["validation"]} == {"000006.jpg", "000007.jpg",
                                                         "000008.jpg"}
  crops = {r.file_name: r.path.endswith("_face.jpg") for r in faces.records}
  assert crops == {f"{i:06d}.jpg": bool(i % 3) for i in range(12)}
  without_crops = layouts.read_faces(data_config(folder, appa_real__face_crops=False))
  assert not any(r.path.endswith("_face.jpg") for r in without_crops.records)


def test_appa_real_target_is_real_or_apparent_age(tmp_path):
  folder = write_appa_real_folder(tmp_path / "appa", (4, 2, 2))
  real = layouts.read_faces(data_config(folder))
  apparent = layouts.read_faces(data_config(folder, appa_real__target="apparent_age"))
  assert [a.age - r.age for r, a in zip(real.records, apparent.records, strict=True)] == [3.0] * 8


def test_appa_real_per_rating_files_are_averaged(tmp_path):
  folder = write_appa_real_folder(tmp_path / "appa", (2, 1, 0))
  (folder / "gt_avg_train.csv").unlink()
  write_labels(folder, [("000000.jpg", 20, 33), ("000000.jpg", 24, 33), ("000001.jpg", 50, 47),
                        ("000001.jpg", "n/a", 47)],
               header=("file_name", "apparent_age", "real_age"), name="allgt_train.csv")
  faces = layouts.read_appa_real(folder, target="apparent_age")
  ages = {(r.file_name, r.split): r.age for r in faces.records}
  assert ages[("000000.jpg", "train")] == 22.0
  assert [p.describe() for p in faces.problems] == [
      "allgt_train.csv row 4 (000001.jpg): apparent_age 'n/a' is not a number"]
  real = layouts.read_appa_real(folder, target="real_age")
  assert {r.file_name: r.age for r in real.records if r.split == "train"} == {
      "000000.jpg": 33.0, "000001.jpg": 47.0}


def test_appa_real_bad_rows_are_named_by_file_and_row(tmp_path):
  folder = write_appa_real_folder(tmp_path / "appa", (2, 2, 0))
  with open(folder / "gt_avg_valid.csv", "a", newline="") as f:
    csv.writer(f).writerows([("gone.jpg", 5, 30, 1, 30), ("000002.jpg", 5, 30, 1, 200),
                             ("000003.jpg", 5, 30, 1, 31)])
  (folder / "valid" / "junk.jpg").write_bytes(b"not an image")
  with open(folder / "gt_avg_valid.csv", "a", newline="") as f:
    csv.writer(f).writerow(("junk.jpg", 5, 30, 1, 30))
  problems = [p.describe() for p in layouts.read_appa_real(folder).problems]
  assert problems == [
      "gt_avg_valid.csv row 4 (gone.jpg): file not found",
      "gt_avg_valid.csv row 5 (000002.jpg): real_age 200 is outside 0-120",
      "gt_avg_valid.csv row 6 (000003.jpg): duplicate file_name, first listed in row 3",
      "gt_avg_valid.csv row 7 (junk.jpg): not a JPEG, PNG, GIF or BMP image "
      "(unrecognised file signature)",
  ]


def test_utkface_ages_come_from_the_names_and_bad_names_are_reported(tmp_path):
  folder = write_utkface_folder(tmp_path / "utk", 6)
  rng = np.random.default_rng(1)
  write_jpeg(folder / "39_1_20170116174525125.jpg.chip.jpg", 39, rng)  # the release's kind
  write_jpeg(folder / "131_0_0_20170116174525125.jpg.chip.jpg", 131, rng)
  write_jpeg(folder / "x_0_0_20170116174525125.jpg", 1, rng)
  (folder / "notes.txt").write_text("hello")
  (folder / ".DS_Store").write_text("hidden")
  faces = layouts.read_faces(data_config(folder))
  assert len(faces.records) == 6
  assert all(r.age == float(r.file_name.split("/")[-1].split("_")[0]) for r in faces.records)
  assert sorted(p.describe() for p in faces.problems) == [
      "131_0_0_20170116174525125.jpg.chip.jpg: age 131 is outside 0-120",
      "39_1_20170116174525125.jpg.chip.jpg: name has 3 of the 4 fields "
      "AGE_GENDER_RACE_DATETIME",
      "notes.txt: not a UTKFace photo name (AGE_GENDER_RACE_DATETIME.jpg[.chip.jpg])",
      "x_0_0_20170116174525125.jpg: age 'x' is not a number",
  ]
  assert len({r.key for r in faces.records}) == 6


def test_any_csv_with_configured_columns_and_image_root(tmp_path):
  folder = tmp_path / "mine"
  rng = np.random.default_rng(0)
  for i in range(4):
    write_jpeg(folder / "pics" / "a" / f"{i}.png", 20 + i, rng)
  (folder / "meta").mkdir()
  write_labels(folder / "meta", [(f"a/{i}.png", "x", 20 + i) for i in range(4)] +
               [("a/9.png", "x", 30), ("a/1.png", "x", "twenty")],
               header=("photo", "note", "years"), name="list.csv")
  config = data_config(folder, format="csv", csv__path="meta/list.csv", csv__image_root="pics",
                        csv__file_column="photo", csv__age_column="years")
  faces = layouts.read_faces(config)
  assert [(r.file_name, r.age) for r in faces.records] == [(f"a/{i}.png", 20.0 + i)
                                                           for i in range(4)]
  assert [p.describe() for p in faces.problems] == [
      "list.csv row 6 (a/9.png): file not found",
      "list.csv row 7 (a/1.png): years 'twenty' is not a number"]
  config.csv.age_column = "age"
  with pytest.raises(DataError, match=r"list.csv: missing column\(s\) age \(found: photo, note, "
                                      r"years\)"):
    layouts.read_faces(config)
  config.csv.path = "meta/none.csv"
  with pytest.raises(DataError, match=r"none\.csv not found"):
    layouts.read_faces(config)


@pytest.mark.parametrize("layout", ["appa_real", "utkface", "csv"])
def test_each_layout_trains_end_to_end(tmp_path, layout):
  folder = tmp_path / "data"
  overrides = []
  if layout == "appa_real":
    write_appa_real_folder(folder, (24, 8, 8))
  elif layout == "utkface":
    write_utkface_folder(folder, 40)
  else:
    write_face_folder(folder, 40)
    (folder / "labels.csv").rename(folder / "ages.csv")
    overrides = ["--config.data.format=csv", "--config.data.csv.path=ages.csv",
                 "--config.data.csv.image_root=final_files"]
  workdir = tmp_path / "run"
  result = run_entry_point(tiny_train_args(folder, workdir, "--config.train.num_steps=4",
                                           *overrides))
  assert result.returncode == 0, result.stderr[-3000:]
  summary = json.loads((workdir / "data_summary.json").read_text())
  expected = {"appa_real": (24, 8, 8), "utkface": (30, 10, 0), "csv": (30, 10, 0)}[layout]
  assert (summary["num_train"], summary["num_validation"], summary["num_test"]) == expected
  assert "validation MAE" in result.stderr


def test_a_broken_layout_fails_with_one_line(tmp_path):
  folder = write_appa_real_folder(tmp_path / "appa", (4, 2, 0))
  (folder / "gt_avg_train.csv").write_text("file_name,apparent_age_avg\n000000.jpg,3\n")
  result = run_entry_point(tiny_train_args(folder, tmp_path / "run"))
  assert "gt_avg_train.csv: missing column(s) real_age" in error_line(result)
