"""The data overview (`ageflax.devtools.explore`, `scripts/explore.py`) on small folders, broken ones too."""

import csv
import io
import json
import shutil

import numpy as np
import pytest
from conftest import (
  data_config,
  error_line,
  run_entry_point,
  write_appa_real_folder,
  write_jpeg,
  write_labels,
  write_utkface_folder,
)
from PIL import Image

from ageflax.devtools.explore import overview
from configs import resnet50

# (file name, age text) of the study-layout folder below; rows 2-15 pass the reader.
GOOD_ROWS = [("a.jpg", "30"), ("b.jpg", "30"), ("c.jpg", "30"), ("d.jpg", "25"), ("e.jpg", "25"),
             ("f.jpg", "27"), ("g.jpg", "17.5"), ("h.jpg", "18"), ("i.jpg", "64"),
             ("j.jpg", "65"), ("k.jpg", "90"), ("gray.jpg", "44.9"), ("copy.jpg", "35"),
             ("broken.png", "33")]
BAD_ROWS = [("missing.jpg", "40"), ("bad_age.jpg", "thirty"), ("old.jpg", "150"), ("a.jpg", "31"),
            ("", "20"), ("e2.jpg", ""), ("trunc.jpg", "50")]
USABLE_AGES = [30, 30, 30, 25, 25, 27, 17.5, 18, 64, 65, 90, 44.9, 35]


def _write_undecodable_png(path):
  """A PNG whose signature, header and end chunk are sound but whose pixel data is junk."""
  buffer = io.BytesIO()
  Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(buffer, "PNG")
  content = buffer.getvalue()
  data = content.index(b"IDAT") + 4
  path.write_bytes(content[:data] + b"\xab" * 8 + content[data + 8:])


def _write_broken_study_folder(directory):
  """labels.csv + final_files/ with every kind of problem the overview must list at once."""
  images = directory / "final_files"
  rng = np.random.default_rng(0)
  for name, age in GOOD_ROWS[:6]:
    write_jpeg(images / name, float(age), rng, size=40)
  for name, age in GOOD_ROWS[6:11]:
    write_jpeg(images / name, float(age), rng, size=64)
  Image.fromarray(np.full((32, 48), 128, np.uint8)).save(images / "gray.jpg")  # 48 wide
  shutil.copy(images / "a.jpg", images / "copy.jpg")
  _write_undecodable_png(images / "broken.png")
  whole = (images / "b.jpg").read_bytes()
  (images / "trunc.jpg").write_bytes(whole[:len(whole) // 2])
  write_labels(directory, GOOD_ROWS + BAD_ROWS)
  return directory


@pytest.fixture(scope="module")
def broken_study(tmp_path_factory):
  folder = _write_broken_study_folder(tmp_path_factory.mktemp("study") / "faces")
  out = folder.parent / "overview"
  return folder, out, overview.explore(data_config(folder, resnet50.get_config()), out)


def test_counts_ages_and_bands_of_the_study_layout(broken_study):
  _, _, summary = broken_study
  assert summary["format"] == "labels_csv"
  assert summary["photos"] == {"rows_listed": 21, "usable": 13, "set_aside": 8}
  assert summary["missing_values"] == {
      "labels.csv": {"rows": 21, "missing": {"file_name": 1, "real_age": 1}}}
  assert summary["ages"] == {"count": 13, "min": 17.5, "mean": round(np.mean(USABLE_AGES), 2),
                             "median": 30, "max": 90,
                             "std": round(float(np.std(USABLE_AGES, ddof=1)), 2)}
  assert [(t["age"], t["count"]) for t in summary["top_ages"]] == [
      (30, 3), (25, 2), (17.5, 1), (18, 1), (27, 1), (35, 1), (44.9, 1), (64, 1), (65, 1),
      (90, 1)]
  assert summary["top_ages"][0]["share"] == round(3 / 13, 4)
  assert {b["band"]: b["count"] for b in summary["age_bands"]} == {
      "0-17": 1, "18-24": 1, "25-34": 6, "35-44": 2, "45-54": 0, "55-64": 1, "65+": 2}


def test_image_sizes_formats_and_modes(broken_study):
  images = broken_study[2]["images"]
  assert [(s["width"], s["height"], s["count"]) for s in images["sizes"]] == [
      (40, 40, 7), (64, 64, 5), (48, 32, 1)]
  assert images["width"] == {"min": 40, "max": 64}
  assert images["height"] == {"min": 32, "max": 64}
  assert images["formats"] == {"JPEG": 13}
  assert images["modes"] == {"RGB": 12, "L": 1}
  assert images["channels"] == {"3": 12, "1": 1}


def test_every_problem_is_listed_at_once(broken_study):
  summary = broken_study[2]
  assert [u["file_name"] for u in summary["unreadable"]] == ["broken.png"]
  assert "cannot decode image" in summary["unreadable"][0]["reason"]
  assert summary["duplicates"]["groups"] == 1
  assert summary["duplicates"]["groups_with_different_ages"] == 1
  assert summary["duplicates"]["list"] == [[{"file_name": "a.jpg", "age": 30},
                                            {"file_name": "copy.jpg", "age": 35}]]
  problems = summary["problems"]
  assert problems["by_kind"] == {"reader": 7, "unreadable": 1, "duplicate_content": 1}
  texts = [p["text"] for p in problems["list"]]
  expected = ["row 16 (missing.jpg): file not found",
              "row 17 (bad_age.jpg): real_age 'thirty' is not a number",
              "row 18 (old.jpg): real_age 150 is outside 0-120",
              "row 19 (a.jpg): duplicate file_name, first listed in row 2",
              "row 20: missing file_name",
              "row 21 (e2.jpg): missing real_age",
              "row 22 (trunc.jpg): truncated JPEG",
              "row 15 (broken.png): cannot decode image",
              "row 14 (copy.jpg): same bytes as a.jpg (age 35 here, 30 there)"]
  assert len(texts) == len(expected) == problems["count"]
  for text, start in zip(texts, expected, strict=True):
    assert text.startswith("labels.csv " + start), text


def test_outputs_are_written_and_the_report_shows_them(broken_study):
  _, out, summary = broken_study
  for name, min_size in ((overview.HISTOGRAM_FILE, (1000, 450)), (overview.SAMPLES_FILE,
                                                                  (900, 650))):
    with Image.open(out / name) as image:
      image.load()
      assert image.format == "PNG"
      assert image.width >= min_size[0] and image.height >= min_size[1], image.size
      assert np.asarray(image.convert("L")).std() > 10  # not a blank page
  assert json.loads((out / overview.SUMMARY_FILE).read_text()) == summary
  report = (out / overview.REPORT_FILE).read_text()
  assert "](age_histogram.png)" in report and "](samples.png)" in report
  assert "| 25-34 | 6 | 46.2% |" in report
  with open(out / overview.PROBLEMS_FILE, newline="") as f:
    assert len(list(csv.DictReader(f))) == summary["problems"]["count"]


def test_utkface_names_lacking_a_field_count_as_missing(tmp_path):
  folder = write_utkface_folder(tmp_path / "utk", 4)
  ages = sorted(int(p.name.split("_")[0]) for p in folder.rglob("*.jpg"))
  rng = np.random.default_rng(1)
  write_jpeg(folder / "39_1_20170116174525125.jpg.chip.jpg", 39, rng)  # no RACE
  write_jpeg(folder / "150_0_1_20170116174525126.jpg.chip.jpg", 150, rng)
  first = sorted((folder / "part1").glob("*.chip.jpg"))[0]
  shutil.copy(first, folder / "7_0_0_20170116174525127.jpg.chip.jpg")
  summary = overview.explore(data_config(folder, resnet50.get_config()), tmp_path / "out")
  assert summary["format"] == "utkface"
  assert summary["missing_values"] == {"file names": {"rows": 7, "missing": {
      "AGE": 0, "GENDER": 0, "RACE": 1, "DATETIME": 0}}}
  assert summary["photos"] == {"rows_listed": 7, "usable": 5, "set_aside": 2}
  assert summary["ages"]["min"] == min([*ages, 7]) and summary["ages"]["max"] == max(ages)
  texts = [p["text"] for p in summary["problems"]["list"]]
  assert texts[0] == ("39_1_20170116174525125.jpg.chip.jpg: name has 3 of the 4 fields "
                      "AGE_GENDER_RACE_DATETIME")
  assert texts[1].startswith("150_0_1_20170116174525126.jpg.chip.jpg: age 150 is outside")
  # The folder is listed top level first, so the copy comes first and the original is named.
  assert texts[2] == (f"part1/{first.name}: same bytes as 7_0_0_20170116174525127.jpg.chip.jpg "
                      f"(age {first.name.split('_')[0]} here, 7 there)")


def test_appa_real_reports_each_split_file_and_either_target(tmp_path):
  folder = write_appa_real_folder(tmp_path / "appa", (4, 2, 2))
  real = overview.explore(data_config(folder, resnet50.get_config()), tmp_path / "real")
  apparent = overview.explore(
      data_config(folder, resnet50.get_config(), appa_real__target="apparent_age"),
      tmp_path / "apparent")
  columns = dict.fromkeys(["file_name", "num_ratings", "apparent_age_avg", "apparent_age_std",
                           "real_age"], 0)
  assert real["missing_values"] == {"gt_avg_test.csv": {"rows": 2, "missing": columns},
                                    "gt_avg_train.csv": {"rows": 4, "missing": columns},
                                    "gt_avg_valid.csv": {"rows": 2, "missing": columns}}
  assert real["photos"] == {"rows_listed": 8, "usable": 8, "set_aside": 0}
  assert apparent["ages"]["mean"] == pytest.approx(real["ages"]["mean"] + 3, abs=0.011)
  # Photos 0, 3 and 6 have no face crop: their full 80x80 photo is used.
  assert [(s["width"], s["count"]) for s in real["images"]["sizes"]] == [(40, 5), (80, 3)]


def test_any_csv_counts_empty_cells_of_every_column(tmp_path):
  folder = tmp_path / "csv"
  rng = np.random.default_rng(2)
  for name, age in (("p1.jpg", 20), ("p2.jpg", 40)):
    write_jpeg(folder / "photos" / name, age, rng)
  (folder / "meta").mkdir()
  write_labels(folder / "meta", [("p1.jpg", 20, "f"), ("p2.jpg", 40, ""), ("p3.jpg", "", "")],
               header=("path", "age_years", "gender"), name="people.csv")
  summary = overview.explore(
      data_config(folder, resnet50.get_config(), format="csv", csv__path="meta/people.csv",
                  csv__image_root="photos", csv__file_column="path",
                  csv__age_column="age_years"),
      tmp_path / "out")
  assert summary["missing_values"] == {
      "people.csv": {"rows": 3, "missing": {"path": 0, "age_years": 1, "gender": 2}}}
  assert summary["ages"]["mean"] == 30 and summary["photos"]["usable"] == 2


def test_the_script_prints_the_summary(broken_study, tmp_path):
  folder, _, _ = broken_study
  result = run_entry_point(["scripts/explore.py", str(folder),
                            f"--output_dir={tmp_path / 'out'}"])
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.splitlines()
  assert lines[0].startswith(f"Data overview of {folder} (labels_csv layout")
  assert "  photos          13 usable of 21 listed (8 set aside)" in lines
  assert "  most frequent   30 (3), 25 (2), 17.5 (1)" in result.stdout
  assert "    labels.csv row 19 (a.jpg): duplicate file_name, first listed in row 2" in lines
  assert "inspecting images: 14/14 (100%)" in result.stderr
  assert (tmp_path / "out" / overview.HISTOGRAM_FILE).is_file()


@pytest.mark.parametrize("case, expected", [
    ("missing", "error: data directory {folder} does not exist"),
    ("unknown_layout", "error: cannot tell the layout of {folder}"),
    ("not_utf8", "error: {folder}/labels.csv is not UTF-8 text"),
    ("bad_format", "error: flag --format=imdb: value should be one of"),
])
def test_bad_input_is_one_error_line(tmp_path, case, expected):
  folder = tmp_path / "data"
  args = []
  if case == "unknown_layout":
    write_jpeg(folder / "photo.jpg", 30, np.random.default_rng(0))
  elif case == "not_utf8":
    (folder / "final_files").mkdir(parents=True)
    (folder / "labels.csv").write_bytes(b"file_name,real_age\n\xff\xfe.jpg,3\n")
  elif case == "bad_format":
    folder.mkdir()
    args = ["--format=imdb"]
  result = run_entry_point(["scripts/explore.py", str(folder),
                            f"--output_dir={tmp_path / 'out'}", *args])
  assert error_line(result).startswith(expected.format(folder=folder))
