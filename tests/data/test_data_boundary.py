"""The data folder is a boundary: no row reads an image outside it, one file is one row."""

import os

import numpy as np
import pytest
from conftest import data_config, write_appa_real_folder, write_jpeg, write_labels

from ageflax.core.errors import DataError
from ageflax.data import label_rows, layouts


@pytest.fixture
def outside_photo(tmp_path):
  """A valid photo beside (not inside) the data folder, as an attacker would place one."""
  path = tmp_path / "outside.jpg"
  write_jpeg(path, 30, np.random.default_rng(0))
  return path


def _reasons(faces: label_rows.LabelledFaces) -> dict[str, str]:
  return {p.file_name: p.reason for p in faces.problems}


def test_rows_leading_outside_are_refused_and_named(face_folder, outside_photo):
  os.symlink(outside_photo, face_folder / "final_files" / "link.jpg")
  write_labels(face_folder, [("00000.jpg", 20), ("../../outside.jpg", 30),
                             (str(outside_photo), 40), ("link.jpg", 50)])
  faces = layouts.read_labels_csv(face_folder)
  assert [r.file_name for r in faces.records] == ["00000.jpg"]
  assert _reasons(faces) == {name: label_rows.OUTSIDE for name in
                             ("../../outside.jpg", str(outside_photo), "link.jpg")}
  with pytest.raises(DataError, match=r"row 3 \(\.\./\.\./outside\.jpg\): outside the data "
                                      r"folder"):
    label_rows.apply_bad_row_policy(faces, "error", 0.0)


def test_etc_passwd_is_not_opened(face_folder):
  write_labels(face_folder, [("00000.jpg", 20), ("../../../../../../../../etc/passwd", 30)])
  assert list(_reasons(layouts.read_labels_csv(face_folder)).values()) == [label_rows.OUTSIDE]


def test_one_photo_under_three_spellings_is_one_duplicate_error(face_folder):
  write_labels(face_folder, [("00000.jpg", 20), ("./00000.jpg", 30),
                             ("../final_files/00000.jpg", 40)])
  faces = layouts.read_labels_csv(face_folder)
  assert [(r.file_name, r.age) for r in faces.records] == [("00000.jpg", 20.0)]
  with pytest.raises(DataError) as raised:
    label_rows.apply_bad_row_policy(faces, "error", 0.0)
  message = str(raised.value)
  assert "\n" not in message
  assert ("labels.csv row 3 (./00000.jpg): duplicate file_name: the same file as row 2 "
          "(00000.jpg)") in message
  assert "labels.csv row 4 (../final_files/00000.jpg): duplicate file_name" in message


def test_a_record_keeps_the_resolved_path(face_folder):
  record = layouts.read_labels_csv(face_folder).records[0]
  assert record.path == os.path.realpath(face_folder / "final_files" / "00000.jpg")


def test_the_extra_root_lets_rows_name_photos_there_only(face_folder, outside_photo, tmp_path):
  elsewhere = tmp_path / "elsewhere"
  write_jpeg(elsewhere / "kept.jpg", 30, np.random.default_rng(1))
  write_labels(face_folder, [("00000.jpg", 20), ("../../elsewhere/kept.jpg", 30),
                             (str(elsewhere / "kept.jpg"), 31), (str(outside_photo), 40)])
  faces = layouts.read_faces(data_config(face_folder, format="labels_csv",
                                         extra_image_root=str(elsewhere)))
  assert [r.row for r in faces.records] == [2, 3]
  assert [p.reason.split(":")[0] for p in faces.problems] == ["duplicate file_name",
                                                               label_rows.OUTSIDE]
  without = layouts.read_faces(data_config(face_folder, format="labels_csv"))
  assert [p.reason for p in without.problems] == [label_rows.OUTSIDE] * 3


def test_csv_appa_real_and_utkface_layouts_keep_the_boundary(tmp_path, outside_photo):
  folder = write_appa_real_folder(tmp_path / "appa", sizes=(3, 1, 1))
  write_labels(folder, [("../../outside.jpg", 5, 33, 1.5, 30)], name="gt_avg_test.csv",
               header=("file_name", "num_ratings", "apparent_age_avg", "apparent_age_std",
                       "real_age"))
  assert _reasons(layouts.read_appa_real(folder)) == {"../../outside.jpg": label_rows.OUTSIDE}
  utk = tmp_path / "utk"
  utk.mkdir()
  os.symlink(outside_photo, utk / "30_0_0_20170116.jpg.chip.jpg")
  with pytest.raises(DataError, match="outside the data folder"):
    label_rows.apply_bad_row_policy(layouts.read_utkface(utk), "skip", 0.5)
  write_labels(tmp_path / "appa", [("../outside.jpg", 30)], name="any.csv")
  faces = layouts.read_csv(folder, "any.csv", "train", "file_name", "real_age")
  assert _reasons(faces) == {"../outside.jpg": label_rows.OUTSIDE}
