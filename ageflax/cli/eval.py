"""Reports a trained run's errors on a data folder (any layout) or on prepared records.

  python scripts/eval.py --workdir=runs/r50 --data_dir=DIR [--flip_tta]

Restores the run's best checkpoint (lowest validation MAE), evaluates every photo of
DIR exactly once (or one split of it), prints `MAE 6.12 on 1,897 images` beside the
predict-the-median baseline, then RMSE, CS@5, bias, the error per age band and the
alcohol check, and writes eval_metrics.json, predictions.csv, predicted_vs_true.png and
error_by_age.png.
"""

import json
import os
import sys

import jax
import numpy as np
from absl import app, flags

from ageflax.cli import common
from ageflax.cli import flags as shared_flags
from ageflax.core import atomic_files, run_files, sharding
from ageflax.data import image_store, label_rows, layouts, pipeline
from ageflax.evaluate import evaluator, plots
from ageflax.model import predict
from ageflax.till.id_policy import IdCheckPolicy
from ageflax.train import loop, restore

_WORKDIR = shared_flags.define_workdir()
_DATA_DIR = shared_flags.define_data_dir("Folder to evaluate (any layout, or records written by "
                                         "scripts/prepare_tfds.py); default: the run's own data.")
_DATA_FORMAT = flags.DEFINE_enum("data_format", None, ["auto", *layouts.FORMATS],
                                 "Layout of --data_dir; default: told from its files.")
_SPLIT = flags.DEFINE_enum("split", None, ["all", "train", "validation", "test"],
                           "Which photos of the folder: default 'all' for another folder, "
                           "'validation' for the run's own (its split is reproduced).")
_STEP = shared_flags.define_step()
_BATCH_SIZE = shared_flags.define_batch_size("Global batch size; default: eval's.")
_OUTPUT_DIR = shared_flags.define_output_dir("Where to write the results; default "
                                             "WORKDIR/eval/STEP.")
_FLIP_TTA = shared_flags.define_flip_tta()
_LEGAL_AGE, _CHALLENGE_AGE = shared_flags.define_id_check_ages()
shared_flags.define_distributed_flags()


@common.exit_on_user_error
def main(argv: list[str]) -> None:
  common.refuse_arguments(argv)
  common.initialize_distributed_from_flags()
  mesh = sharding.create_mesh()
  run = restore.restore_run(_WORKDIR.value, _STEP.value, mesh)
  config = run.config
  split = _choose_split(config)
  if _BATCH_SIZE.value:
    config.eval.batch_size = _BATCH_SIZE.value
  _set_alcohol_ages(config)
  sharding.check_batch_size(config.eval.batch_size, mesh, "--batch_size")
  # An evaluation reports every photo it leaves out instead of stopping at the first few.
  config.data.max_bad_fraction = 1.0
  data = pipeline.prepare(config.data, problems_path=None,
                          splits=None if split == "all" else [split])
  split_evaluator = evaluator.Evaluator(predict.make_predict_fn(run.graphdef, _FLIP_TTA.value),
                                       mesh, config.eval.batch_size)
  result = loop.evaluate_split(split_evaluator, run.variables, data, split, config)
  _report(result, data, split, run.step, _baseline_median(), config)


def _set_alcohol_ages(config) -> None:
  """Lays --legal_age and --challenge_age over the config's and checks the pair."""
  policy = IdCheckPolicy.from_config(config.eval, _LEGAL_AGE.value, _CHALLENGE_AGE.value)
  config.eval.legal_age, config.eval.challenge_age = policy.legal_age, policy.challenge_age


def _choose_split(config) -> str:
  """Points the config at the folder to evaluate and picks the split."""
  own_folder = config.data.dir
  if _DATA_DIR.value and os.path.abspath(_DATA_DIR.value) != os.path.abspath(own_folder):
    config.data.dir = _DATA_DIR.value
    config.data.source = "tfds" if pipeline.holds_records(_DATA_DIR.value) else "folder"
    config.data.format = _DATA_FORMAT.value or "auto"
  same_folder = os.path.abspath(config.data.dir) == os.path.abspath(own_folder)
  split = _SPLIT.value or ("validation" if same_folder else "all")
  if same_folder and split in ("all", "train"):
    print(f"warning: {config.data.dir} is the folder the run trained on; split '{split}' "
          "includes training photos", file=sys.stderr)
  return split


def _baseline_median() -> float | None:
  path = run_files.path(_WORKDIR.value, run_files.DATA_SUMMARY)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)["train_median_age"]


def _report(result, data, split: str, step: int, train_median: float | None, config) -> None:
  indices = data.indices(split)
  ages = data.store.ages[indices]
  predictions = np.array([result.predictions[int(i)] for i in indices])
  detailed = evaluator.detailed_metrics(ages, predictions, config.eval.legal_age,
                                         config.eval.challenge_age)
  metrics = dict(result.metrics, **detailed, step=step, split=split, data_dir=config.data.dir,
                 flip_tta=_FLIP_TTA.value, face_framing=config.data.face_framing.mode,
                 **_left_out(data))
  if train_median is not None:
    metrics["median_baseline_mae"] = evaluator.median_baseline_mae(train_median, ages)
    metrics["train_median_age"] = train_median
  print(f"MAE {metrics['mae']:.2f} on {metrics['count']:,} images")
  if metrics["photos_without_face"] or metrics["rows_skipped"]:
    print(f"not in the MAE: {metrics['photos_without_face']:,} photos without a usable face "
          f"and {metrics['rows_skipped'] - metrics['photos_without_face']:,} other skipped rows "
          f"(listed in {run_files.SKIPPED_ROWS})")
  if train_median is not None:
    print(f"predict-the-median baseline (training median {train_median:g}): "
          f"MAE {metrics['median_baseline_mae']:.2f}")
  if jax.process_index() != 0:
    return
  print(evaluator.format_report(metrics))
  output_dir = _OUTPUT_DIR.value or run_files.eval_dir(_WORKDIR.value, step)
  os.makedirs(output_dir, exist_ok=True)
  atomic_files.write_text_atomically(os.path.join(output_dir, run_files.EVAL_METRICS),
                                     json.dumps(metrics, indent=2))
  label_rows.write_problems(data.problems, os.path.join(output_dir, run_files.SKIPPED_ROWS))
  evaluator.write_predictions(os.path.join(output_dir, run_files.PREDICTIONS),
                               [data.store.file_names[i] for i in indices], ages, predictions)
  _plot(output_dir, metrics, ages, predictions, config)
  print(f"wrote {output_dir}/: {', '.join(run_files.EVAL_OUTPUTS)}")


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
  plots.plot_predicted_vs_true(ages, predictions, os.path.join(output_dir, run_files.PREDICTED_VS_TRUE),
                               what, config.eval.legal_age, config.eval.challenge_age)
  plots.plot_error_by_age(metrics["age_bands"], os.path.join(output_dir, run_files.ERROR_BY_AGE),
                          f"Error by true age band: {what}\nMAE {metrics['mae']:.2f}, mean "
                          f"signed error {metrics['mean_error']:+.2f} years on "
                          f"{metrics['count']:,} photos")



def run() -> None:
  """The console entry point: parses the flags and runs main."""
  app.run(main, flags_parser=common.parse_flags)
