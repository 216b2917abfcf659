"""labels.csv reading, validation, the bad-row policy and the split."""

import pathlib
import struct
import zlib

import pytest
from conftest import write_face_folder, write_labels

from ageflax.core.errors import DataError
from ageflax.data import image_files, label_rows, layouts


def _problems_by_row(faces: label_rows.LabelledFaces) -> dict[int, str]:
  return {p.row: p.reason for p in faces.problems}


def test_reads_every_row_of_a_clean_folder(face_folder):
  faces = layouts.read_labels_csv(face_folder)
  assert len(faces.records) == 60 and not faces.problems
  first = faces.records[0]
  assert first.file_name == "00000.jpg" and first.row == 2
  assert pathlib.Path(first.path).is_file()


def test_tolerates_bom_crlf_quotes_extra_columns_blank_lines_and_spaces(face_folder):
  text = ("\ufefffile_name , real_age,extra\r\n"
          "\"00000.jpg\", 30.0 ,x\r\n"
          "\r\n"
          " 00001.jpg ,\"7\",y\r\n")
  (face_folder / "labels.csv").write_text(text, encoding="utf-8", newline="")
  faces = layouts.read_labels_csv(face_folder)
  assert [(r.file_name, r.age) for r in faces.records] == [("00000.jpg", 30.0), ("00001.jpg", 7.0)]
  assert [r.row for r in faces.records] == [2, 4]
  assert not faces.problems


def test_columns_in_another_order(face_folder):
  write_labels(face_folder, [(41, "00002.jpg")], header=("real_age", "file_name"))
  faces = layouts.read_labels_csv(face_folder)
  assert [(r.file_name, r.age) for r in faces.records] == [("00002.jpg", 41.0)]


def test_each_bad_row_is_named_with_its_reason(face_folder):
  (face_folder / "final_files" / "garbage.jpg").write_bytes(b"this is not a jpeg at all")
  whole = (face_folder / "final_files" / "00005.jpg").read_bytes()
  (face_folder / "final_files" / "cut.jpg").write_bytes(whole[: len(whole) // 2])
  (face_folder / "final_files" / "empty.jpg").write_bytes(b"")
  write_labels(face_folder, [
      ("00000.jpg", "abc"),        # row 2
      ("00001.jpg", "-3"),         # row 3
      ("00002.jpg", "150"),        # row 4
      ("00003.jpg", "20"),         # row 5: fine
      ("00003.jpg", "21"),         # row 6: duplicate
      ("missing.jpg", "30"),       # row 7
      ("garbage.jpg", "30"),       # row 8
      ("cut.jpg", "30"),           # row 9
      ("empty.jpg", "30"),         # row 10
      ("00004.jpg", ""),           # row 11
      ("", "40"),                  # row 12
      ("00006.jpg", "nan"),        # row 13
  ])
  faces = layouts.read_labels_csv(face_folder)
  problems = _problems_by_row(faces)
  assert [r.row for r in faces.records] == [5]
  assert "'abc' is not a number" in problems[2]
  assert "outside 0-120" in problems[3] and "outside 0-120" in problems[4]
  assert "duplicate file_name, first listed in row 5" in problems[6]
  assert problems[7] == "file not found"
  assert "unrecognised file signature" in problems[8]
  assert "truncated JPEG" in problems[9]
  assert problems[10] == "file is empty"
  assert problems[11] == "missing real_age"
  assert problems[12] == "missing file_name"
  assert "outside" in problems[13]


def test_images_declaring_too_many_pixels_are_rejected_unread(face_folder):
  jpeg = bytearray((face_folder / "final_files" / "00000.jpg").read_bytes())
  frame = jpeg.index(b"\xff\xc0")
  jpeg[frame + 5:frame + 9] = struct.pack(">HH", 60000, 60000)
  (face_folder / "final_files" / "huge.jpg").write_bytes(bytes(jpeg))
  ihdr = b"IHDR" + struct.pack(">II", 100_000, 100_000) + b"\x08\x02\x00\x00\x00"
  png = (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))
         + b"\0\0\0\0IEND\xaeB`\x82")
  (face_folder / "final_files" / "huge.png").write_bytes(png)
  write_labels(face_folder, [("huge.jpg", 30), ("huge.png", 30), ("00001.jpg", 30)])
  problems = _problems_by_row(layouts.read_labels_csv(face_folder))
  assert problems[2] == ("image is 60000x60000, 3600 megapixels, more than "
                         "data.max_image_megapixels=40")
  assert "100000x100000" in problems[3]
  assert image_files.image_size(face_folder / "final_files" / "00001.jpg", "jpeg") == (40, 40)


def _replace_labels(directory: pathlib.Path, content: bytes) -> pathlib.Path:
  (directory / "labels.csv").write_bytes(content)
  return directory


@pytest.mark.parametrize("setup, message", [
    (lambda d: d / "nope", "does not exist"),
    (lambda d: (d / "labels.csv").unlink() or d, "labels.csv not found"),
    (lambda d: _replace_labels(d, b""), "is empty"),
    (lambda d: _replace_labels(d, b"name,age\na.jpg,3\n"),
     "missing column(s) file_name, real_age (found: name, age)"),
    (lambda d: _replace_labels(d, b"file_name,real_age\n\xff\xfe,3\n"), "is not UTF-8"),
])
def test_structural_problems_abort_with_the_file_named(face_folder, setup, message):
  directory = setup(face_folder)
  with pytest.raises(DataError) as error:
    layouts.read_labels_csv(directory)
  assert message in str(error.value)
  assert str(directory) in str(error.value)


def test_bad_row_policy(face_folder):
  write_labels(face_folder, [(f"{i:05d}.jpg", 30) for i in range(50)] + [("gone.jpg", 30)])
  faces = layouts.read_labels_csv(face_folder)
  label_rows.apply_bad_row_policy(faces, "skip", max_bad_fraction=0.05)  # 1 of 51 is fine
  with pytest.raises(DataError, match=r"1 bad row\(s\), data.bad_rows='error': "
                                      r"labels.csv row 52 "
                                      r"\(gone.jpg\): file not found"):
    label_rows.apply_bad_row_policy(faces, "error", max_bad_fraction=0.05)
  with pytest.raises(DataError, match=r"more than data\.max_bad_fraction=0\.01"):
    label_rows.apply_bad_row_policy(faces, "skip", max_bad_fraction=0.01)


def test_empty_after_filtering_is_an_error(face_folder):
  write_labels(face_folder, [("gone.jpg", 30), ("00001.jpg", 500)])
  faces = layouts.read_labels_csv(face_folder)
  with pytest.raises(DataError, match="no usable rows"):
    label_rows.apply_bad_row_policy(faces, "skip", max_bad_fraction=1.0)
  write_labels(face_folder, [])
  with pytest.raises(DataError, match="lists no photos"):
    label_rows.apply_bad_row_policy(layouts.read_labels_csv(face_folder), "skip", 1.0)


def test_split_is_deterministic_disjoint_and_sized(tmp_path):
  faces = layouts.read_labels_csv(write_face_folder(tmp_path / "f", 200, size=8))
  splits = label_rows.split_records(faces.records, 0.25, 0.1, seed=3)
  assert [len(splits[s]) for s in ("train", "validation", "test")] == [130, 50, 20]
  names = {s: {r.file_name for r in splits[s]} for s in splits}
  assert not names["train"] & names["validation"]
  assert not names["train"] & names["test"] and not names["validation"] & names["test"]
  assert splits == label_rows.split_records(faces.records, 0.25, 0.1, seed=3)
  reordered = label_rows.split_records(faces.records[::-1], 0.25, 0.1, seed=3)
  assert {r.file_name for r in reordered["validation"]} == names["validation"]
  other_seed = label_rows.split_records(faces.records, 0.25, 0.1, seed=4)
  assert {r.file_name for r in other_seed["validation"]} != names["validation"]


def test_content_split_keeps_identical_photos_together(tmp_path):
  folder = write_face_folder(tmp_path / "f", 120, size=8)
  files = sorted((folder / "final_files").iterdir())
  for copy in files[1:40:3]:  # 13 photos that are byte-identical copies of another's file
    copy.write_bytes(files[0].read_bytes())
  faces = layouts.read_labels_csv(folder)
  copies = {f.name for f in files[:1] + files[1:40:3]}
  by_name = label_rows.split_records(faces.records, 0.25, 0.25, seed=0)
  assert sum(bool(copies & {r.file_name for r in part}) for part in by_name.values()) > 1
  by_content = label_rows.split_records(faces.records, 0.25, 0.25, seed=0, split_by="content")
  holding = [name for name, part in by_content.items() if copies & {r.file_name for r in part}]
  assert len(holding) == 1 and copies <= {r.file_name for r in by_content[holding[0]]}
  assert sum(len(part) for part in by_content.values()) == 120
  assert by_content == label_rows.split_records(faces.records[::-1], 0.25, 0.25, seed=0,
                                             split_by="content")
