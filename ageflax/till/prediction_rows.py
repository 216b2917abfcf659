"""The rows of a prediction run, one per photo (or face), and their table, CSV and JSON.

Each row has the estimate, its age band and the cashier's answer under the ID-check
policy. A photo without an estimate (unreadable, or no face found) says why, and its
answer is `yes`: with no estimate the cashier asks. So is the answer for an estimate the
till does not trust (`till.trust`): the row keeps the estimate and says why it is not trusted.
"""

import csv
import dataclasses
import json
import os
from collections.abc import Sequence

import numpy as np

from ageflax.core import age_bands, atomic_files
from ageflax.core.errors import ConfigError
from ageflax.till.id_policy import IdCheckPolicy
from ageflax.till.photos import Photo
from ageflax.till.predictor import Predictions
from ageflax.till.trust import TrustRules

OUTPUT_FORMATS = (".csv", ".json")


@dataclasses.dataclass(frozen=True)
class Row:
  """One photo's (or face's) answer; `age` is None when `note` says why there is none."""

  file: str
  id_check: bool
  age: float | None = None
  band: str = ""
  face: int | None = None
  box: str = ""
  spread: float | None = None
  p_under_legal: float | None = None
  note: str = ""

  def as_dict(self) -> dict:
    return {
        "file": self.file, "face": self.face, "box": self.box or None,
        "age": None if self.age is None else round(self.age, 2), "band": self.band or None,
        "id_check": "yes" if self.id_check else "no",
        "age_spread": None if self.spread is None else round(self.spread, 2),
        "p_under_legal_age": None if self.p_under_legal is None else round(self.p_under_legal, 4),
        "note": self.note or None,
    }


def rows_for(photos: Sequence[Photo], predictions: Predictions | None,
             policy: IdCheckPolicy, trust: TrustRules) -> list[Row]:
  """The rows of `photos`, whose images (in order) `predictions` estimated; an estimate
  `trust` does not trust gets an ID check and the reason."""
  rows, estimate = [], 0
  spreads = predictions.spreads() if predictions is not None else None
  under = predictions.probabilities_under(policy.legal_age) if predictions is not None else None
  for photo in photos:
    if photo.image is None:
      rows.append(Row(photo.path, id_check=True, note=photo.problem or ""))
      continue
    age = float(predictions.ages[estimate])
    p_under = None if under is None else float(under[estimate])
    spread = None if spreads is None else float(spreads[estimate])
    distrust = trust.distrust(photo, spread)
    rows.append(Row(photo.path, distrust is not None or policy.needs_id(age, p_under), age,
                    age_bands.band_of(age), photo.face, str(photo.box) if photo.box else "",
                    spread, p_under, distrust or ""))
    estimate += 1
  return rows


def format_table(rows: Sequence[Row], policy: IdCheckPolicy) -> str:
  """An aligned text table: file, [face], age (one decimal), band, ID check, [dex], note."""
  with_faces = any(r.face is not None for r in rows)
  with_distribution = any(r.p_under_legal is not None for r in rows)
  header = ["file", *(["face"] if with_faces else []), "age", "band", "ID check",
            *(["spread", f"P(<{policy.legal_age:g})"] if with_distribution else []), "note"]
  lines = [header]
  for r in rows:
    lines.append([
        r.file, *([str(r.face or "")] if with_faces else []),
        "" if r.age is None else f"{r.age:.1f}", r.band, "yes" if r.id_check else "no",
        *([_optional(r.spread, ".1f"), _optional(r.p_under_legal, ".3f")]
          if with_distribution else []),
        r.note])
  widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
  return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)
                             ).rstrip() for line in lines)


def _optional(value: float | None, spec: str) -> str:
  return "" if value is None else format(value, spec)


def check_output_path(path: str) -> None:
  """Raises ConfigError unless `path` ends in .csv or .json and a file can be written there
  (checked before any work, so no estimate is computed for nothing)."""
  if os.path.splitext(path)[1].lower() not in OUTPUT_FORMATS:
    raise ConfigError(f"--output={path}: name a .csv or .json file")
  atomic_files.check_writable(path, "--output")


def write_rows(path: str, rows: Sequence[Row], about: dict) -> None:
  """Writes the rows as CSV (one line per row) or JSON ({'about': ..., 'rows': [...]}), whole
  or not at all."""
  records = [r.as_dict() for r in rows]
  if path.lower().endswith(".json"):
    atomic_files.write_text_atomically(path, json.dumps({"about": about, "rows": records},
                                                        indent=2))
    return
  with atomic_files.open_atomically(path, newline="", encoding="utf-8") as f:
    writer = csv.DictWriter(f, fieldnames=list(records[0]) if records else ["file"])
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in records)


def summary(rows: Sequence[Row]) -> dict:
  """Counts for the closing line: photos, estimates, ID checks and rows without an estimate."""
  estimated = [r for r in rows if r.age is not None]
  return {"rows": len(rows), "estimates": len(estimated),
          "id_checks": sum(r.id_check for r in rows),
          "without_estimate": len(rows) - len(estimated),
          "mean_age": float(np.mean([r.age for r in estimated])) if estimated else None}
