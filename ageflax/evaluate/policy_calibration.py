"""Choosing the till's ID-check rule on held-out photos, with a finite-sample guarantee.

The guarantee: with probability at least `confidence` over the draw of the calibration
photos, the chosen rule lets at most `max_pass_rate` of protected customers (e.g. 13-17)
pass without an ID check, for photos like the calibration photos.

Why this method: for one rule fixed in advance, the number of protected calibration photos
it passes is Binomial(n, p), and the exact one-sided Clopper-Pearson upper bound on p holds
at the stated confidence for every n and p (no normal approximation, which fails exactly
where it matters: few passes, small n). Choosing among many thresholds would void it (the
best-looking threshold is optimistically biased), so each family of rules is scanned from
strict to lenient, accepting thresholds while their bound stays at or below the target and
stopping at the first that exceeds it: fixed-sequence testing, which keeps the family-wise
error at the test level whatever the number of thresholds. Across rule families (estimated
age; the dex head's P(age < legal age); both) the error is split equally (Bonferroni), so
every accepted rule is valid at once and the one asking the fewest adults can be taken.
The grids are fixed before any photo is seen; only the photos' counts choose among them.

Pure numpy and scipy: no JAX, no TensorFlow.
"""

import dataclasses
import math
import re

import numpy as np
from scipy import special

from ageflax.core.errors import ConfigError

# The candidate thresholds, fixed in advance (fixed-sequence testing needs a set order).
AGE_STEP, AGE_TOP = 0.1, 60.0
RISK_GRID = np.unique(np.concatenate([[0.0], np.geomspace(1e-4, 0.999, 400),
                                      np.linspace(0.0, 0.999, 1000)]))
KINDS = ("age", "probability", "combined")


@dataclasses.dataclass(frozen=True)
class Family:
  """Rules 'pass without ID when score >= threshold', thresholds strict to lenient.

  `rules[i]` is threshold i as (challenge age, max risk or None) of an IdCheckPolicy.
  """

  kind: str
  scores: np.ndarray
  thresholds: np.ndarray
  rules: list[tuple[float, float | None]]


@dataclasses.dataclass(frozen=True)
class Scan:
  """One family over the calibration photos: passes, bounds and cost per threshold."""

  family: Family
  protected: int
  passed: np.ndarray
  bounds: np.ndarray
  adults_asked: np.ndarray
  accepted: int  # the leading thresholds accepted by the fixed-sequence test


def parse_age_range(text: str, legal_age: float, flag: str = "--protected_ages") -> tuple:
  """(first, last) whole years from 'A-B', below the legal age; ConfigError naming `flag`."""
  match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", text or "")
  if not match:
    raise ConfigError(f"{flag}={text!r} does not parse: write a range of whole years, e.g. 13-17")
  first, last = int(match.group(1)), int(match.group(2))
  if first > last or last >= legal_age:
    raise ConfigError(f"{flag}={text}: the range must run upward and lie below the legal age "
                      f"({legal_age:g})")
  return first, last


def check_probability(value: float, flag: str) -> None:
  """ConfigError naming `flag` unless 0 < value < 1."""
  if not 0 < value < 1:
    raise ConfigError(f"{flag} must lie strictly between 0 and 1, not {value:g}")


def in_range(ages: np.ndarray, age_range: tuple[int, int]) -> np.ndarray:
  """Whether the floor of each true age lies in the whole-year range (inclusive)."""
  years = np.floor(np.asarray(ages, np.float64))
  return (years >= age_range[0]) & (years <= age_range[1])


def upper_bound(passed, total: int, confidence: float) -> np.ndarray:
  """The exact one-sided Clopper-Pearson upper bound on a binomial rate."""
  passed = np.asarray(passed, np.float64)
  bound = special.betaincinv(passed + 1, np.maximum(total - passed, 1), confidence)
  return np.where(passed >= total, 1.0, bound)


def interval(count: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
  """The exact two-sided Clopper-Pearson interval of count/total."""
  tail = (1 - confidence) / 2
  lower = 0.0 if count == 0 else float(special.betaincinv(count, total - count + 1, tail))
  upper = 1.0 if count == total else float(special.betaincinv(count + 1, total - count, 1 - tail))
  return lower, upper


def photos_needed(target: float, confidence: float) -> int:
  """The fewest protected photos for which 0 passes bounds the rate at `target`."""
  return math.ceil(math.log(1 - confidence) / math.log1p(-target))


def age_family(estimates: np.ndarray, legal_age: float) -> Family:
  """Ask when the estimate is under t, for t from AGE_TOP down to the legal age."""
  ages = np.round(np.arange(AGE_TOP, legal_age - AGE_STEP / 2, -AGE_STEP), 1)
  return Family("age", np.asarray(estimates, np.float64), ages, [(float(t), None) for t in ages])


def probability_family(estimates: np.ndarray, p_under: np.ndarray, legal_age: float) -> Family:
  """Ask when the estimate is under the legal age or P(age < legal) > r, r rising from 0."""
  scores = np.where(np.asarray(estimates) >= legal_age, -np.asarray(p_under, np.float64), -np.inf)
  return Family("probability", scores, -RISK_GRID, [(legal_age, float(r)) for r in RISK_GRID])


def combined_family(estimates: np.ndarray, p_under: np.ndarray, legal_age: float,
                    max_risk: float) -> Family:
  """Ask when the estimate is under t or P(age < legal) > `max_risk` (stated in advance)."""
  scores = np.where(np.asarray(p_under) <= max_risk, np.asarray(estimates, np.float64), -np.inf)
  ages = age_family(estimates, legal_age).thresholds
  return Family("combined", scores, ages, [(float(t), max_risk) for t in ages])


def scan(family: Family, protected: np.ndarray, adults: np.ndarray, target: float,
         confidence: float) -> Scan:
  """Counts, bounds and cost of every threshold, and how many pass the fixed sequence."""
  protected_scores = np.sort(family.scores[protected])
  adult_scores = np.sort(family.scores[adults])
  count = len(protected_scores)
  passed = count - np.searchsorted(protected_scores, family.thresholds, side="left")
  asked = np.searchsorted(adult_scores, family.thresholds, side="left") / max(len(adult_scores), 1)
  bounds = upper_bound(passed, count, confidence)
  failing = np.flatnonzero(bounds > target)
  accepted = int(failing[0]) if len(failing) else len(bounds)
  return Scan(family, count, passed, bounds, asked, accepted)


def choose(families: list[Family], protected: np.ndarray, adults: np.ndarray, target: float,
           confidence: float) -> tuple[list[Scan], tuple[Scan, int] | None]:
  """Every family's scan, and the accepted (scan, threshold index) asking the fewest adults.

  Each family is tested at 1 - (1 - confidence) / len(families) (Bonferroni), so all the
  accepted rules of all families hold at `confidence` together. None when no rule passes.
  """
  if not np.any(protected):
    raise ConfigError("the calibration photos hold no protected customers (--protected_ages)")
  each = 1 - (1 - confidence) / len(families)
  scans = [scan(family, protected, adults, target, each) for family in families]
  best = None
  for one in scans:
    if one.accepted:
      index = one.accepted - 1  # the most lenient accepted threshold asks the fewest adults
      if best is None or one.adults_asked[index] < best[0].adults_asked[best[1]]:
        best = (one, index)
  return scans, best


def shortfall(scans: list[Scan], target: float, confidence: float) -> str:
  """One line: why no rule meets the target, the strongest guarantee, the photos needed."""
  strongest = min(float(one.bounds[0]) for one in scans)
  each = 1 - (1 - confidence) / len(scans)
  return (f"{scans[0].protected:,} protected photos cannot support at most {100 * target:g}% "
          f"passing at {100 * confidence:g}% confidence: the strongest guarantee they support is "
          f"{100 * strongest:.2f}% (even the strictest rule's bound); 0 passes would need "
          f"{photos_needed(target, each):,} protected photos; rerun with more photos "
          f"(--data_dir) or a target of at least {100 * strongest:.2f}% (--max_pass_rate)")


def realized_rates(asked: np.ndarray, ages: np.ndarray, legal_age: float,
                   protected_ages: tuple[int, int], confidence: float = 0.95) -> dict:
  """Who a rule passes and asks on labelled photos, each share with its exact interval."""
  ages = np.asarray(ages, np.float64)
  asked = np.asarray(asked, bool)
  years = np.floor(ages)
  groups = {"protected_passed": (~asked, in_range(ages, protected_ages)),
            "under_age_passed": (~asked, ages < legal_age),
            "adults_asked": (asked, ages >= legal_age),
            "young_adults_asked": (asked, (years >= legal_age) & (years <= 24)),
            "adults_25_plus_asked": (asked, years >= 25)}
  return {name: _share(hits, among, confidence) for name, (hits, among) in groups.items()}


def _share(hits: np.ndarray, among: np.ndarray, confidence: float) -> dict:
  count, total = int(np.count_nonzero(hits & among)), int(np.count_nonzero(among))
  if not total:
    return {"count": 0, "of": 0, "share": None, "interval": None}
  return {"count": count, "of": total, "share": count / total,
          "interval": list(interval(count, total, confidence))}
