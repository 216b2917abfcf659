"""Reports a trained run's errors on a data folder (any layout) or on prepared records.

  python scripts/eval.py --workdir=runs/r50 --data_dir=DIR [--flip_tta]

Restores the run's best checkpoint (lowest validation MAE), evaluates every photo of
DIR exactly once (or one split of it), prints `MAE 6.12 on 1,897 images` beside the
predict-the-median baseline, then RMSE, CS@5, bias, the error per age band and the
alcohol check, the run's calibrated ID policy (WORKDIR/id_policy.json, if any) beside the
fixed Challenge rule with exact Clopper-Pearson intervals, and writes eval_metrics.json,
predictions.csv, predicted_vs_true.png and error_by_age.png.
"""

import json
import os
import sys

import numpy as np
from absl import flags

from ageflax.cli import common
from ageflax.cli import flags as shared_flags
from ageflax.core import run_files, sharding
from ageflax.data import layouts, pipeline
from ageflax.evaluate import evaluator, report
from ageflax.evaluate import policy_calibration as calibration
from ageflax.model import predict
from ageflax.till import policy_file
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
                                       mesh, config.eval.batch_size, config.eval.legal_age)
  result = loop.evaluate_split(split_evaluator, run.variables, data, split, config)
  output_dir = _OUTPUT_DIR.value or run_files.eval_dir(_WORKDIR.value, run.step)
  policies, protected_ages = _id_policies(result, data.indices(split), config, run.step)
  report.report(result, data, split, run.step, _baseline_median(), config, _FLIP_TTA.value,
                output_dir, policies, protected_ages)


def _id_policies(result, indices, config, step: int):
  """(description, whom it asks) of the run's calibrated policy, if it has one, and of the
  fixed Challenge rule; and the protected ages to report them for."""
  estimates = np.array([result.predictions[int(i)] for i in indices])
  p_under = (None if result.p_under is None
             else np.array([result.p_under[int(i)] for i in indices]))
  fixed = IdCheckPolicy.from_config(config.eval)
  policies = [(fixed.describe(), fixed.asks(estimates))]
  if not policy_file.exists(_WORKDIR.value):
    return policies, (evaluator.TEEN_FIRST_AGE, evaluator.TEEN_LAST_AGE)
  calibrated, contents = policy_file.load(_WORKDIR.value, step)
  protected = calibration.parse_age_range(contents["target"]["protected_ages"],
                                          calibrated.legal_age)
  return [(calibrated.describe(), calibrated.asks(estimates, p_under)), *policies], protected


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


def run() -> None:
  """The console entry point: parses the flags and runs main."""
  common.run(main, __name__)
