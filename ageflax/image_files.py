"""Cheap checks on image files before any decoder sees them: format sniffing and truncation."""

import os

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


def sniff_format(head: bytes) -> str | None:
  """Returns 'jpeg', 'png', 'gif' or 'bmp' from a file's first bytes, or None."""
  for signature, name in _SIGNATURES:
    if head.startswith(signature):
      return name
  return None


def image_file_problem(path: str | os.PathLike) -> str | None:
  """Returns why the file at `path` cannot be a decodable image, or None if it looks fine.

  Checks existence, emptiness, the format signature and, for JPEG and PNG, that the
  end marker is present (a truncated download or copy loses it).
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
  return None
