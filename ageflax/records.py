"""Labelled face records: reading `labels.csv`, validating every row, and splitting.

A record is one photo's path and age. This module owns the study's layout
(`DIR/labels.csv` with `file_name,real_age`, images in `DIR/final_files/`), the
policy for bad rows (skip with a count and names, or abort) and the deterministic
train/validation/test split. It never decodes images (see `input_pipeline`).
"""

import csv
import dataclasses
import hashlib
import math
import os
import pathlib
from collections.abc import Sequence

from ageflax import image_files
from ageflax.errors import DataError

FILE_COLUMN = "file_name"
AGE_COLUMN = "real_age"
LABELS_FILE = "labels.csv"
IMAGES_DIR = "final_files"
SPLITS = ("train", "validation", "test")


@dataclasses.dataclass(frozen=True)
class Record:
  """One labelled photo; `row` is its line number in the labels file (header = 1)."""

  file_name: str
  path: str
  age: float
  row: int
  orientation: int = 1  # EXIF orientation: how the decoded pixels must turn to stand upright


@dataclasses.dataclass(frozen=True)
class Problem:
  """A row that cannot be used, and why."""

  row: int
  file_name: str
  reason: str

  def describe(self) -> str:
    name = f" ({self.file_name})" if self.file_name else ""
    return f"row {self.row}{name}: {self.reason}"


@dataclasses.dataclass(frozen=True)
class LabelledFaces:
  """The usable records of a data folder and the rows that were set aside."""

  source: str
  records: tuple[Record, ...]
  problems: tuple[Problem, ...]

  def without(self, bad_rows: dict[int, str]) -> "LabelledFaces":
    """Returns a copy with the records at `bad_rows` (row -> reason) moved to problems."""
    kept = tuple(r for r in self.records if r.row not in bad_rows)
    moved = tuple(
        Problem(r.row, r.file_name, bad_rows[r.row]) for r in self.records if r.row in bad_rows
    )
    return LabelledFaces(self.source, kept, tuple(sorted(self.problems + moved, key=_row_of)))


def _row_of(problem: Problem) -> int:
  return problem.row


def read_labels_csv(
    directory: str | os.PathLike,
    max_age: float = 120.0,
    check_files: bool = True,
    max_megapixels: float = 40.0,
) -> LabelledFaces:
  """Reads and validates `DIR/labels.csv`; images are looked up in `DIR/final_files/`.

  Args:
    directory: the data folder in the study's layout.
    max_age: ages above this are rejected as absurd.
    check_files: also check that each image exists and is not obviously broken.
    max_megapixels: images whose header declares more pixels are rejected.

  Returns:
    The usable records and every problem row.

  Raises:
    DataError: the folder, the labels file or a required column is missing.
  """
  directory = pathlib.Path(directory)
  if not directory.is_dir():
    raise DataError(f"data directory {directory} does not exist")
  labels_path = directory / LABELS_FILE
  if not labels_path.is_file():
    raise DataError(f"{labels_path} not found: expected a labels file with columns "
                    f"{FILE_COLUMN},{AGE_COLUMN} beside the {IMAGES_DIR}/ folder")
  image_dir = directory / IMAGES_DIR
  if check_files and not image_dir.is_dir():
    raise DataError(f"image folder {image_dir} does not exist")
  rows = _read_rows(labels_path)
  records, problems = _validate_rows(rows, image_dir, max_age,
                                     max_megapixels if check_files else None)
  return LabelledFaces(str(labels_path), tuple(records), tuple(problems))


def _read_rows(labels_path: pathlib.Path) -> list[tuple[int, str, str]]:
  """Returns (row number, file name, age text) for each non-blank data row."""
  try:
    with open(labels_path, encoding="utf-8-sig", newline="") as f:
      reader = csv.reader(f)
      header = next(reader, None)
      if header is None:
        raise DataError(f"{labels_path} is empty: expected a header {FILE_COLUMN},{AGE_COLUMN}")
      columns = [name.strip() for name in header]
      missing = [c for c in (FILE_COLUMN, AGE_COLUMN) if c not in columns]
      if missing:
        raise DataError(f"{labels_path}: missing column(s) {', '.join(missing)} "
                        f"(found: {', '.join(columns) or 'none'})")
      file_at, age_at = columns.index(FILE_COLUMN), columns.index(AGE_COLUMN)
      rows = []
      for values in reader:
        row = reader.line_num
        if not any(v.strip() for v in values):
          continue
        padded = values + [""] * (len(columns) - len(values))
        rows.append((row, padded[file_at].strip(), padded[age_at].strip()))
      return rows
  except UnicodeDecodeError as e:
    raise DataError(f"{labels_path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
  except csv.Error as e:
    raise DataError(f"{labels_path}: malformed CSV ({e})") from None


def _validate_rows(
    rows: Sequence[tuple[int, str, str]],
    image_dir: pathlib.Path,
    max_age: float,
    max_megapixels: float | None,
) -> tuple[list[Record], list[Problem]]:
  """Records for the good rows; a Problem for each bad one (file checks unless None)."""
  records, problems = [], []
  first_row_of: dict[str, int] = {}
  for row, file_name, age_text in rows:
    reason = _row_problem(file_name, age_text, max_age, first_row_of)
    path = image_dir / file_name
    if reason is None and max_megapixels is not None:
      reason = image_files.image_file_problem(path, max_megapixels)
    if reason is not None:
      problems.append(Problem(row, file_name, reason))
      continue
    first_row_of[file_name] = row
    orientation = image_files.exif_orientation(path) if max_megapixels is not None else 1
    records.append(Record(file_name, str(path), float(age_text), row, orientation))
  return records, problems


def _row_problem(
    file_name: str, age_text: str, max_age: float, first_row_of: dict[str, int]
) -> str | None:
  if not file_name:
    return f"missing {FILE_COLUMN}"
  if not age_text:
    return f"missing {AGE_COLUMN}"
  try:
    age = float(age_text)
  except ValueError:
    return f"{AGE_COLUMN} {age_text!r} is not a number"
  if not math.isfinite(age) or age < 0 or age > max_age:
    return f"{AGE_COLUMN} {age_text} is outside 0-{max_age:g}"
  if file_name in first_row_of:
    return f"duplicate {FILE_COLUMN}, first listed in row {first_row_of[file_name]}"
  return None


def apply_bad_row_policy(faces: LabelledFaces, policy: str, max_bad_fraction: float) -> None:
  """Enforces `data.bad_rows`: 'error' aborts on any problem, 'skip' tolerates a few.

  Raises:
    DataError: naming the first problems, when the policy does not allow them or when
      nothing usable remains.
  """
  if policy not in ("skip", "error"):
    raise DataError(f"data.bad_rows must be 'skip' or 'error', not {policy!r}")
  problems = faces.problems
  total = len(problems) + len(faces.records)
  if not faces.records:
    raise DataError(f"{faces.source}: no usable rows ({describe_problems(problems)})"
                    if problems else f"{faces.source} lists no photos")
  if problems and policy == "error":
    raise DataError(f"{faces.source}: {len(problems)} bad row(s), data.bad_rows='error': "
                    f"{describe_problems(problems)}")
  if len(problems) > max_bad_fraction * total:
    raise DataError(f"{faces.source}: {len(problems)} of {total} rows are bad, more than "
                    f"data.max_bad_fraction={max_bad_fraction:g}: {describe_problems(problems)}")


def describe_problems(problems: Sequence[Problem], limit: int = 3) -> str:
  """Summarises the first `limit` problems on one line."""
  shown = "; ".join(p.describe() for p in problems[:limit])
  more = len(problems) - limit
  return shown + (f"; and {more} more" if more > 0 else "")


def write_problems(problems: Sequence[Problem], path: str | os.PathLike) -> None:
  """Writes every problem row to a CSV (row, file_name, reason)."""
  with open(path, "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(["row", FILE_COLUMN, "reason"])
    for p in problems:
      writer.writerow([p.row, p.file_name, p.reason])


def split_records(
    records: Sequence[Record], validation_fraction: float, test_fraction: float, seed: int
) -> dict[str, tuple[Record, ...]]:
  """Splits records into train/validation/test, deterministically for a given seed.

  Each photo's split depends only on (seed, file name), ranked by a stable hash, so the
  split does not change when rows are reordered, and the validation set does not move
  when the training seed does.
  """
  if validation_fraction < 0 or test_fraction < 0 or validation_fraction + test_fraction >= 1:
    raise DataError(f"data.validation_fraction ({validation_fraction:g}) and data.test_fraction "
                    f"({test_fraction:g}) must be >= 0 and sum to less than 1")
  ranked = sorted(records, key=lambda r: _split_hash(seed, r.file_name))
  num_validation = round(len(ranked) * validation_fraction)
  num_test = round(len(ranked) * test_fraction)
  held_out = num_validation + num_test
  splits = {
      "validation": ranked[:num_validation],
      "test": ranked[num_validation:held_out],
      "train": ranked[held_out:],
  }
  return {name: tuple(sorted(part, key=lambda r: r.row)) for name, part in splits.items()}


def _split_hash(seed: int, file_name: str) -> bytes:
  return hashlib.sha256(f"{seed}:{file_name}".encode()).digest()
