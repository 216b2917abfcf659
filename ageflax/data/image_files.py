"""Cheap checks on image files before any decoder sees them: format sniffing and truncation."""

import os
import struct
from typing import BinaryIO

_SIGNATURES = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
)
_JPEG_END = b"\xff\xd9"
_PNG_END = b"IEND\xaeB`\x82"
# Cameras and editors may append bytes after the end marker; look for it near the end only.
_TAIL_BYTES = 4096
# JPEG start-of-frame markers: they carry the image's height and width.
_JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def sniff_format(head: bytes) -> str | None:
  """Returns 'jpeg', 'png', 'gif' or 'bmp' from a file's first bytes, or None."""
  for signature, name in _SIGNATURES:
    if head.startswith(signature):
      return name
  return None


def image_file_problem(path: str | os.PathLike, max_megapixels: float = 40.0) -> str | None:
  """Returns why the file at `path` cannot be a decodable image, or None if it looks fine.

  Checks existence, emptiness, the format signature, that JPEG and PNG files keep their
  end marker (a truncated download or copy loses it), and that the header's pixel count
  is at most `max_megapixels` (a few bytes can declare a picture that needs gigabytes).
  """
  try:
    size = os.path.getsize(path)
    if size == 0:
      return "file is empty"
    with open(path, "rb") as f:
      head = f.read(16)
      f.seek(max(0, size - _TAIL_BYTES))
      tail = f.read()
  except FileNotFoundError:
    return "file not found"
  except IsADirectoryError:
    return "is a directory, not an image"
  except OSError as e:
    return f"cannot read file ({e.strerror})"
  image_format = sniff_format(head)
  if image_format is None:
    return "not a JPEG, PNG, GIF or BMP image (unrecognised file signature)"
  if image_format == "jpeg" and _JPEG_END not in tail:
    return "truncated JPEG (no end-of-image marker)"
  if image_format == "png" and _PNG_END not in tail:
    return "truncated PNG (no IEND chunk)"
  size = image_size(path, image_format)
  if size is None:
    return f"unreadable {image_format.upper()} header (no image size)"
  width, height = size
  if width * height > max_megapixels * 1e6:
    return (f"image is {width}x{height}, {width * height / 1e6:.0f} megapixels, more than "
            f"data.max_image_megapixels={max_megapixels:g}")
  return None


def image_size(path: str | os.PathLike, image_format: str) -> tuple[int, int] | None:
  """(width, height) from the header of a JPEG, PNG, GIF or BMP file, without decoding."""
  with open(path, "rb") as f:
    if image_format == "jpeg":
      return _jpeg_size(f)
    header = f.read(26)
  try:
    if image_format == "png":
      return struct.unpack(">II", header[16:24])
    if image_format == "gif":
      return struct.unpack("<HH", header[6:10])
    width, height = struct.unpack("<ii", header[18:26])
    return abs(width), abs(height)
  except struct.error:
    return None


def exif_orientation(path: str | os.PathLike) -> int:
  """The EXIF orientation (1-8) of a JPEG file; 1 (upright) when absent or unreadable."""
  with open(path, "rb") as f:
    if f.read(2) != b"\xff\xd8":
      return 1
    while True:
      marker = f.read(4)
      if len(marker) < 4 or marker[0] != 0xFF or marker[1] in _JPEG_FRAME_MARKERS:
        return 1
      length = struct.unpack(">H", marker[2:4])[0]
      if marker[1] == 0xE1:  # APP1 holds EXIF
        return _orientation_from_exif(f.read(length - 2))
      f.seek(length - 2, os.SEEK_CUR)


def _orientation_from_exif(segment: bytes) -> int:
  if not segment.startswith(b"Exif\0\0") or len(segment) < 14:
    return 1
  tiff = segment[6:]
  order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
  if order is None:
    return 1
  try:
    first_ifd = struct.unpack(order + "I", tiff[4:8])[0]
    (count,) = struct.unpack(order + "H", tiff[first_ifd:first_ifd + 2])
    for entry in range(count):
      offset = first_ifd + 2 + 12 * entry
      tag, _, _, value = struct.unpack(order + "HHIH", tiff[offset:offset + 10])
      if tag == 0x0112:
        return value if 1 <= value <= 8 else 1
  except struct.error:
    return 1
  return 1


def _jpeg_size(f: BinaryIO) -> tuple[int, int] | None:
  """Walks the JPEG segments to the start-of-frame marker."""
  f.seek(2)
  while True:
    marker = f.read(4)
    if len(marker) < 4 or marker[0] != 0xFF:
      return None
    length = struct.unpack(">H", marker[2:4])[0]
    if marker[1] in _JPEG_FRAME_MARKERS:
      frame = f.read(5)
      if len(frame) < 5:
        return None
      height, width = struct.unpack(">HH", frame[1:5])
      return width, height
    f.seek(length - 2, os.SEEK_CUR)
