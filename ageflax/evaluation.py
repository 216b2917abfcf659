"""Exact evaluation over padded, masked batches: error sums, MAE/RMSE/bias, predictions.

The training loop's validation and `scripts/eval.py` share `evaluate`. It never imports
TensorFlow: batches arrive as numpy dicts from any iterable.
"""

import csv
import dataclasses
from collections.abc import Callable, Iterable, Sequence

import jax
import numpy as np

from ageflax import sharding


@dataclasses.dataclass(frozen=True)
class EvalResult:
  """Metrics over every evaluated photo, and each photo's prediction by store index."""

  metrics: dict[str, float]
  predictions: dict[int, float]


def metrics_from_sums(sums: dict[str, float]) -> dict[str, float]:
  """MAE, RMSE, mean signed error (bias) and count from accumulated error sums."""
  count = sums["count"]
  if count == 0:
    raise ValueError("no photos were evaluated")
  return {
      "mae": sums["sum_abs_error"] / count,
      "rmse": float(np.sqrt(sums["sum_squared_error"] / count)),
      "mean_error": sums["sum_error"] / count,
      "count": int(count),
  }


def evaluate(
    eval_step: Callable,
    state,
    batches: Iterable[dict[str, np.ndarray]],
    mesh: jax.sharding.Mesh,
    global_batch_size: int,
) -> EvalResult:
  """Runs `eval_step` over every batch and accumulates the sums in float64 on the host.

  Args:
    eval_step: the jitted `steps.eval_step`.
    state: the train state to evaluate.
    batches: this process's rows of each global batch ('image', 'age', 'mask', 'index').
    mesh: the device mesh.
    global_batch_size: rows in each global batch.

  Returns:
    Metrics and the prediction of every photo (of all processes) by image-store index.
  """
  totals = {"sum_abs_error": 0.0, "sum_squared_error": 0.0, "sum_error": 0.0, "count": 0.0}
  predictions = {}
  for batch in batches:
    sums, rows = eval_step(state, sharding.global_batch(batch, mesh, global_batch_size))
    sums, rows = jax.device_get((sums, rows))
    for name, value in sums.items():
      totals[name] += float(value)
    for store_index, prediction in zip(rows["index"], rows["prediction"], strict=True):
      if store_index >= 0:
        predictions[int(store_index)] = float(prediction)
  return EvalResult(metrics_from_sums(totals), predictions)


def median_baseline_mae(train_median: float, eval_ages: np.ndarray) -> float:
  """MAE of always predicting the training set's median age."""
  return float(np.mean(np.abs(eval_ages - train_median)))


def write_predictions(
    path: str, file_names: Sequence[str], ages: np.ndarray, predictions: Sequence[float]
) -> None:
  """Writes predictions.csv: file_name, real_age, predicted_age (one decimal more than ages)."""
  with open(path, "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(["file_name", "real_age", "predicted_age"])
    for name, age, prediction in zip(file_names, ages, predictions, strict=True):
      writer.writerow([name, f"{age:g}", f"{prediction:.2f}"])
