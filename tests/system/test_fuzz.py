"""Property tests: no labels file or image bytes break the loader; every row is accounted for."""

import csv
import io
import pathlib
import shutil
import tempfile

import numpy as np
from conftest import write_face_folder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from ageflax.core.errors import DataError
from ageflax.data import layouts, pipeline
from configs import tiny

_CELLS = st.one_of(
    st.sampled_from(["00000.jpg", "00001.jpg", " 00002.jpg ", "missing.jpg", "", "ünï cödé.jpg",
                     "with space.jpg", "30", "30.0", " 7 ", "-1", "121", "nan", "abc", "1e3"]),
    # A bare carriage return is a line break to any CSV reader, yet csv.writer leaves it
    # unquoted under a '\n' terminator: such a cell is two rows, not one.
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r"), max_size=8))
_ROWS = st.lists(st.lists(_CELLS, min_size=0, max_size=4), max_size=12)


def _folder() -> pathlib.Path:
  root = pathlib.Path(tempfile.mkdtemp())
  write_face_folder(root, 3, size=16)
  for name in ("ünï cödé.jpg", "with space.jpg"):
    shutil.copy(root / "final_files" / "00000.jpg", root / "final_files" / name)
  return root


def _write(folder: pathlib.Path, header: list[str], rows: list[list[str]], newline: str,
           bom: bool) -> None:
  buffer = io.StringIO()
  writer = csv.writer(buffer, lineterminator=newline)
  writer.writerow(header)
  writer.writerows(rows)
  (folder / "labels.csv").write_bytes(("\ufeff" if bom else "").encode() +
                                      buffer.getvalue().encode("utf-8"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=_ROWS, extra_column=st.booleans(), swap=st.booleans(),
       newline=st.sampled_from(["\n", "\r\n"]), bom=st.booleans())
def test_every_labels_row_is_a_record_or_a_named_problem(rows, extra_column, swap, newline, bom):
  folder = _folder()
  try:
    header = ["real_age", "file_name"] if swap else ["file_name", "real_age"]
    if extra_column:
      header.append("note")
    _write(folder, header, rows, newline, bom)
    faces = layouts.read_labels_csv(folder)
    non_blank = [r for r in rows if any(cell.strip() for cell in r)]
    assert len(faces.records) + len(faces.problems) == len(non_blank)
    for record in faces.records:
      assert 0 <= record.age <= 120 and pathlib.Path(record.path).is_file()
    assert len({r.file_name for r in faces.records}) == len(faces.records)
    assert all(p.reason for p in faces.problems)
  finally:
    shutil.rmtree(folder)


def _jpeg_bytes(seed: int) -> bytes:
  pixels = np.random.default_rng(seed).integers(0, 256, (24, 24, 3), np.uint8)
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, format="JPEG")
  return buffer.getvalue()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_image_bytes_are_loaded_or_reported(data):
  folder = _folder()
  try:
    good = _jpeg_bytes(0)
    kind = data.draw(st.sampled_from(["random", "truncated", "flipped"]))
    if kind == "random":
      content = data.draw(st.binary(max_size=300))
    elif kind == "truncated":
      content = good[:data.draw(st.integers(0, len(good) - 1))]
    else:
      position = data.draw(st.integers(0, len(good) - 1))
      content = good[:position] + bytes([good[position] ^ 0xFF]) + good[position + 1:]
    (folder / "final_files" / "odd.jpg").write_bytes(content)
    with open(folder / "labels.csv", "a") as f:
      f.write("odd.jpg,40\n")
    config = tiny.get_config().data
    config.update(dict(dir=str(folder), max_bad_fraction=1.0, validation_fraction=0.0))
    try:
      prepared = pipeline.prepare(config, None)
    except DataError as e:
      assert "odd.jpg" in str(e) or "no usable rows" in str(e)
      return
    names = set(prepared.store.file_names)
    reported = {p.file_name for p in prepared.problems}
    assert ("odd.jpg" in names) != ("odd.jpg" in reported)
    assert len(names) + len(reported) == 4
  finally:
    shutil.rmtree(folder)
