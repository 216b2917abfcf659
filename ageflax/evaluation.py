"""Exact evaluation over padded, masked batches, and the report a store reads.

The training loop's validation and `scripts/eval.py` share `evaluate` (with optional flip
test-time augmentation). `detailed_metrics` adds what the per-photo predictions tell:
CS@5, error per age band and the alcohol check; `format_report` prints them. It never
imports TensorFlow: batches arrive as numpy dicts from any iterable.
"""

import csv
import dataclasses
from collections.abc import Callable, Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ageflax import age_bands, sharding

CS_YEARS = 5  # CS@5: the share of photos estimated within this many years.
# The published bar for commercial age estimation: 99.9% of 13-17-year-olds are estimated
# under the challenge age of 25.
TEEN_FIRST_AGE, TEEN_LAST_AGE = 13, 17
TEEN_BAR = 0.999


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
    flip_tta: bool = False,
) -> EvalResult:
  """Runs `eval_step` over every batch and accumulates the sums in float64 on the host.

  Args:
    eval_step: the jitted `steps.eval_step`.
    state: the train state to evaluate.
    batches: this process's rows of each global batch ('image', 'age', 'mask', 'index').
    mesh: the device mesh.
    global_batch_size: rows in each global batch.
    flip_tta: predict each photo as the mean of the predictions on it and on its mirror image.

  Returns:
    Metrics and the prediction of every photo (of all processes) by image-store index.
  """
  totals = {"sum_abs_error": 0.0, "sum_squared_error": 0.0, "sum_error": 0.0, "count": 0.0}
  predictions = {}
  for batch in batches:
    sums, rows = _evaluate_batch(eval_step, state, batch, mesh, global_batch_size, flip_tta)
    sums, rows = jax.device_get((sums, rows))
    for name, value in sums.items():
      totals[name] += float(value)
    for store_index, prediction in zip(rows["index"], rows["prediction"], strict=True):
      if store_index >= 0:
        predictions[int(store_index)] = float(prediction)
  return EvalResult(metrics_from_sums(totals), predictions)


def _evaluate_batch(eval_step, state, batch, mesh, global_batch_size, flip_tta):
  """`eval_step` on one batch; with `flip_tta` also on its mirror image, predictions averaged."""
  global_batch = sharding.global_batch(batch, mesh, global_batch_size)
  sums, rows = eval_step(state, global_batch)
  if not flip_tta:
    return sums, rows
  mirrored = sharding.global_batch(mirror_images(batch), mesh, global_batch_size)
  _, mirrored_rows = eval_step(state, mirrored)
  sums, prediction = _averaged_error_sums(rows["prediction"], mirrored_rows["prediction"],
                                          global_batch["age"], global_batch["mask"])
  return sums, dict(rows, prediction=prediction)


def mirror_images(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """The batch with every image flipped left to right (images are [N, H, W, C])."""
  return dict(batch, image=np.ascontiguousarray(batch["image"][:, :, ::-1]))


@jax.jit
def _averaged_error_sums(prediction, mirrored_prediction, ages, mask):
  """The mean of two predictions per row, and `steps.eval_step`'s masked error sums of it."""
  prediction = (prediction + mirrored_prediction) / 2
  errors = (prediction - ages) * mask
  sums = {
      "sum_abs_error": jnp.sum(jnp.abs(errors)),
      "sum_squared_error": jnp.sum(jnp.square(errors)),
      "sum_error": jnp.sum(errors),
      "count": jnp.sum(mask),
  }
  return sums, prediction


def detailed_metrics(
    ages: np.ndarray, predictions: np.ndarray, legal_age: float, challenge_age: float
) -> dict:
  """CS@5, the error in each age band and the alcohol check, from per-photo predictions.

  Args:
    ages: true ages.
    predictions: estimated ages, in the order of `ages`.
    legal_age: the youngest age that may buy alcohol.
    challenge_age: photos estimated younger than this are asked for ID (Challenge 25).

  Returns:
    {'cs5', 'age_bands', 'alcohol_check'}: a share, one entry per band (mae and mean_error
    None where the band is empty), and the alcohol check's shares with their counts.
  """
  ages = np.asarray(ages, np.float64)
  predictions = np.asarray(predictions, np.float64)
  if not len(ages):
    raise ValueError("no photos were evaluated")
  errors = predictions - ages
  return {
      f"cs{CS_YEARS}": float(np.mean(np.abs(errors) <= CS_YEARS)),
      "age_bands": band_errors(ages, errors),
      "alcohol_check": alcohol_check(ages, predictions, legal_age, challenge_age),
  }


def band_errors(ages: np.ndarray, errors: np.ndarray) -> list[dict]:
  """Photos, MAE and mean signed error per band of the true age (None for an empty band)."""
  bands = age_bands.band_index(ages)
  result = []
  for index, label in enumerate(age_bands.LABELS):
    in_band = errors[bands == index]
    empty = not len(in_band)
    result.append({"band": label, "count": len(in_band),
                   "mae": None if empty else float(np.mean(np.abs(in_band))),
                   "mean_error": None if empty else float(np.mean(in_band))})
  return result


def alcohol_check(
    ages: np.ndarray, predictions: np.ndarray, legal_age: float, challenge_age: float
) -> dict:
  """Who would be sold alcohol without an ID check (estimated at least `challenge_age`).

  Returns:
    The two ages and three {'count', 'of', 'share'} entries: under-age photos that would
    pass, adults of the challenge age or older who would be asked needlessly, and
    13-17-year-olds estimated under the challenge age (against the published bar).
  """
  passes = predictions >= challenge_age
  teens = (np.floor(ages) >= TEEN_FIRST_AGE) & (np.floor(ages) <= TEEN_LAST_AGE)
  return {
      "legal_age": legal_age,
      "challenge_age": challenge_age,
      "under_age_passed": _share_of(passes, ages < legal_age),
      "adults_asked": _share_of(~passes, ages >= challenge_age),
      "teens_under_challenge": dict(_share_of(~passes, teens), bar=TEEN_BAR),
  }


def _share_of(hits: np.ndarray, among: np.ndarray) -> dict:
  count, total = int(np.count_nonzero(hits & among)), int(np.count_nonzero(among))
  return {"count": count, "of": total, "share": count / total if total else None}


def format_report(metrics: dict) -> str:
  """The report's lines after the MAE and baseline lines: errors, bands, alcohol check."""
  lines = [f"RMSE {metrics['rmse']:.2f} | CS@{CS_YEARS} {_percent(metrics[f'cs{CS_YEARS}'])} "
           f"| mean signed error {metrics['mean_error']:+.2f} years | flip TTA "
           f"{'on' if metrics.get('flip_tta') else 'off'}",
           "error by true age band:",
           f"  {'band':<8}{'photos':>8}{'MAE':>8}{'mean signed error':>20}"]
  for band in metrics["age_bands"]:
    errors = (f"{'-':>8}{'-':>20}" if band["mae"] is None
              else f"{band['mae']:>8.2f}{band['mean_error']:>+20.2f}")
    lines.append(f"  {band['band']:<8}{band['count']:>8,}{errors}")
  check = metrics["alcohol_check"]
  legal, challenge = f"{check['legal_age']:g}", f"{check['challenge_age']:g}"
  lines += [f"alcohol check (legal age {legal}; estimated under {challenge} is asked for ID):",
            _share_line(f"under {legal}, estimated {challenge}+: sold without ID",
                        check["under_age_passed"]),
            _share_line(f"{challenge}+, estimated under {challenge}: asked needlessly",
                        check["adults_asked"]),
            _share_line(f"{TEEN_FIRST_AGE}-{TEEN_LAST_AGE}, estimated under {challenge} "
                        f"(bar: {_percent(TEEN_BAR)})", check["teens_under_challenge"])]
  return "\n".join(lines)


def _share_line(label: str, entry: dict) -> str:
  share = "-" if entry["share"] is None else _percent(entry["share"], digits=2)
  return f"  {label:<44}{entry['count']:>7,} of {entry['of']:>7,}{share:>9}"


def _percent(share: float, digits: int = 1) -> str:
  return f"{100 * share:.{digits}f}%"


def median_baseline_mae(train_median: float, eval_ages: np.ndarray) -> float:
  """MAE of always predicting the training set's median age."""
  return float(np.mean(np.abs(eval_ages - train_median)))


def write_predictions(
    path: str, file_names: Sequence[str], ages: np.ndarray, predictions: Sequence[float]
) -> None:
  """Writes predictions.csv: file_name, real_age, predicted_age, age_band (of the real age)."""
  bands = age_bands.band_index(ages)
  with open(path, "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(["file_name", "real_age", "predicted_age", "age_band"])
    for name, age, prediction, band in zip(file_names, ages, predictions, bands, strict=True):
      writer.writerow([name, f"{age:g}", f"{prediction:.2f}", age_bands.LABELS[band]])
