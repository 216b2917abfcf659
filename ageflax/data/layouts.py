"""Data folder layouts: one reader per way face-age datasets are shipped.

- `labels_csv`: the study's `DIR/labels.csv` (`file_name,real_age`) + `DIR/final_files/`.
- `appa_real`: the ChaLearn APPA-REAL release: `train/`, `valid/`, `test/` folders and
  `gt_avg_{split}.csv` (or `allgt_{split}.csv`, one row per rating); its splits are kept.
- `utkface`: `AGE_GENDER_RACE_DATETIME.jpg[.chip.jpg]` files; the age is in the name.
- `csv`: any CSV, with configurable column names and image root.

Every reader returns `label_rows.LabelledFaces`: the usable photos and each problem row
named by file and row. The group fields a per-group report breaks errors down by come from
the labels CSV's `data.group_columns` and, with `data.group_from_file_names='utkface'`,
from UTKFace-style file names in any layout (gender and race; 'unknown' where a name does
not follow the pattern). The data folder is a boundary: a row whose image resolves (symlinks
followed) outside its layout's image root, and outside `data.extra_image_root`, is a
problem row. No reader decodes images (see `ageflax.data.pipeline`).
"""

import collections
import dataclasses
import os
import pathlib
import re

import ml_collections

from ageflax.core.errors import ConfigError, DataError
from ageflax.data import label_rows
from ageflax.data.label_rows import Candidate, LabelledFaces

FORMATS = ("labels_csv", "appa_real", "utkface", "csv")
LABELS_FILE = "labels.csv"
IMAGES_DIR = "final_files"
APPA_SPLITS = {"train": "train", "valid": "validation", "test": "test"}
APPA_TARGETS = {"real_age": "real_age", "apparent_age": "apparent_age_avg"}
APPA_FACE_SUFFIX = "_face.jpg"
UTKFACE_FIELDS = ("AGE", "GENDER", "RACE", "DATETIME")
_UTKFACE_NAME = re.compile(r"^(?P<stem>[^.]*)\.jpe?g(\.chip\.jpe?g)?$", re.IGNORECASE)
# The UTKFace release's codes: GENDER 0 male, 1 female; RACE 0 White ... 4 Others.
UTKFACE_GENDERS = ("male", "female")
UTKFACE_RACES = ("White", "Black", "Asian", "Indian", "Others")
# data.group_from_file_names: '' (off) or a naming scheme, and the group fields it gives.
FILE_NAME_GROUPS = {"": (), "utkface": ("gender", "race")}
# The layouts whose labels CSV data.group_columns can name columns of.
CSV_LAYOUTS = ("labels_csv", "csv")


def read_faces(config: ml_collections.ConfigDict) -> LabelledFaces:
  """Reads `config.dir` in the layout `config.format` names (or detects it).

  Args:
    config: the `data` config section.

  Raises:
    DataError: the folder or its labels cannot be read at all (bad rows are not raised
      here; they come back as problems).
  """
  directory = _existing_folder(config.dir)
  data_format = detect_format(directory) if config.format == "auto" else config.format
  checks = {"max_age": config.max_age, "max_megapixels": config.max_image_megapixels,
            "extra_root": config.extra_image_root}
  columns = group_columns(config.group_columns)
  if columns and data_format not in CSV_LAYOUTS:
    raise ConfigError(f"--config.data.group_columns={config.group_columns!r} names columns of "
                      f"a labels CSV, but {directory} is read as {data_format!r}, which has none "
                      f"(group columns need one of {CSV_LAYOUTS})")
  if data_format == "labels_csv":
    faces = read_labels_csv(directory, group_columns=columns, **checks)
  elif data_format == "appa_real":
    faces = read_appa_real(directory, config.appa_real.target, config.appa_real.face_crops,
                           **checks)
  elif data_format == "utkface":
    faces = read_utkface(directory, **checks)
  else:  # 'csv', the last of FORMATS
    faces = read_csv(directory, config.csv.path, config.csv.image_root, config.csv.file_column,
                     config.csv.age_column, group_columns=columns, **checks)
  if config.group_from_file_names == "utkface":
    faces = with_utkface_groups(faces)
  return faces


def group_columns(text: str) -> tuple[str, ...]:
  """The column names of `data.group_columns` ('gender, site' -> ('gender', 'site'))."""
  return tuple(name.strip() for name in text.split(",") if name.strip())


def utkface_groups(file_name: str) -> tuple[tuple[str, str], ...]:
  """(('gender', g), ('race', r)) from a UTKFace-style name AGE_GENDER_RACE_DATETIME.jpg;
  a field the name does not give as a known code is 'unknown'."""
  match = _UTKFACE_NAME.match(os.path.basename(file_name))
  fields = match["stem"].split("_") if match else []
  if len(fields) != len(UTKFACE_FIELDS) or not fields[0].isdigit():
    fields = ["", "", "", ""]
  return (("gender", _coded(UTKFACE_GENDERS, fields[1])),
          ("race", _coded(UTKFACE_RACES, fields[2])))


def _coded(labels: tuple[str, ...], code: str) -> str:
  if code.isdigit() and int(code) < len(labels):
    return labels[int(code)]
  return label_rows.UNKNOWN_GROUP


def with_utkface_groups(faces: LabelledFaces) -> LabelledFaces:
  """`faces` with each record's gender and race parsed from its file name added."""
  records = tuple(dataclasses.replace(r, groups=r.groups + utkface_groups(r.file_name))
                  for r in faces.records)
  return dataclasses.replace(faces, records=records)


def _existing_folder(directory: str | os.PathLike) -> pathlib.Path:
  directory = pathlib.Path(directory)
  if not directory.is_dir():
    raise DataError(f"data directory {directory} does not exist")
  return directory


def detect_format(directory: pathlib.Path) -> str:
  """Tells the layout of a data folder from the files in it."""
  if (directory / LABELS_FILE).is_file():
    return "labels_csv"
  if any(_appa_labels_file(directory, name) for name in APPA_SPLITS):
    return "appa_real"
  if any(_UTKFACE_NAME.match(name) and name.split("_", 1)[0].isdigit()
         for name in _first_file_names(directory, 100)):
    return "utkface"
  raise DataError(f"cannot tell the layout of {directory}: it has no {LABELS_FILE} "
                  "(labels_csv), no gt_avg_train.csv (appa_real) and no AGE_GENDER_RACE_"
                  "DATETIME.jpg photos (utkface); set data.format, and data.csv.* for "
                  "another CSV")


def _first_file_names(directory: pathlib.Path, limit: int) -> list[str]:
  names = []
  for _, _, files in os.walk(directory):
    names.extend(files)
    if len(names) >= limit:
      break
  return names[:limit]


def read_labels_csv(directory: str | os.PathLike, max_age: float = 120.0,
                    max_megapixels: float | None = 40.0, extra_root: str = "",
                    group_columns: tuple[str, ...] = ()) -> LabelledFaces:
  """The study's layout: `DIR/labels.csv` (file_name,real_age), images in `DIR/final_files/`.

  `max_megapixels=None` skips the image file checks (names, ages and paths only).
  """
  directory = _existing_folder(directory)
  if not (directory / LABELS_FILE).is_file():
    raise DataError(f"{directory / LABELS_FILE} not found: expected a labels file with columns "
                    f"file_name,real_age beside the {IMAGES_DIR}/ folder")
  return read_csv(directory, LABELS_FILE, IMAGES_DIR, "file_name", "real_age", max_age,
                  max_megapixels, extra_root, group_columns)


def read_csv(
    directory: str | os.PathLike,
    csv_path: str,
    image_root: str,
    file_column: str,
    age_column: str,
    max_age: float = 120.0,
    max_megapixels: float | None = 40.0,
    extra_root: str = "",
    group_columns: tuple[str, ...] = (),
) -> LabelledFaces:
  """Any CSV of photos and ages.

  Args:
    directory: the data folder; relative paths below are relative to it.
    csv_path: the labels CSV.
    image_root: the folder the file column's paths are relative to ('' = the CSV's folder).
    file_column: the column with the image paths.
    age_column: the column with the ages in years.
    max_age: ages above this are rejected as absurd.
    max_megapixels: images whose header declares more pixels are rejected; None skips
      the image file checks.
    extra_root: a folder outside `image_root` that rows may name too ('' = none).
    group_columns: columns with each photo's group values (an empty cell is 'unknown').

  Raises:
    DataError: naming the CSV and the column, when a group column is missing from it.
  """
  directory = _existing_folder(directory)
  labels_path = directory / csv_path
  root = directory / image_root if image_root else labels_path.parent
  if max_megapixels is not None and not root.is_dir():
    raise DataError(f"image folder {root} does not exist")
  rows = label_rows.read_csv_rows(labels_path, (file_column, age_column, *group_columns))
  candidates = [Candidate(row, values[file_column], root / values[file_column],
                          values[age_column], groups=_group_cells(values, group_columns))
                for row, values in rows]
  good, problems = label_rows.check_candidates(
      candidates, origin=labels_path.name, file_column=file_column, age_column=age_column,
      max_age=max_age, max_megapixels=max_megapixels, roots=(root,), extra_root=extra_root)
  return LabelledFaces(str(labels_path), tuple(good), tuple(problems))


def _group_cells(values: dict[str, str], columns: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
  return tuple((column, values[column] or label_rows.UNKNOWN_GROUP) for column in columns)


def read_appa_real(
    directory: str | os.PathLike,
    target: str = "real_age",
    face_crops: bool = True,
    max_age: float = 120.0,
    max_megapixels: float | None = 40.0,
    extra_root: str = "",
) -> LabelledFaces:
  """The APPA-REAL release, keeping its train/valid/test splits.

  Args:
    directory: the release folder (train/, valid/, test/ and the gt CSVs).
    target: 'real_age' or 'apparent_age' (the mean of the raters' guesses).
    face_crops: use `NAME_face.jpg` (the release's aligned crop) when it exists.
    max_age: ages above this are rejected as absurd.
    max_megapixels: images whose header declares more pixels are rejected; None skips
      the image file checks.
    extra_root: a folder outside the release that rows may name too ('' = none).
  """
  directory = _existing_folder(directory)
  all_records, all_problems = [], []
  for folder, split in APPA_SPLITS.items():
    labels_path = _appa_labels_file(directory, folder)
    if labels_path is None:
      continue
    candidates, age_column = _appa_candidates(directory / folder, labels_path, target, split,
                                              face_crops)
    good, problems = label_rows.check_candidates(
        candidates, origin=labels_path.name, file_column="file_name", age_column=age_column,
        max_age=max_age, max_megapixels=max_megapixels, roots=(directory / folder,),
        extra_root=extra_root)
    all_records += good
    all_problems += problems
  if not all_records and not all_problems:
    raise DataError(f"{directory}: no APPA-REAL labels (gt_avg_train.csv, gt_avg_valid.csv, "
                    "gt_avg_test.csv or allgt_*.csv)")
  return LabelledFaces(str(directory), tuple(all_records), tuple(all_problems))


def _appa_labels_file(directory: pathlib.Path, folder: str) -> pathlib.Path | None:
  for name in (f"gt_avg_{folder}.csv", f"allgt_{folder}.csv"):
    if (directory / name).is_file():
      return directory / name
  return None


def _appa_candidates(image_dir, labels_path, target, split, face_crops):
  """Candidates of one APPA-REAL split; allgt files (a row per rating) are averaged."""
  per_rating = labels_path.name.startswith("allgt_")
  if target == "real_age":
    age_column = "real_age"
  else:
    age_column = "apparent_age" if per_rating else APPA_TARGETS[target]
  rows = label_rows.read_csv_rows(labels_path, ("file_name", age_column))
  if per_rating:
    rows = _average_ratings(rows, age_column)
  candidates = []
  for row, values in rows:
    name = values["file_name"]
    path = image_dir / name
    crop = image_dir / (name + APPA_FACE_SUFFIX)
    if face_crops and name and crop.is_file():
      path = crop
    candidates.append(Candidate(row, name, path, values[age_column], split))
  return candidates, age_column


def _average_ratings(rows, age_column):
  """One row per photo (at its first line) with the mean of its ratings.

  A photo whose ratings are not all numbers keeps the first offending text, so that the
  row is reported rather than silently averaged.
  """
  texts = collections.defaultdict(list)
  first_row = {}
  for row, values in rows:
    texts[values["file_name"]].append(values[age_column])
    first_row.setdefault(values["file_name"], row)
  averaged = []
  for name, ratings in texts.items():
    try:
      mean = sum(float(text) for text in ratings) / len(ratings)
      text = repr(mean)
    except ValueError:
      text = next(t for t in ratings if not _is_number(t))
    averaged.append((first_row[name], {"file_name": name, age_column: text}))
  return averaged


def _is_number(text: str) -> bool:
  try:
    float(text)
  except ValueError:
    return False
  return True


def read_utkface(directory: str | os.PathLike, max_age: float = 120.0,
                 max_megapixels: float | None = 40.0, extra_root: str = "") -> LabelledFaces:
  """A folder (searched recursively) of UTKFace photos named AGE_GENDER_RACE_DATETIME.jpg.

  Files whose names lack a field (the release has a few) are reported by name and skipped.
  """
  directory = _existing_folder(directory)
  candidates, problems = [], []
  for position, path in enumerate(_image_listing(directory), start=1):
    name = path.relative_to(directory).as_posix()
    reason = _utkface_name_problem(path.name)
    if reason:
      problems.append(label_rows.Problem(0, name, reason))
      continue
    candidates.append(Candidate(position, name, path, path.name.split("_", 1)[0]))
  if not candidates and not problems:
    raise DataError(f"{directory} has no photos")
  good, bad = label_rows.check_candidates(candidates, origin="", file_column="file name",
                                       age_column="age", max_age=max_age,
                                       max_megapixels=max_megapixels, roots=(directory,),
                                       extra_root=extra_root)
  bad = [label_rows.Problem(0, p.file_name, p.reason) for p in bad]
  return LabelledFaces(str(directory), tuple(good), tuple(problems + bad))


def _image_listing(directory: pathlib.Path) -> list[pathlib.Path]:
  """Every non-hidden file below `directory`, in a stable order."""
  paths = []
  for root, folders, files in os.walk(directory):
    folders[:] = sorted(f for f in folders if not f.startswith("."))
    paths += [pathlib.Path(root) / f for f in sorted(files) if not f.startswith(".")]
  return paths


def _utkface_name_problem(file_name: str) -> str | None:
  match = _UTKFACE_NAME.match(file_name)
  if not match:
    return "not a UTKFace photo name (AGE_GENDER_RACE_DATETIME.jpg[.chip.jpg])"
  fields = match["stem"].split("_")
  if len(fields) != len(UTKFACE_FIELDS) or not all(fields):
    return (f"name has {len([f for f in fields if f])} of the {len(UTKFACE_FIELDS)} fields "
            f"{'_'.join(UTKFACE_FIELDS)}")
  return None
