"""Group fields as data: UTKFace names parsed, labels CSV columns read, bad settings refused."""

import pytest
from conftest import data_config, write_face_folder, write_labels, write_utkface_folder

from ageflax.config import schema
from ageflax.core.errors import ConfigError, DataError
from ageflax.data import layouts
from configs import tiny


@pytest.mark.parametrize("name, gender, race", [
    ("25_1_2_20170116174525125.jpg.chip.jpg", "female", "Asian"),
    ("part1/3_0_4_20161219203650636.jpg", "male", "Others"),
    ("70_0_0_x.JPG", "male", "White"),
    ("000001.jpg", "unknown", "unknown"),  # the study's renamed copies
    ("39_1_20170116174525125.jpg.chip.jpg", "unknown", "unknown"),  # a field missing
    ("25_7_9_20170116.jpg", "unknown", "unknown"),  # codes the release does not use
    ("25_1_3_x.png", "unknown", "unknown"),
])
def test_utkface_names_give_gender_and_race(name, gender, race):
  assert layouts.utkface_groups(name) == (("gender", gender), ("race", race))


def test_a_utkface_folder_carries_gender_and_race_when_asked(tmp_path):
  folder = write_utkface_folder(tmp_path / "utk", 10, size=8)
  plain = layouts.read_faces(data_config(folder))
  assert all(r.groups == () for r in plain.records)
  faces = layouts.read_faces(data_config(folder, group_from_file_names="utkface"))
  assert len(faces.records) == 10
  for record in faces.records:  # the fixture names photo i AGE_{i % 2}_{i % 5}_DATE
    i = int(record.file_name.split("_")[3].split(".")[0]) % 10**8
    assert dict(record.groups) == {"gender": ("male", "female")[i % 2],
                                   "race": layouts.UTKFACE_RACES[i % 5]}


def test_labels_csv_group_columns_travel_with_the_rows(tmp_path):
  folder = write_face_folder(tmp_path / "faces", 4, size=8)
  write_labels(folder, [("00000.jpg", 20, "front", "a"), ("00001.jpg", 30, "", "b"),
                        ("00002.jpg", 40, "back", ""), ("00003.jpg", 50, "back", "a")],
               header=("file_name", "real_age", "camera", "store"))
  faces = layouts.read_faces(data_config(folder, group_columns="camera, store"))
  assert [r.groups for r in faces.records] == [
      (("camera", "front"), ("store", "a")), (("camera", "unknown"), ("store", "b")),
      (("camera", "back"), ("store", "unknown")), (("camera", "back"), ("store", "a"))]


def test_a_group_column_missing_from_the_csv_is_one_line_naming_both(tmp_path):
  folder = write_face_folder(tmp_path / "faces", 3, size=8)
  with pytest.raises(DataError) as raised:
    layouts.read_faces(data_config(folder, group_columns="gender"))
  message = str(raised.value)
  assert str(folder / "labels.csv") in message and "missing column(s) gender" in message
  assert "\n" not in message


def test_group_columns_need_a_layout_with_a_labels_csv(tmp_path):
  folder = write_utkface_folder(tmp_path / "utk", 3, size=8)
  with pytest.raises(ConfigError, match=r"group_columns='gender'.*'utkface', which has none"):
    layouts.read_faces(data_config(folder, group_columns="gender"))


@pytest.mark.parametrize("fields, message", [
    ({"group_columns": "race", "group_from_file_names": "utkface"},
     "group field 'race' is named twice"),
    ({"group_columns": "site,site"}, "group field 'site' is named twice"),
    ({"group_columns": "site", "source": "tfds"}, "not from prepared records"),
])
def test_the_schema_refuses_group_fields_that_cannot_work(fields, message):
  config = tiny.get_config()
  for name, value in fields.items():
    config.data[name] = value
  with pytest.raises(ConfigError, match=message):
    schema.check(config)
