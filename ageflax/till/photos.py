"""Photos to predict: the listing of files, folders and CSV lists, and loading each photo.

Loading turns a file into upright RGB pixels exactly as training does (TensorFlow decode,
EXIF orientation, antialiased resize), or into the one-line reason it cannot, so a batch
never stops for one unreadable photo. With the face normaliser, each face found becomes
its own photo, framed the way the training photos were (`ageflax.data.faces`).
"""

import csv
import dataclasses
import os
import pathlib
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from ageflax.core.errors import DataError
from ageflax.data import image_files, tf_images
from ageflax.data.faces import FaceBox, FaceNormaliser

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp")


@dataclasses.dataclass(frozen=True)
class Photo:
  """One picture to predict: a whole photo, or one face found in it (`face` counts from 1).

  Exactly one of `image` (uint8 [S, S, 3]) and `problem` (why there is no image) is set;
  `size` is the photo's (width, height) in pixels as its file declares it.
  """

  path: str
  image: np.ndarray | None = None
  problem: str | None = None
  face: int | None = None
  box: FaceBox | None = None
  size: tuple[int, int] | None = None


def list_photos(paths: Sequence[str], csv_path: str | None = None,
                csv_column: str = "file_name", csv_root: str | None = None) -> list[str]:
  """The photo files named by `paths` (files, or folders searched recursively) and a CSV
  (its `csv_column`, relative paths taken from `csv_root`, by default the CSV's folder).

  Named files are kept even when unreadable (their row will say why); a missing path, an
  empty folder or a CSV without the column is an error naming it.
  """
  found = []
  for path in paths:
    if os.path.isdir(path):
      in_folder = _photos_in_folder(path)
      if not in_folder:
        raise DataError(f"{path}: no photos in this folder (looked for "
                        f"{', '.join(PHOTO_SUFFIXES)} files, in subfolders too)")
      found += in_folder
    elif os.path.exists(path):
      found.append(path)
    else:
      raise DataError(f"{path}: no such file or folder")
  if csv_path:
    found += _photos_in_csv(csv_path, csv_column, csv_root)
  if not found:
    raise DataError("no photos given: name files or folders, or --csv=LIST.csv")
  return found


def _photos_in_folder(folder: str) -> list[str]:
  found = []
  for root, folders, files in os.walk(folder):
    folders.sort()
    found += [os.path.join(root, name) for name in sorted(files)
              if name.lower().endswith(PHOTO_SUFFIXES) and not name.startswith(".")]
  return found


def _photos_in_csv(csv_path: str, column: str, root: str | None) -> list[str]:
  try:
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
      rows = list(csv.reader(f))
  except (OSError, UnicodeDecodeError) as e:
    raise DataError(f"{csv_path}: cannot read the photo list ({e})") from None
  header = [name.strip() for name in rows[0]] if rows else []
  if column not in header:
    raise DataError(f"{csv_path}: no column {column!r} in the header {header} "
                    "(set --csv_column)")
  at = header.index(column)
  folder = pathlib.Path(root) if root else pathlib.Path(csv_path).parent
  found = []
  for line, row in enumerate(rows[1:], start=2):
    if not any(cell.strip() for cell in row):
      continue
    if at >= len(row) or not row[at].strip():
      raise DataError(f"{csv_path} row {line}: empty {column!r}")
    found.append(str(folder / row[at].strip()))
  if not found:
    raise DataError(f"{csv_path}: lists no photos")
  return found


def load_photo(path: str, image_size: int, normaliser: FaceNormaliser | None = None,
               max_megapixels: float = 40.0) -> list[Photo]:
  """The photo at `path` resized for the model, or one framed photo per face `normaliser`
  finds (the customer's first).

  Never raises for a bad photo: the returned Photo carries the reason instead.
  """
  problem = image_files.image_file_problem(path, max_megapixels)
  if problem:
    return [Photo(path, problem=problem)]
  size = _declared_size(path)
  try:
    encoded = tf.io.read_file(path)
    orientation = tf.constant(image_files.exif_orientation(path))
    if normaliser is None:
      image = tf_images.load_encoded_image(encoded, orientation, image_size)
      return [Photo(path, image=image.numpy(), size=size)]
    upright = tf_images.apply_exif_orientation(tf_images.decode_image(encoded),
                                               orientation).numpy()
  except (tf.errors.OpError, OSError) as e:
    return [Photo(path, problem=f"cannot decode the image ({_first_line(e)})")]
  framed = normaliser.frame_all(upright)
  if not framed:
    return [Photo(path, problem="no face found")]
  return [Photo(path, image=face.image, face=i, box=face.face.box, size=size)
          for i, face in enumerate(framed, start=1)]


def _declared_size(path: str) -> tuple[int, int] | None:
  """The (width, height) a checked image file's header declares."""
  with open(path, "rb") as f:
    image_format = image_files.sniff_format(f.read(16))
  return image_files.image_size(path, image_format) if image_format else None


def _first_line(error: Exception) -> str:
  message = getattr(error, "message", None) or str(error) or type(error).__name__
  return message.strip().splitlines()[0][:200]
