"""Exact evaluation over padded, masked batches, and the report a store reads.

The training loop's validation and `scripts/eval.py` share one `Evaluator`, built around
`ageflax.model.predict`'s prediction function (with optional flip test-time augmentation).
`detailed_metrics` adds what the per-photo predictions tell: CS@5, how well they order the
photos, error per age band and the alcohol check; `format_report` prints them. It never
imports TensorFlow: batches arrive as numpy dicts from any iterable.
"""

import csv
import dataclasses
import functools
from collections.abc import Callable, Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ageflax.core import age_bands, atomic_files, sharding
from ageflax.model import dex
from ageflax.model.predict import PredictFn

CS_YEARS = 5  # CS@5: the share of photos estimated within this many years.
# The published bar for commercial age estimation: 99.9% of 13-17-year-olds are estimated
# under the challenge age of 25.
TEEN_FIRST_AGE, TEEN_LAST_AGE = 13, 17
TEEN_BAR = 0.999


@dataclasses.dataclass(frozen=True)
class EvalResult:
  """Metrics over every evaluated photo, and each photo's prediction by store index; with
  an evaluator given `under_age` and a dex-head model, each photo's P(age < under_age) too."""

  metrics: dict[str, float]
  predictions: dict[int, float]
  p_under: dict[int, float] | None = None


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


class Evaluator:
  """Exact evaluation of a predict function over padded, masked global batches.

  As big_vision's evaluators: built around a predict function (`ageflax.model.predict`;
  flip test-time augmentation is a variant of it), run on any variables. Every host feeds
  its rows of the same global batches; padding rows (mask 0, index -1) add nothing to the
  sums, which accumulate in float64 on the host, so every photo counts exactly once.
  """

  def __init__(self, predict_fn: PredictFn, mesh: jax.sharding.Mesh, global_batch_size: int,
               under_age: float | None = None):
    """`predict_fn(variables, images)` -> {'age': [B], ...}; batches of `global_batch_size`;
    with `under_age`, a dex head's P(age < under_age) of each photo is kept too."""
    self.mesh = mesh
    self.global_batch_size = global_batch_size
    replicated = sharding.replicated(mesh)
    # Predictions come back whole on every process, each host's rows and the others'.
    self._batch_step = jax.jit(functools.partial(_sums_and_rows, predict_fn=predict_fn,
                                                 under_age=under_age),
                               in_shardings=(replicated, sharding.batch_sharding(mesh)),
                               out_shardings=(replicated, replicated))

  def evaluate_batch(self, variables, batch: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """Masked error sums of one global batch, and each row's (index, prediction).

    Args:
      variables: what the predict function takes, e.g. {'params', 'batch_stats'}.
      batch: this process's rows of the global batch ('image', 'age', 'mask', 'index').
    """
    global_batch = sharding.global_batch(batch, self.mesh, self.global_batch_size)
    return jax.device_get(self._batch_step(variables, global_batch))

  def run(self, variables, batches: Iterable[dict[str, np.ndarray]],
          on_progress: Callable[[int], None] | None = None) -> EvalResult:
    """Metrics over every batch, and the prediction of every photo by image-store index;
    after each batch, `on_progress` (if given) gets the number of photos evaluated so far."""
    totals = {"sum_abs_error": 0.0, "sum_squared_error": 0.0, "sum_error": 0.0, "count": 0.0}
    predictions, p_under = {}, {}
    for batch in batches:
      sums, rows = self.evaluate_batch(variables, batch)
      for name, value in sums.items():
        totals[name] += float(value)
      for row, store_index in enumerate(rows["index"]):
        if store_index >= 0:
          predictions[int(store_index)] = float(rows["prediction"][row])
          if "p_under" in rows:
            p_under[int(store_index)] = float(rows["p_under"][row])
      if on_progress is not None:
        on_progress(len(predictions))
    return EvalResult(metrics_from_sums(totals), predictions, p_under or None)


def _sums_and_rows(variables, batch: dict[str, jax.Array], *, predict_fn: PredictFn,
                   under_age: float | None):
  outputs = predict_fn(variables, batch["image"])
  sums = masked_error_sums(outputs["age"], batch["age"], batch["mask"])
  rows = {"index": batch["index"], "prediction": outputs["age"]}
  if under_age is not None and "distribution" in outputs:
    rows["p_under"] = dex.probability_under(outputs["distribution"], under_age)
  return sums, rows


def masked_error_sums(predictions: jax.Array, ages: jax.Array,
                      mask: jax.Array) -> dict[str, jax.Array]:
  """Sums of the absolute, squared and signed errors and the count, over rows with mask 1."""
  errors = (predictions - ages) * mask
  return {
      "sum_abs_error": jnp.sum(jnp.abs(errors)),
      "sum_squared_error": jnp.sum(jnp.square(errors)),
      "sum_error": jnp.sum(errors),
      "count": jnp.sum(mask),
  }


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
    {'cs5', 'ranking', 'age_bands', 'alcohol_check'}: a share, `ranking`'s figures, one
    entry per band (mae and mean_error None where the band is empty), and the alcohol
    check's shares with their counts.
  """
  ages = np.asarray(ages, np.float64)
  predictions = np.asarray(predictions, np.float64)
  if not len(ages):
    raise ValueError("no photos were evaluated")
  errors = predictions - ages
  return {
      f"cs{CS_YEARS}": float(np.mean(np.abs(errors) <= CS_YEARS)),
      "ranking": ranking(ages, predictions),
      "age_bands": band_errors(ages, errors),
      "alcohol_check": alcohol_check(ages, predictions, legal_age, challenge_age),
  }


def ranking(ages: np.ndarray, predictions: np.ndarray) -> dict:
  """How much of the error a recalibration of the estimates could remove, and how much
  needs a model that orders the photos better.

  Returns:
    {'pearson_r', 'refit_mae'}: the correlation of estimates and true ages, and the MAE
    after the least-squares affine map of the estimates onto these same photos' ages (an
    in-sample figure, never a model: with r low, no monotone correction of the estimates
    comes near the MAE of a split the model ranks well). Both None when the ages or the
    estimates are all equal.
  """
  if np.std(ages) == 0 or np.std(predictions) == 0:
    return {"pearson_r": None, "refit_mae": None}
  slope, intercept = np.polyfit(predictions, ages, 1)
  return {"pearson_r": float(np.corrcoef(predictions, ages)[0, 1]),
          "refit_mae": float(np.mean(np.abs(slope * predictions + intercept - ages)))}


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
           + _ranking_text(metrics.get("ranking"))
           + f"| mean signed error {metrics['mean_error']:+.2f} years | flip TTA "
           f"{'on' if metrics.get('flip_tta') else 'off'}"
           + (f" | input {metrics['image_size']} px" if "image_size" in metrics else "")
           + (f" | dex {metrics['dex_readout']}" if "dex_readout" in metrics else ""),
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


def _ranking_text(figures: dict | None) -> str:
  if not figures or figures["pearson_r"] is None:
    return ""
  return (f"| r {figures['pearson_r']:.3f} (affine refit MAE {figures['refit_mae']:.2f}, "
          "in sample) ")


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
  with atomic_files.open_atomically(path, newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(["file_name", "real_age", "predicted_age", "age_band"])
    for name, age, prediction, band in zip(file_names, ages, predictions, bands, strict=True):
      writer.writerow([name, f"{age:g}", f"{prediction:.2f}", age_bands.LABELS[band]])
