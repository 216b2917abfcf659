"""Writes a folder of synthetic, age-labelled face pictures.

Usage: python scripts/make_synthetic_faces.py DIR [--n 2000] [--seed 0]
           [--image_size 128] [--overwrite]

DIR receives labels.csv (file_name,real_age) and final_files/*.jpg. The same
seed always gives byte-identical files.
"""

import csv
import pathlib

import numpy as np
from absl import flags, logging

from ageflax.cli import common
from ageflax.devtools.synthetic import portraits

_N = flags.DEFINE_integer("n", 2000, "Number of faces to write.")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed; the same seed gives identical files.")
_IMAGE_SIZE = flags.DEFINE_integer(
  "image_size", 128, "Side length of the square pictures in pixels."
)
_OVERWRITE = flags.DEFINE_bool(
  "overwrite",
  False,
  "Write even if DIR already holds a labels.csv (images not listed in the new one stay).",
)

_MIN_IMAGE_SIZE = 16


def _check_arguments(argv: list[str]) -> pathlib.Path:
  """Returns the output folder, or exits with a one-line message."""
  if len(argv) != 2:
    raise SystemExit(f"error: expected exactly one argument, the output DIR; got {argv[1:]}")
  directory = pathlib.Path(argv[1])
  if _N.value < 1:
    raise SystemExit(f"error: --n must be at least 1, got {_N.value}")
  if _IMAGE_SIZE.value < _MIN_IMAGE_SIZE:
    raise SystemExit(
      f"error: --image_size must be at least {_MIN_IMAGE_SIZE}, got {_IMAGE_SIZE.value}"
    )
  if directory.exists() and not directory.is_dir():
    raise SystemExit(f"error: {directory} exists and is not a directory")
  if (directory / "labels.csv").exists() and not _OVERWRITE.value:
    raise SystemExit(
      f"error: {directory / 'labels.csv'} already exists; pass --overwrite to replace it"
    )
  return directory


def _read_ages(labels: pathlib.Path) -> np.ndarray:
  with labels.open(newline="") as handle:
    return np.array([int(row["real_age"]) for row in csv.DictReader(handle)])


def main(argv: list[str]) -> None:
  directory = _check_arguments(argv)
  try:
    labels = portraits.write_synthetic_faces(directory, _N.value, _SEED.value, _IMAGE_SIZE.value)
  except OSError as error:
    raise SystemExit(f"error: cannot write to {directory}: {error.strerror or error}") from None
  ages = _read_ages(labels)
  logging.info(
    "wrote %s synthetic faces (ages %d-%d, median %g) to %s",
    f"{len(ages):,}",
    ages.min(),
    ages.max(),
    np.median(ages),
    directory,
  )



def run() -> None:
  """The console entry point: parses the flags and runs main."""
  common.run(main, __name__)
