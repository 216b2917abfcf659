"""Cheap checks on image files before any decoder sees them: format sniffing, truncation, and
the header (pixel size, EXIF orientation) read by Pillow without decoding the pixels."""

import os
import struct

from PIL import BmpImagePlugin, GifImagePlugin, JpegImagePlugin, PngImagePlugin

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
# Built directly rather than through Image.open: Image.open refuses a header past Pillow's
# decompression-bomb limit before we can name its size against data.max_image_megapixels.
_HEADER_READERS = {
    "jpeg": JpegImagePlugin.JpegImageFile,
    "png": PngImagePlugin.PngImageFile,
    "gif": GifImagePlugin.GifImageFile,
    "bmp": BmpImagePlugin.BmpImageFile,
}
_ORIENTATION_TAG = 0x0112
# What Pillow raises on a damaged header or EXIF block; such a file is reported or read upright.
_HEADER_ERRORS = (OSError, SyntaxError, ValueError, EOFError, KeyError, IndexError, TypeError,
                  struct.error)


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
  try:
    with _HEADER_READERS[image_format](path) as image:
      return image.size
  except _HEADER_ERRORS:
    return None


def exif_orientation(path: str | os.PathLike) -> int:
  """The EXIF orientation (1-8) of a JPEG file; 1 (upright) when absent or unreadable."""
  try:
    with open(path, "rb") as f:
      if sniff_format(f.read(16)) != "jpeg":
        return 1
    with JpegImagePlugin.JpegImageFile(path) as image:
      orientation = image.getexif().get(_ORIENTATION_TAG, 1)
  except _HEADER_ERRORS:
    return 1
  return orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1
