"""Labelled face records: validating rows and image files, the bad-row policy, splitting.

A record is one photo's path, age and group values (if any). The layout readers
(`layouts`) turn a data folder into candidate rows; this module checks them (names, ages, duplicates, image files),
enforces the policy for bad rows (skip with a count and names, or abort) and splits the
records into train/validation/test. It never decodes images (see `ageflax.data.pipeline`).
"""

import csv
import dataclasses
import hashlib
import math
import os
import pathlib
from collections.abc import Sequence

from ageflax.core import atomic_files
from ageflax.core.errors import DataError
from ageflax.data import image_files

SPLITS = ("train", "validation", "test")
# Why a row whose image lies outside the data folder (and data.extra_image_root) is refused.
OUTSIDE = "outside the data folder"
# The group value of a row whose group cell is empty or whose file name does not say.
UNKNOWN_GROUP = "unknown"


@dataclasses.dataclass(frozen=True)
class Record:
  """One labelled photo.

  `row` is its line in `origin` (a labels file; header = line 1), or its position in
  the folder listing for layouts without a labels file; (origin, row) is unique.
  """

  file_name: str
  path: str
  age: float
  row: int
  orientation: int = 1  # EXIF orientation: how the decoded pixels must turn to stand upright
  split: str | None = None  # The split the layout itself assigns, if any.
  origin: str = ""
  # (group field, value) pairs a per-group report breaks errors down by (data.group_columns,
  # data.group_from_file_names); a missing value is UNKNOWN_GROUP.
  groups: tuple[tuple[str, str], ...] = ()

  @property
  def key(self) -> tuple[str, int]:
    return (self.origin, self.row)


@dataclasses.dataclass(frozen=True)
class Problem:
  """A row (or, with row 0, a file) that cannot be used, and why."""

  row: int
  file_name: str
  reason: str
  origin: str = ""

  @property
  def key(self) -> tuple[str, int]:
    return (self.origin, self.row)

  def describe(self) -> str:
    where = " ".join(part for part in (self.origin, f"row {self.row}" if self.row else "") if part)
    if not where:
      return f"{self.file_name}: {self.reason}"
    name = f" ({self.file_name})" if self.file_name else ""
    return f"{where}{name}: {self.reason}"


@dataclasses.dataclass(frozen=True)
class LabelledFaces:
  """The usable records of a data folder and the rows that were set aside."""

  source: str
  records: tuple[Record, ...]
  problems: tuple[Problem, ...]

  def without(self, bad: dict[tuple[str, int], str]) -> "LabelledFaces":
    """Returns a copy with the records whose key is in `bad` (key -> reason) moved to problems."""
    kept = tuple(r for r in self.records if r.key not in bad)
    moved = tuple(Problem(r.row, r.file_name, bad[r.key], r.origin)
                  for r in self.records if r.key in bad)
    return LabelledFaces(self.source, kept, tuple(sorted(self.problems + moved, key=_key_of)))


def _key_of(problem: Problem) -> tuple[str, int]:
  return problem.key


def read_csv_rows(
    csv_path: pathlib.Path, required: Sequence[str], optional: Sequence[str] = ()
) -> list[tuple[int, dict[str, str]]]:
  """Reads a CSV's non-blank data rows as (line number, {column: stripped value}).

  Only the `required` and present `optional` columns are kept; a missing value is ''.

  Raises:
    DataError: the file is missing, empty, not UTF-8, malformed, or lacks a required column.
  """
  if not csv_path.is_file():
    raise DataError(f"{csv_path} not found")
  try:
    with open(csv_path, encoding="utf-8-sig", newline="") as f:
      reader = csv.reader(f)
      header = next(reader, None)
      if header is None:
        raise DataError(f"{csv_path} is empty: expected a header with {', '.join(required)}")
      columns = [name.strip() for name in header]
      missing = [c for c in required if c not in columns]
      if missing:
        raise DataError(f"{csv_path}: missing column(s) {', '.join(missing)} "
                        f"(found: {', '.join(columns) or 'none'})")
      wanted = {c: columns.index(c) for c in (*required, *optional) if c in columns}
      rows = []
      for values in reader:
        if not any(v.strip() for v in values):
          continue
        padded = values + [""] * (len(columns) - len(values))
        rows.append((reader.line_num, {c: padded[i].strip() for c, i in wanted.items()}))
      return rows
  except UnicodeDecodeError as e:
    raise DataError(f"{csv_path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
  except csv.Error as e:
    raise DataError(f"{csv_path}: malformed CSV ({e})") from None


def parse_age(age_text: str, column: str, max_age: float) -> tuple[float | None, str | None]:
  """Returns (age, None) for a valid age text, else (None, why it is not one)."""
  if not age_text:
    return None, f"missing {column}"
  try:
    age = float(age_text)
  except ValueError:
    return None, f"{column} {age_text!r} is not a number"
  if not math.isfinite(age) or age < 0 or age > max_age:
    return None, f"{column} {age_text} is outside 0-{max_age:g}"
  return age, None


@dataclasses.dataclass(frozen=True)
class Candidate:
  """A row a reader has parsed but whose image is not checked yet."""

  row: int
  file_name: str
  path: pathlib.Path
  age_text: str
  split: str | None = None
  groups: tuple[tuple[str, str], ...] = ()


def check_candidates(
    candidates: Sequence[Candidate],
    *,
    origin: str,
    file_column: str,
    age_column: str,
    max_age: float,
    max_megapixels: float | None,
    roots: Sequence[str | os.PathLike],
    extra_root: str = "",
) -> tuple[list[Record], list[Problem]]:
  """Validates names, ages, the data folder boundary, uniqueness (by the file a row resolves
  to, so two spellings of one photo are duplicates) and, unless max_megapixels is None, the
  image files.

  Args:
    roots: the folders a row's relative path may lead into (symlinks followed).
    extra_root: `data.extra_image_root`: a further folder any path may lead into ('' = none).
  """
  records, problems = [], []
  first_of: dict[str, tuple[int, str]] = {}  # real path -> (row, file name) that listed it
  for candidate in candidates:
    real_path, age, reason = None, None, None
    if not candidate.file_name:
      reason = f"missing {file_column}"
    else:
      age, reason = parse_age(candidate.age_text, age_column, max_age)
    if reason is None:
      real_path = resolve_inside(candidate.file_name, candidate.path, roots, extra_root)
      reason = None if real_path else OUTSIDE
    if reason is None and real_path in first_of:
      reason = _duplicate(file_column, candidate.file_name, *first_of[real_path])
    if reason is None and max_megapixels is not None:
      reason = image_files.image_file_problem(real_path, max_megapixels)
    if reason is not None:
      problems.append(Problem(candidate.row, candidate.file_name, reason, origin))
      continue
    first_of[real_path] = (candidate.row, candidate.file_name)
    orientation = image_files.exif_orientation(real_path) if max_megapixels is not None else 1
    records.append(Record(candidate.file_name, real_path, age, candidate.row, orientation,
                          candidate.split, origin, candidate.groups))
  return records, problems


def resolve_inside(file_name: str, path: str | os.PathLike, roots: Sequence[str | os.PathLike],
                   extra_root: str = "") -> str | None:
  """The real path (symlinks followed) of a row's image, or None when it is outside the data.

  A relative `file_name` may lead into any of `roots`; an absolute one, or one leading out
  of them (`..`, a symlink), only into `extra_root` when that is set.
  """
  real_path = os.path.realpath(path)
  allowed = [extra_root] if extra_root else []
  if not os.path.isabs(file_name):
    allowed += roots
  return real_path if any(_is_within(real_path, os.path.realpath(root))
                          for root in allowed) else None


def _is_within(real_path: str, real_root: str) -> bool:
  return os.path.commonpath([real_path, real_root]) == real_root


def _duplicate(file_column: str, file_name: str, first_row: int, first_name: str) -> str:
  if file_name == first_name:
    return f"duplicate {file_column}, first listed in row {first_row}"
  return f"duplicate {file_column}: the same file as row {first_row} ({first_name})"


def apply_bad_row_policy(faces: LabelledFaces, policy: str, max_bad_fraction: float) -> None:
  """Enforces `data.bad_rows`: 'error' aborts on any problem, 'skip' tolerates a few.

  Raises:
    DataError: naming the first problems, when the policy does not allow them or when
      nothing usable remains.
  """
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
  """Writes every problem row to a CSV (row, file_name, reason), whole or not at all."""
  with atomic_files.open_atomically(path, newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(["origin", "row", "file_name", "reason"])
    for p in problems:
      writer.writerow([p.origin, p.row or "", p.file_name, p.reason])


def split_records(
    records: Sequence[Record], validation_fraction: float, test_fraction: float, seed: int,
    split_by: str = "file_name",
) -> dict[str, tuple[Record, ...]]:
  """Splits records into train/validation/test, deterministically for a given seed.

  A layout that carries its own splits (every record has `split`) keeps them. Otherwise
  each photo's split depends only on the seed and its file name (`split_by='file_name'`)
  or its file bytes (`split_by='content'`), ranked by a stable hash, so the split does not
  change when rows are reordered, and the validation set does not move when the training
  seed does. By content, byte-identical copies of a photo always share a split, so no
  copy of a training photo is scored as held out.
  """
  if records and all(r.split is not None for r in records):
    return {name: tuple(sorted((r for r in records if r.split == name), key=_record_key))
            for name in SPLITS}
  groups = _split_groups(records, seed, split_by)
  num_validation = round(len(records) * validation_fraction)
  held_out = num_validation + round(len(records) * test_fraction)
  splits = {name: [] for name in SPLITS}
  placed = 0
  for group in groups:  # A whole group goes where its first photo falls in the ranking.
    name = "validation" if placed < num_validation else "test" if placed < held_out else "train"
    splits[name] += group
    placed += len(group)
  return {name: tuple(sorted(part, key=_record_key)) for name, part in splits.items()}


def _split_groups(records: Sequence[Record], seed: int, split_by: str) -> list[list[Record]]:
  """Records grouped by their split hash (one group per photo, or per set of identical
  files), groups in hash order, each group in file-name order."""
  if split_by == "content":
    hashed = [(_split_hash(seed, _file_bytes(r)), r) for r in records]
  else:  # 'file_name'
    hashed = [(_split_hash(seed, r.file_name.encode()), r) for r in records]
  groups: dict[bytes, list[Record]] = {}
  for digest, record in sorted(hashed, key=lambda pair: (pair[0], pair[1].file_name)):
    groups.setdefault(digest, []).append(record)
  return list(groups.values())


def _file_bytes(record: Record) -> bytes:
  try:
    return pathlib.Path(record.path).read_bytes()
  except OSError as e:
    raise DataError(f"{record.path}: cannot read the file to split by content "
                    f"({e.strerror or e})") from None


def _record_key(record: Record) -> tuple[str, int]:
  return record.key


def _split_hash(seed: int, key: bytes) -> bytes:
  return hashlib.sha256(f"{seed}:".encode() + key).digest()
