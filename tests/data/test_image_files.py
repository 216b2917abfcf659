"""Image headers read without decoding: EXIF orientation behind other APP1 segments."""

import io
import pathlib
import struct

import numpy as np
import pytest
from conftest import data_config, write_face_folder
from PIL import Image

from ageflax.data import image_files, pipeline

_XMP = b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta/>"


def _jpeg_with_xmp_before_exif(pixels: np.ndarray, orientation: int) -> bytes:
  """A JPEG whose first segment after SOI is an XMP APP1, then Pillow's Exif APP1."""
  exif = Image.Exif()
  exif[0x0112] = orientation
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, format="JPEG", exif=exif.tobytes(), quality=95)
  jpeg = buffer.getvalue()
  xmp_segment = b"\xff\xe1" + struct.pack(">H", len(_XMP) + 2) + _XMP
  return jpeg[:2] + xmp_segment + jpeg[2:]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_is_read_behind_an_xmp_segment(tmp_path, orientation):
  path = tmp_path / "photo.jpg"
  path.write_bytes(_jpeg_with_xmp_before_exif(np.zeros((6, 10, 3), np.uint8), orientation))
  assert path.read_bytes().index(_XMP) < path.read_bytes().index(b"Exif\0\0")
  assert image_files.exif_orientation(path) == orientation
  assert image_files.image_size(path, "jpeg") == (10, 6)
  assert image_files.image_file_problem(path) is None


def _left_red_right_blue(height: int, width: int) -> np.ndarray:
  pixels = np.zeros((height, width, 3), np.uint8)
  pixels[:, :width // 2, 0] = 255
  pixels[:, width // 2:, 2] = 255
  return pixels


def test_training_decode_turns_an_xmp_and_exif_photo_upright(tmp_path: pathlib.Path):
  folder = write_face_folder(tmp_path / "faces", 12)
  # Orientation 6: the camera was turned clockwise, so the stored left half is the top.
  (folder / "final_files" / "00003.jpg").write_bytes(
      _jpeg_with_xmp_before_exif(_left_red_right_blue(20, 40), 6))
  prepared = pipeline.prepare(data_config(folder, cache="none", validation_fraction=0.0), None)
  index = list(prepared.store.file_names).index("00003.jpg")
  image = prepared.store.read(np.array([index]))[0][0].astype(int)
  quarter = image.shape[0] // 4
  top, bottom = image[:quarter].mean(axis=(0, 1)), image[-quarter:].mean(axis=(0, 1))
  assert top[0] > 200 > top[2] + 150 and bottom[2] > 200 > bottom[0] + 150
