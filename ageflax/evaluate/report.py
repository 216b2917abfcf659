"""The evaluation report of `scripts/eval.py`: its metrics, console lines, files and plots.

One evaluation of a split becomes `eval_metrics.json` (every figure, what was evaluated and
what was left out), `predictions.csv`, `skipped_rows.csv` and two plots, and, when the
photos carry group fields, `groups.csv` (`ageflax.evaluate.groups`), and with a robustness
report (`ageflax.evaluate.robustness`), `robustness.csv`; the console gets the MAE beside
the predict-the-median baseline and the report's tables.
"""

import json
import os
from collections.abc import Sequence

import jax
import ml_collections
import numpy as np

from ageflax.core import atomic_files, run_files
from ageflax.data import image_store, label_rows, pipeline
from ageflax.evaluate import evaluator, groups, plots, policy_calibration, robustness


def report(result: evaluator.EvalResult, data: pipeline.PreparedData, split: str, step: int,
           train_median: float | None, config: ml_collections.ConfigDict, flip_tta: bool,
           output_dir: str, id_policies: Sequence[tuple[str, np.ndarray]] = (),
           protected_ages: tuple[int, int] = (13, 17),
           robustness_report: dict | None = None) -> None:
  """Prints the report of one evaluated split and, on process 0, writes it to `output_dir`.

  `id_policies` are (description, whom it asks) of ID-check rules, e.g. the calibrated one
  and Challenge 25, each asked-mask in the order of the split's photos; their realized
  rates are reported with exact Clopper-Pearson intervals for `protected_ages`, overall
  and per group where the photos carry group fields. A `robustness_report`
  (`robustness.summary`) is printed, kept under 'robustness' and written as a CSV.
  """
  indices = data.indices(split)
  ages = data.store.ages[indices]
  predictions = np.array([result.predictions[int(i)] for i in indices])
  detailed = evaluator.detailed_metrics(ages, predictions, config.eval.legal_age,
                                        config.eval.challenge_age)
  metrics = dict(result.metrics, **detailed, step=step, split=split, data_dir=config.data.dir,
                 flip_tta=flip_tta, image_size=config.data.image_size,
                 **({"dex_readout": config.model.dex_readout} if config.model.head == "dex"
                    else {}),
                 face_framing=config.data.face_framing.mode,
                 **_left_out(data))
  metrics["id_policies"] = [
      {"policy": name, **policy_calibration.realized_rates(asked, ages, config.eval.legal_age,
                                                           protected_ages)}
      for name, asked in id_policies]
  metrics["groups"] = _group_breakdown(data, indices, ages, predictions, id_policies, config,
                                       protected_ages)
  if robustness_report is not None:
    metrics["robustness"] = robustness_report
  if train_median is not None:
    metrics["median_baseline_mae"] = evaluator.median_baseline_mae(train_median, ages)
    metrics["train_median_age"] = train_median
  _print_headline(metrics)
  if jax.process_index() != 0:
    return
  _print_tables(metrics, protected_ages)
  written = _write_outputs(output_dir, metrics, data, indices, ages, predictions, config)
  print(f"wrote {output_dir}/: {', '.join(written)}")


def _write_outputs(output_dir: str, metrics: dict, data: pipeline.PreparedData,
                   indices: np.ndarray, ages: np.ndarray, predictions: np.ndarray,
                   config: ml_collections.ConfigDict) -> tuple[str, ...]:
  """Writes the metrics, skipped rows, predictions, plots and tables; returns their names."""
  os.makedirs(output_dir, exist_ok=True)
  atomic_files.write_text_atomically(os.path.join(output_dir, run_files.EVAL_METRICS),
                                     json.dumps(metrics, indent=2))
  label_rows.write_problems(data.problems, os.path.join(output_dir, run_files.SKIPPED_ROWS))
  evaluator.write_predictions(os.path.join(output_dir, run_files.PREDICTIONS),
                              [data.store.file_names[i] for i in indices], ages, predictions)
  _plot(output_dir, metrics, ages, predictions, config)
  written = run_files.EVAL_OUTPUTS
  if metrics["groups"]:
    groups.write_csv(metrics["groups"], os.path.join(output_dir, run_files.GROUPS))
    written += (run_files.GROUPS,)
  if "robustness" in metrics:
    robustness.write_csv(metrics["robustness"], os.path.join(output_dir, run_files.ROBUSTNESS))
    written += (run_files.ROBUSTNESS,)
  _remove_stale_tables(output_dir, written)
  return written


def _remove_stale_tables(output_dir: str, written: tuple[str, ...]) -> None:
  """Removes an earlier evaluation's optional tables that this one did not write again, so
  that a folder never mixes two evaluations."""
  for name in (run_files.GROUPS, run_files.ROBUSTNESS):
    if name not in written and os.path.exists(os.path.join(output_dir, name)):
      os.remove(os.path.join(output_dir, name))


def _group_breakdown(data: pipeline.PreparedData, indices: np.ndarray, ages: np.ndarray,
                     predictions: np.ndarray, id_policies, config: ml_collections.ConfigDict,
                     protected_ages: tuple[int, int]) -> list[dict]:
  """The per-group entries of the split's photos ([] when they carry no group fields)."""
  photo_groups = [data.store.groups[int(i)] for i in indices] if data.store.groups else []
  return groups.breakdown(groups.values_by_field(photo_groups), ages, predictions, id_policies,
                          config.eval.legal_age, protected_ages, config.eval.min_group_photos)


def _print_tables(metrics: dict, protected_ages: tuple[int, int]) -> None:
  """The report's tables, the ID policies' rates and, if any, the per-group breakdown."""
  print(evaluator.format_report(metrics))
  for entry in metrics["id_policies"]:
    print(_policy_lines(entry, protected_ages))
  if metrics["groups"]:
    print(groups.format_breakdown(metrics["groups"], protected_ages))
  if "robustness" in metrics:
    print(robustness.format_table(metrics["robustness"], metrics["split"]))


def _print_headline(metrics: dict) -> None:
  """The MAE, what it leaves out, and the predict-the-median baseline."""
  print(f"MAE {metrics['mae']:.2f} on {metrics['count']:,} images")
  if metrics["photos_without_face"] or metrics["rows_skipped"]:
    print(f"not in the MAE: {metrics['photos_without_face']:,} photos without a usable face "
          f"and {metrics['rows_skipped'] - metrics['photos_without_face']:,} other skipped rows "
          f"(listed in {run_files.SKIPPED_ROWS})")
  if "median_baseline_mae" in metrics:
    print(f"predict-the-median baseline (training median {metrics['train_median_age']:g}): "
          f"MAE {metrics['median_baseline_mae']:.2f}")


def _policy_lines(entry: dict, protected_ages: tuple[int, int]) -> str:
  """One ID-check rule's realized rates, each with its exact 95% interval."""
  lines = [f"ID policy: {entry['policy']}"]
  labels = {"protected_passed": f"{protected_ages[0]}-{protected_ages[1]} passed without ID",
            "young_adults_asked": "18-24 asked", "adults_25_plus_asked": "25+ asked"}
  for key, label in labels.items():
    share = entry[key]
    if share["share"] is None:
      lines.append(f"  {label:<30} -  (no photos)")
      continue
    lower, upper = share["interval"]
    lines.append(f"  {label:<30}{share['count']:>7,} of {share['of']:>7,} "
                 f"{100 * share['share']:6.2f}%  (95% CI {100 * lower:.2f}-{100 * upper:.2f}%)")
  return "\n".join(lines)


def _left_out(data: pipeline.PreparedData) -> dict[str, int]:
  """The rows an evaluation could not score: the photos without a usable face (of the
  evaluated split) and every skipped row of the folder."""
  without_face = sum(problem.reason == image_store.NO_FACE for problem in data.problems)
  return {"photos_without_face": without_face, "rows_skipped": len(data.problems)}


def _plot(output_dir: str, metrics: dict, ages, predictions, config) -> None:
  """predicted_vs_true.png and error_by_age.png, titled with what was evaluated."""
  photos = "all" if metrics["split"] == "all" else f"the {metrics['split']}"
  what = (f"{config.model.name} at step {metrics['step']:,} on {photos} photos of "
          f"{os.path.basename(os.path.normpath(metrics['data_dir']))}"
          + (", flip TTA" if metrics["flip_tta"] else ""))
  plots.plot_predicted_vs_true(ages, predictions,
                               os.path.join(output_dir, run_files.PREDICTED_VS_TRUE), what, config.eval.legal_age, config.eval.challenge_age)
  plots.plot_error_by_age(metrics["age_bands"], os.path.join(output_dir, run_files.ERROR_BY_AGE),
                          f"Error by true age band: {what}\nMAE {metrics['mae']:.2f}, mean "
                          f"signed error {metrics['mean_error']:+.2f} years on "
                          f"{metrics['count']:,} photos")
