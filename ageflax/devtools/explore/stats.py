"""The overview's figures: photo counts, missing values, ages, image sizes, duplicates, problems."""

import collections
import csv
import dataclasses
import pathlib
from collections.abc import Sequence

import numpy as np

from ageflax.core import age_bands as age_bands_lib
from ageflax.core import age_stats
from ageflax.data import layouts
from ageflax.data.label_rows import LabelledFaces, Problem, Record
from ageflax.devtools.explore.images import ImageFacts

TOP_AGES = 10
TOP_SIZES = 10


def summarize(faces: LabelledFaces, facts: Sequence[ImageFacts],
              problems: Sequence[tuple[str, Problem]], directory: pathlib.Path,
              data_format: str) -> dict:
  """Every figure of the overview, JSON-ready, from the reader's output and the image facts."""
  readable = [(r, f) for r, f in zip(faces.records, facts, strict=True) if f.error is None]
  ages = np.array([r.age for r, _ in readable], np.float64)
  return {
      "directory": str(directory),
      "format": data_format,
      "source": faces.source,
      "photos": {"rows_listed": len(faces.records) + len(faces.problems),
                 "usable": len(readable),
                 "set_aside": len(faces.records) + len(faces.problems) - len(readable)},
      "missing_values": missing_values(faces, directory, data_format),
      "ages": age_statistics(ages),
      "top_ages": most_frequent_ages(ages),
      "age_bands": age_bands(ages),
      "images": image_statistics([f for _, f in readable], [r for r, _ in readable]),
      "unreadable": [{"file_name": r.file_name, "reason": f.error}
                     for r, f in zip(faces.records, facts, strict=True) if f.error],
      "duplicates": duplicate_groups(faces.records, facts),
      "problems": {"count": len(problems),
                   "by_kind": dict(collections.Counter(kind for kind, _ in problems)),
                   "list": [dict(dataclasses.asdict(p), kind=kind, text=p.describe())
                            for kind, p in problems]},
  }


def all_problems(faces: LabelledFaces, facts: Sequence[ImageFacts]) -> list[tuple[str, Problem]]:
  """Every problem as (kind, problem): the reader's rows set aside ('reader'), images no
  decoder reads ('unreadable') and extra copies of the same bytes ('duplicate_content')."""
  problems = [("reader", p) for p in faces.problems]
  problems += [("unreadable", _problem(r, f.error))
               for r, f in zip(faces.records, facts, strict=True) if f.error]
  for first, *copies in _duplicate_record_groups(faces.records, facts):
    problems += [("duplicate_content", _problem(r, _copy_reason(r, first))) for r in copies]
  return problems


def _copy_reason(copy: Record, first: Record) -> str:
  ages = "same age" if copy.age == first.age else (
      f"age {plain_number(copy.age)} here, {plain_number(first.age)} there")
  return f"same bytes as {first.file_name} ({ages})"


def _problem(record: Record, reason: str) -> Problem:
  # Layouts without a labels file number rows by listing position, which names nothing.
  return Problem(record.row if record.origin else 0, record.file_name, reason, record.origin)


def _duplicate_record_groups(faces_records: Sequence[Record],
                             facts: Sequence[ImageFacts]) -> list[list[Record]]:
  """Readable records whose files hold the same bytes, in groups of two or more."""
  by_digest = collections.defaultdict(list)
  for record, facts_of_one in zip(faces_records, facts, strict=True):
    if facts_of_one.error is None:
      by_digest[facts_of_one.digest].append(record)
  return [group for group in by_digest.values() if len(group) > 1]


def duplicate_groups(faces_records: Sequence[Record], facts: Sequence[ImageFacts]) -> dict:
  """Groups of files with identical contents: the file names and ages of each group."""
  groups = _duplicate_record_groups(faces_records, facts)
  return {"groups": len(groups), "extra_copies": sum(len(g) - 1 for g in groups),
          "groups_with_different_ages": sum(1 for g in groups if len({r.age for r in g}) > 1),
          "list": [[{"file_name": r.file_name, "age": plain_number(r.age)} for r in group]
                   for group in groups]}


def missing_values(faces: LabelledFaces, directory: pathlib.Path, data_format: str) -> dict:
  """Empty cells per column of each labels CSV, or missing fields of UTKFace file names.

  Returns:
    {table: {"rows": data rows, "missing": {column: empty cells}}}, one table per labels
    file (APPA-REAL has one per split) or one named 'file names' for UTKFace.
  """
  if data_format == "utkface":
    names = [r.file_name for r in faces.records] + [p.file_name for p in faces.problems]
    return {"file names": _missing_name_fields(names)}
  if data_format == "appa_real":
    origins = sorted({r.origin for r in (*faces.records, *faces.problems) if r.origin})
    label_files = [directory / origin for origin in origins]
  else:
    label_files = [pathlib.Path(faces.source)]
  return {path.name: _missing_cells(path) for path in label_files}


def _missing_cells(csv_path: pathlib.Path) -> dict:
  """Counts the empty (or absent) cells of each column over the non-blank data rows."""
  with open(csv_path, encoding="utf-8-sig", newline="") as f:
    reader = csv.reader(f)
    columns = [name.strip() for name in next(reader, [])]
    missing = dict.fromkeys(columns, 0)
    rows = 0
    for values in reader:
      if not any(v.strip() for v in values):
        continue
      rows += 1
      padded = values + [""] * (len(columns) - len(values))
      for column, value in zip(columns, padded, strict=False):  # extra cells have no column
        missing[column] += not value.strip()
  return {"rows": rows, "missing": missing}


def _missing_name_fields(file_names: Sequence[str]) -> dict:
  """Missing AGE/GENDER/RACE/DATETIME fields over the JPEG names of a UTKFace folder.

  A short name keeps its date (the long number at the end) as DATETIME, so that
  `39_1_20170116174525125.jpg` counts as missing RACE, as it does in the real release.
  """
  fields = layouts.UTKFACE_FIELDS
  missing = dict.fromkeys(fields, 0)
  photos = [n.rsplit("/", 1)[-1] for n in file_names if n.lower().endswith((".jpg", ".jpeg"))]
  for name in photos:
    parts = name.split(".", 1)[0].split("_")
    if len(parts) < len(fields) and parts[-1].isdigit() and len(parts[-1]) >= 8:
      parts = parts[:-1] + [""] * (len(fields) - len(parts)) + parts[-1:]
    parts += [""] * (len(fields) - len(parts))
    for field, part in zip(fields, parts, strict=False):
      missing[field] += not part
  return {"rows": len(photos), "missing": missing}


def age_statistics(ages: np.ndarray) -> dict:
  """`age_stats.age_statistics` as the overview shows it: ages plain, mean and std to 2 places."""
  shown = {"count": int, "min": plain_number, "median": plain_number, "max": plain_number,
           "mean": lambda value: round(value, 2), "std": lambda value: round(value, 2)}
  return {name: None if value is None else shown[name](value)
          for name, value in age_stats.age_statistics(ages).items()}


def most_frequent_ages(ages: np.ndarray, top: int = TOP_AGES) -> list[dict]:
  """The `top` most frequent ages with their counts and shares; ties go to the younger age."""
  counts = collections.Counter(ages.tolist())
  ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top]
  return [{"age": plain_number(age), "count": count, "share": _share(count, len(ages))}
          for age, count in ranked]


def age_bands(ages: np.ndarray) -> list[dict]:
  """Photos per age band (0-17, 18-24, ..., 65+), banded by the floor of the age."""
  counts = np.bincount(age_bands_lib.band_index(ages), minlength=len(age_bands_lib.AGE_BANDS))
  return [{"band": label, "count": int(count), "share": _share(int(count), len(ages))}
          for label, count in zip(age_bands_lib.LABELS, counts, strict=True)]


def image_statistics(facts: Sequence[ImageFacts], faces_records: Sequence[Record]) -> dict:
  """Sizes, formats, modes and channel counts of readable images, and their EXIF turns."""
  sizes = collections.Counter((f.width, f.height) for f in facts)
  widths = [f.width for f in facts] or [0]
  heights = [f.height for f in facts] or [0]
  return {
      "count": len(facts),
      "megabytes": round(sum(f.num_bytes for f in facts) / 1e6, 1),
      "distinct_sizes": len(sizes),
      "sizes": [{"width": w, "height": h, "count": n, "share": _share(n, len(facts))}
                for (w, h), n in sizes.most_common(TOP_SIZES)],
      "width": {"min": min(widths), "max": max(widths)},
      "height": {"min": min(heights), "max": max(heights)},
      "formats": dict(collections.Counter(f.format for f in facts).most_common()),
      "modes": dict(collections.Counter(f.mode for f in facts).most_common()),
      "channels": {str(c): n for c, n in collections.Counter(f.channels for f in facts)
                   .most_common()},
      "exif_rotated": sum(1 for r in faces_records if r.orientation != 1),
  }


def plain_number(value: float) -> int | float:
  """An age as JSON shows it best: 30, not 30.0; 30.5 stays."""
  value = float(value)
  return int(value) if value.is_integer() else round(value, 2)


def _share(count: int, total: int) -> float:
  return round(count / total, 4) if total else 0.0
