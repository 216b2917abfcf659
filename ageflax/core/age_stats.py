"""The one computation of a set of ages' statistics: count, min, mean, median, max, std.

The data overview reports them, prepared records keep them per split, and a run's
data_summary.json keeps the training split's mean (the head's starting bias) and median
(the predict-the-median baseline of scripts/eval.py).
"""

from collections.abc import Sequence

import numpy as np

STATISTICS = ("count", "min", "mean", "median", "max", "std")


def age_statistics(ages: Sequence[float] | np.ndarray) -> dict[str, int | float | None]:
  """Count, min, mean, median, max and the sample standard deviation (as pandas reports).

  Computed in the dtype of `ages` (float32 ages, as the image store holds them, give the
  store's mean to the last bit). Without ages every figure but the count is None.
  """
  values = np.asarray(ages)
  if not len(values):
    return dict.fromkeys(STATISTICS, None) | {"count": 0}
  return {"count": len(values), "min": float(values.min()), "mean": float(values.mean()),
          "median": float(np.median(values)), "max": float(values.max()),
          "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0}


def training_summary(train_statistics: dict) -> dict[str, float]:
  """The training ages' figures a run's data_summary.json keeps (NaN without training ages)."""
  return {f"train_{name}_age": _or_nan(train_statistics.get(name)) for name in ("mean", "median")}


def _or_nan(value: float | None) -> float:
  return float("nan") if value is None else value
