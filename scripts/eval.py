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
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax
import numpy as np
from absl import app, flags

import configs
from ageflax import (
  checkpointing,
  cli,
  evaluation,
  input_pipeline,
  layouts,
  plots,
  sharding,
  tfds_builder,
  trainer,
)
from ageflax import steps as steps_lib
from ageflax.errors import ConfigError
from ageflax.id_check import IdCheckPolicy

_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory written by train.py.")
_DATA_DIR = flags.DEFINE_string("data_dir", None,
                                "Folder to evaluate (any layout, or records written by "
                                "scripts/prepare_tfds.py); default: the run's own data.")
_DATA_FORMAT = flags.DEFINE_enum("data_format", None, ["auto", *layouts.FORMATS],
                                 "Layout of --data_dir; default: told from its files.")
_SPLIT = flags.DEFINE_enum("split", None, ["all", "train", "validation", "test"],
                           "Which photos of the folder: default 'all' for another folder, "
                           "'validation' for the run's own (its split is reproduced).")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step; default: the best one.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", None, "Global batch size; default: eval's.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None,
                                  "Where to write the results; default WORKDIR/eval/STEP.")
_FLIP_TTA = flags.DEFINE_bool("flip_tta", False,
                              "Predict each photo as the mean over it and its mirror image.")
_LEGAL_AGE = flags.DEFINE_float("legal_age", None,
                                "Alcohol check: the youngest age that may buy alcohol; "
                                "default: the config's eval.legal_age (18).")
_CHALLENGE_AGE = flags.DEFINE_float("challenge_age", None,
                                    "Alcohol check: photos estimated younger are asked for ID; "
                                    "default: the config's eval.challenge_age (25).")
flags.mark_flags_as_required(["workdir"])
cli.define_distributed_flags()


@cli.exit_on_user_error
def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  cli.initialize_distributed_from_flags()
  checkpointer = checkpointing.Checkpointer(_WORKDIR.value, read_only=True)
  step = _STEP.value if _STEP.value is not None else checkpointer.best_step()
  if step is None:
    raise ConfigError(f"no finished checkpoint in {checkpointer.directory}")
  config = configs.with_current_defaults(checkpointer.restore_config(step))
  split = _choose_split(config)
  if _BATCH_SIZE.value:
    config.eval.batch_size = _BATCH_SIZE.value
  _set_alcohol_ages(config)
  mesh = sharding.create_mesh()
  sharding.check_batch_size(config.eval.batch_size, mesh, "--batch_size")
  data = input_pipeline.prepare(config.data, problems_path=None)
  graphdef, abstract_state = steps_lib.abstract_model_state(config, mesh)
  state = abstract_state.replace(**checkpointer.restore_model(
      step, abstract_state.params, abstract_state.batch_stats))
  result = trainer.evaluate_split(steps_lib.jit_eval_step(graphdef, mesh), state, data, split,
                                  config, mesh, flip_tta=_FLIP_TTA.value)
  _report(result, data, split, step, _baseline_median(), config)


def _set_alcohol_ages(config) -> None:
  """Lays --legal_age and --challenge_age over the config's and checks the pair."""
  policy = IdCheckPolicy.from_config(config.eval, _LEGAL_AGE.value, _CHALLENGE_AGE.value)
  config.eval.legal_age, config.eval.challenge_age = policy.legal_age, policy.challenge_age


def _choose_split(config) -> str:
  """Points the config at the folder to evaluate and picks the split."""
  own_folder = config.data.dir
  if _DATA_DIR.value and os.path.abspath(_DATA_DIR.value) != os.path.abspath(own_folder):
    config.data.dir = _DATA_DIR.value
    config.data.source = "tfds" if tfds_builder.holds_records(_DATA_DIR.value) else "folder"
    config.data.format = _DATA_FORMAT.value or "auto"
  same_folder = os.path.abspath(config.data.dir) == os.path.abspath(own_folder)
  split = _SPLIT.value or ("validation" if same_folder else "all")
  if same_folder and split in ("all", "train"):
    print(f"warning: {config.data.dir} is the folder the run trained on; split '{split}' "
          "includes training photos", file=sys.stderr)
  return split


def _baseline_median() -> float | None:
  path = os.path.join(_WORKDIR.value, trainer.DATA_SUMMARY_FILE)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)["train_median_age"]


def _report(result, data, split: str, step: int, train_median: float | None, config) -> None:
  indices = data.indices(split)
  ages = data.store.ages[indices]
  predictions = np.array([result.predictions[int(i)] for i in indices])
  detailed = evaluation.detailed_metrics(ages, predictions, config.eval.legal_age,
                                         config.eval.challenge_age)
  metrics = dict(result.metrics, **detailed, step=step, split=split, data_dir=config.data.dir,
                 flip_tta=_FLIP_TTA.value)
  if train_median is not None:
    metrics["median_baseline_mae"] = evaluation.median_baseline_mae(train_median, ages)
    metrics["train_median_age"] = train_median
  print(f"MAE {metrics['mae']:.2f} on {metrics['count']:,} images")
  if train_median is not None:
    print(f"predict-the-median baseline (training median {train_median:g}): "
          f"MAE {metrics['median_baseline_mae']:.2f}")
  if jax.process_index() != 0:
    return
  print(evaluation.format_report(metrics))
  output_dir = _OUTPUT_DIR.value or os.path.join(_WORKDIR.value, "eval", str(step))
  os.makedirs(output_dir, exist_ok=True)
  with open(os.path.join(output_dir, "eval_metrics.json"), "w") as f:
    json.dump(metrics, f, indent=2)
  evaluation.write_predictions(os.path.join(output_dir, "predictions.csv"),
                               [data.store.file_names[i] for i in indices], ages, predictions)
  _plot(output_dir, metrics, ages, predictions, config)
  print(f"wrote {output_dir}/: eval_metrics.json, predictions.csv, predicted_vs_true.png, "
        "error_by_age.png")


def _plot(output_dir: str, metrics: dict, ages, predictions, config) -> None:
  """predicted_vs_true.png and error_by_age.png, titled with what was evaluated."""
  photos = "all" if metrics["split"] == "all" else f"the {metrics['split']}"
  what = (f"{config.model.name} at step {metrics['step']:,} on {photos} photos of "
          f"{os.path.basename(os.path.normpath(metrics['data_dir']))}"
          + (", flip TTA" if metrics["flip_tta"] else ""))
  plots.plot_predicted_vs_true(ages, predictions, os.path.join(output_dir, "predicted_vs_true.png"),
                               what, config.eval.legal_age, config.eval.challenge_age)
  plots.plot_error_by_age(metrics["age_bands"], os.path.join(output_dir, "error_by_age.png"),
                          f"Error by true age band: {what}\nMAE {metrics['mae']:.2f}, mean "
                          f"signed error {metrics['mean_error']:+.2f} years on "
                          f"{metrics['count']:,} photos")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
