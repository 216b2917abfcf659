"""The per-group breakdown: whom the model and the ID check fail, group by group.

Where the data carries group fields (UTKFace names' gender and race, a labels CSV's
`data.group_columns`), each value of each field gets its photo count, MAE and mean signed
error (bias, estimate minus true age) with a 95% Student-t interval, and, per ID-check
rule, the share of protected customers it lets pass without ID and of adults it asks, each
with the exact Clopper-Pearson interval of `policy_calibration.realized_rates`. A group
with fewer than `min_photos` photos, or fewer protected customers for its pass rate, is
marked too small to judge instead of being ranked by a figure its counts cannot support.
scripts/eval.py and scripts/calibrate_policy.py report it. Pure numpy and scipy.
"""

import csv
import os
from collections.abc import Sequence

import numpy as np
from scipy import special

from ageflax.core import atomic_files
from ageflax.data.label_rows import UNKNOWN_GROUP
from ageflax.evaluate import policy_calibration

CONFIDENCE = 0.95
_RATES = ("protected_passed", "adults_asked")
CSV_COLUMNS = ("field", "value", "photos", "mae", "bias", "bias_low", "bias_high", "policy",
               "protected_passed", "protected", "pass_rate", "pass_low", "pass_high",
               "adults_asked", "adults", "asked_rate", "asked_low", "asked_high", "warning")


def values_by_field(photo_groups: Sequence[tuple[tuple[str, str], ...]]) -> dict[str, np.ndarray]:
  """Each group field's value for every photo, from the photos' (field, value) pairs.

  Fields come in the order first seen; a photo that lacks a field has the value 'unknown'.
  """
  fields = list(dict.fromkeys(field for pairs in photo_groups for field, _ in pairs))
  values = {field: np.full(len(photo_groups), UNKNOWN_GROUP, dtype=object) for field in fields}
  for photo, pairs in enumerate(photo_groups):
    for field, value in pairs:
      values[field][photo] = value
  return values


def mean_interval(errors: np.ndarray, confidence: float = CONFIDENCE) -> list[float] | None:
  """The Student-t interval of the mean of `errors` (None for fewer than 2 values)."""
  errors = np.asarray(errors, np.float64)
  if len(errors) < 2:
    return None
  half = special.stdtrit(len(errors) - 1, (1 + confidence) / 2) * errors.std(ddof=1) / np.sqrt(
      len(errors))
  return [float(errors.mean() - half), float(errors.mean() + half)]


def breakdown(groups: dict[str, np.ndarray], ages: np.ndarray, estimates: np.ndarray,
              policies: Sequence[tuple[str, np.ndarray]], legal_age: float,
              protected_ages: tuple[int, int], min_photos: int) -> list[dict]:
  """One entry per (field, value): errors, each policy's rates, and what is too small.

  Args:
    groups: each field's value per photo (`values_by_field`).
    ages: the true ages; `estimates` the model's, in the same order.
    policies: (description, whom it asks) of each ID-check rule, in the photos' order.
    legal_age: the youngest age that may buy; adults are at least this old.
    protected_ages: the whole years whose pass rate is reported, e.g. (13, 17).
    min_photos: fewer photos (or protected customers) than this are too few to judge.
  """
  ages = np.asarray(ages, np.float64)
  errors = np.asarray(estimates, np.float64) - ages
  entries = []
  for field, values in groups.items():
    for value in _ordered(values):
      members = values == value
      entry = _errors_entry(field, value, errors[members], min_photos)
      entry["policies"] = [
          _policy_entry(name, np.asarray(asked, bool)[members], ages[members], legal_age,
                        protected_ages, min_photos) for name, asked in policies]
      entries.append(entry)
  return entries


def _ordered(values: np.ndarray) -> list[str]:
  """The field's values, sorted, with 'unknown' last."""
  distinct = set(values.tolist())
  return sorted(distinct - {UNKNOWN_GROUP}) + [UNKNOWN_GROUP] * (UNKNOWN_GROUP in distinct)


def _errors_entry(field: str, value: str, errors: np.ndarray, min_photos: int) -> dict:
  warning = (f"too small to judge: {len(errors)} photos, fewer than {min_photos}"
             if len(errors) < min_photos else None)
  return {"field": field, "value": value, "photos": len(errors),
          "mae": float(np.mean(np.abs(errors))), "bias": float(np.mean(errors)),
          "bias_interval": mean_interval(errors), "too_small": warning is not None,
          "warning": warning}


def _policy_entry(name: str, asked: np.ndarray, ages: np.ndarray, legal_age: float,
                  protected_ages: tuple[int, int], min_photos: int) -> dict:
  rates = policy_calibration.realized_rates(asked, ages, legal_age, protected_ages, CONFIDENCE)
  protected = rates["protected_passed"]["of"]
  warning = (f"pass rate too small to judge: {protected} aged {protected_ages[0]}-"
             f"{protected_ages[1]}, fewer than {min_photos}" if protected < min_photos else None)
  return {"policy": name, **{key: rates[key] for key in _RATES},
          "too_few_protected": warning is not None, "warning": warning}


def format_breakdown(entries: Sequence[dict], protected_ages: tuple[int, int]) -> str:
  """The console tables: errors per group, then each policy's rates per group."""
  protected = f"{protected_ages[0]}-{protected_ages[1]}"
  lines = ["by group (bias: mean signed error with its 95% t interval; rates with exact "
           "95% Clopper-Pearson intervals):",
           f"  {'group':<24}{'photos':>8}{'MAE':>8}{'bias':>8}  95% CI"]
  for entry in entries:
    head = f"  {_name(entry):<24}{entry['photos']:>8,}"
    if entry["too_small"]:
      lines.append(f"{head}  {entry['warning']}")
      continue
    low, high = entry["bias_interval"]
    lines.append(f"{head}{entry['mae']:>8.2f}{entry['bias']:>+8.2f}  {low:+.2f} to {high:+.2f}")
  for index, first in enumerate(entries[0]["policies"] if entries else ()):
    lines.append(f"ID policy by group: {first['policy']}")
    lines.append(f"  {'group':<24}{protected + ' passed without ID':<42}adults asked")
    for entry in entries:
      rates = entry["policies"][index]
      share = rates["protected_passed"]
      passed = (f"{share['count']:,}/{share['of']:,} too few to judge"
                if rates["too_few_protected"] else _rate(share))
      lines.append(f"  {_name(entry):<24}{passed:<42}{_rate(rates['adults_asked'])}")
  return "\n".join(lines)


def _name(entry: dict) -> str:
  return f"{entry['field']}={entry['value']}"


def _rate(share: dict) -> str:
  if share["share"] is None:
    return "- (none)"
  low, high = share["interval"]
  return (f"{share['count']:,}/{share['of']:,} {100 * share['share']:.2f}% "
          f"({100 * low:.2f}-{100 * high:.2f}%)")


def write_csv(entries: Sequence[dict], path: str | os.PathLike) -> None:
  """One row per (field, value, policy) with every figure of the breakdown (CSV_COLUMNS)."""
  with atomic_files.open_atomically(path, newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
      bias_low, bias_high = entry["bias_interval"] or ("", "")
      errors = [entry["field"], entry["value"], entry["photos"], entry["mae"], entry["bias"],
                bias_low, bias_high]
      for rates in entry["policies"] or [None]:
        row = errors + (_rate_cells(rates) if rates else [""] * 11)
        warnings = [w for w in (entry["warning"], rates and rates["warning"]) if w]
        writer.writerow([*row, "; ".join(warnings)])


def _rate_cells(rates: dict) -> list:
  cells = [rates["policy"]]
  for key in _RATES:
    share = rates[key]
    low, high = share["interval"] or ("", "")
    cells += [share["count"], share["of"], "" if share["share"] is None else share["share"],
              low, high]
  return cells
