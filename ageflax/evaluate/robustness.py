"""The robustness report of `scripts/eval.py --robustness`: one row per till-camera shift.

Each row is one evaluation of the same split by the same run, of the clean photos or of
shifted copies (`ageflax.data.till_shifts`): the photos scored, those in which the face
normaliser found no face, MAE and bias overall and on 13-17-year-olds (the ID check's
hardest group), and the MAE's change from the clean row. The worst shifted row is named
and held against the target: within `TARGET_MAE_CHANGE` years of the clean MAE.
"""

import csv
from collections.abc import Sequence

import numpy as np

from ageflax.core import atomic_files
from ageflax.data import image_store, pipeline
from ageflax.evaluate import evaluator

CLEAN = "clean"
TARGET_MAE_CHANGE = 1.0  # The worst shifted row's MAE is to stay within this of the clean.
_COLUMNS = ("shift", "photos", "photos_without_face", "mae", "mean_error", "teen_photos",
            "teen_mae", "teen_mean_error", "mae_change")


def no_face_count(data: pipeline.PreparedData) -> int:
  """Photos of the prepared split in which the face normaliser found no usable face."""
  return sum(problem.reason == image_store.NO_FACE for problem in data.problems)


def row(name: str, ages: np.ndarray, predictions: np.ndarray, photos_without_face: int) -> dict:
  """One row's figures: photos, no-face photos, MAE and bias, and both on 13-17-year-olds
  (None when there are none); `mae_change` is filled by `summary`."""
  ages = np.asarray(ages, np.float64)
  errors = np.asarray(predictions, np.float64) - ages
  years = np.floor(ages)
  teen_errors = errors[(years >= evaluator.TEEN_FIRST_AGE) & (years <= evaluator.TEEN_LAST_AGE)]
  has_teens = bool(len(teen_errors))
  return {"shift": name, "photos": len(errors), "photos_without_face": int(photos_without_face),
          "mae": float(np.mean(np.abs(errors))), "mean_error": float(np.mean(errors)),
          "teen_photos": len(teen_errors),
          "teen_mae": float(np.mean(np.abs(teen_errors))) if has_teens else None,
          "teen_mean_error": float(np.mean(teen_errors)) if has_teens else None,
          "mae_change": None}


def summary(rows: Sequence[dict]) -> dict:
  """The rows (the clean one first) with each shifted row's MAE change from the clean, the
  worst shifted row, and whether it meets the target."""
  clean_mae = rows[0]["mae"]
  rows = [dict(entry, mae_change=None if entry["shift"] == CLEAN else entry["mae"] - clean_mae)
          for entry in rows]
  shifted = [entry for entry in rows if entry["mae_change"] is not None]
  worst = max(shifted, key=lambda entry: entry["mae_change"]) if shifted else None
  return {"rows": rows, "worst": worst and worst["shift"],
          "worst_mae_change": worst and worst["mae_change"],
          "target_mae_change": TARGET_MAE_CHANGE,
          "meets_target": None if worst is None else worst["mae_change"] <= TARGET_MAE_CHANGE}


def format_table(report: dict, split: str) -> str:
  """The rows as a table, then the worst row against the target."""
  lines = [f"robustness on the {split} photos (each shift applied to the photo before framing "
           "and resizing):",
           f"  {'shift':<14}{'photos':>8}{'no face':>9}{'MAE':>7}{'bias':>8}"
           f"{'13-17 MAE':>11}{'13-17 bias':>12}{'vs clean':>10}"]
  for entry in report["rows"]:
    teens = (f"{'-':>11}{'-':>12}" if entry["teen_mae"] is None
             else f"{entry['teen_mae']:>11.2f}{entry['teen_mean_error']:>+12.2f}")
    change = "-" if entry["mae_change"] is None else f"{entry['mae_change']:+.2f}"
    lines.append(f"  {entry['shift']:<14}{entry['photos']:>8,}{entry['photos_without_face']:>9,}"
                 f"{entry['mae']:>7.2f}{entry['mean_error']:>+8.2f}{teens}{change:>10}")
  if report["worst"] is not None:
    verdict = "met" if report["meets_target"] else "NOT met"
    lines.append(f"worst shift: {report['worst']}, MAE {report['worst_mae_change']:+.2f} years "
                 f"from clean (target within {report['target_mae_change']:g}: {verdict})")
  return "\n".join(lines)


def write_csv(report: dict, path: str) -> None:
  """robustness.csv: one line per row, the columns of `row` (empty where None)."""
  with atomic_files.open_atomically(path, newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(_COLUMNS)
    for entry in report["rows"]:
      writer.writerow(["" if entry[column] is None else
                       f"{entry[column]:.4f}" if isinstance(entry[column], float) else
                       entry[column] for column in _COLUMNS])
