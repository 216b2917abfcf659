"""Reports a trained run's errors on a data folder (any layout) or on prepared records.

  python scripts/eval.py --workdir=runs/r50 --data_dir=DIR [--flip_tta]

Restores the run's best checkpoint (lowest validation MAE), evaluates every photo of
DIR exactly once (or one split of it), prints `MAE 6.12 on 1,897 images` beside the
predict-the-median baseline, then RMSE, CS@5, bias, the error per age band and the
alcohol check, the run's calibrated ID policy (WORKDIR/id_policy.json, if any) beside the
fixed Challenge rule with exact Clopper-Pearson intervals, and writes eval_metrics.json,
predictions.csv, predicted_vs_true.png and error_by_age.png. Where the photos carry group
fields (--group_columns of the labels CSV, --group_from_file_names=utkface) it reports
each group's MAE, bias and the policies' rates too, and writes groups.csv. With
--image_size it evaluates at another input size than the run's, with --dex_readout it
reads a dex head's estimate another way than the run's. With --robustness it
evaluates shifted copies of the split too, as a till's camera and light would change
them (--shifts, `ageflax.data.till_shifts`; each shift is applied to the decoded photo
before the face normaliser, or before the resize without framing), and reports each as
its own row (MAE, bias, and both on 13-17-year-olds) in eval_metrics.json and
robustness.csv.
"""

import functools
import json
import os
import re
import sys

import numpy as np
from absl import flags

from ageflax.cli import common
from ageflax.cli import flags as shared_flags
from ageflax.core import run_files, sharding
from ageflax.core.progress import Progress, log_line
from ageflax.data import layouts, pipeline, till_shifts
from ageflax.evaluate import evaluator, report, robustness
from ageflax.evaluate import policy_calibration as calibration
from ageflax.model import dex, predict
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
_OUTPUT_DIR = shared_flags.define_output_dir(
    "Where to write the results; default WORKDIR/eval/STEP/NAME, NAME naming the split, the "
    "data folder when it is not the run's own and the options that change the figures, "
    "e.g. 'test', 'test_flip_tta' or 'cacd_all'.")
_FLIP_TTA = shared_flags.define_flip_tta()
_IMAGE_SIZE = flags.DEFINE_integer(
    "image_size", None, "Input side in pixels to evaluate at; default: the run's "
    "data.image_size. The network pools globally, so it takes any size; the face "
    "normaliser frames at this size too.", lower_bound=16)
_DEX_READOUT = flags.DEFINE_enum("dex_readout", None, list(dex.READOUTS),
                                 "How a dex-head run's estimate is read from its distribution: "
                                 "'mean' or 'median'; default: the run's model.dex_readout.")
_LEGAL_AGE, _CHALLENGE_AGE = shared_flags.define_id_check_ages()
_GROUP_COLUMNS, _GROUP_FROM_FILE_NAMES = shared_flags.define_group_fields()
_ROBUSTNESS = flags.DEFINE_bool("robustness", False,
                                "Also evaluate shifted copies of the photos, as a till camera "
                                "would take them, each reported as its own row.")
_SHIFTS = flags.DEFINE_string("shifts", "all", "With --robustness: 'all' or comma-separated "
                              f"shifts among {', '.join(till_shifts.SHIFTS)}.")
shared_flags.define_distributed_flags()


@common.exit_on_user_error
def main(argv: list[str]) -> None:
  common.refuse_arguments(argv)
  shifts = till_shifts.parse_names(_SHIFTS.value) if _ROBUSTNESS.value else ()
  common.initialize_distributed_from_flags()
  mesh = sharding.create_mesh()
  run = restore.restore_run(_WORKDIR.value, _STEP.value, mesh, _DEX_READOUT.value)
  config = run.config
  split, is_own_folder = _choose_split(config)
  if _BATCH_SIZE.value:
    config.eval.batch_size = _BATCH_SIZE.value
  if _IMAGE_SIZE.value:
    config.data.image_size = _IMAGE_SIZE.value
  _set_alcohol_ages(config)
  common.set_group_fields(config, _GROUP_COLUMNS.value, _GROUP_FROM_FILE_NAMES.value)
  sharding.check_batch_size(config.eval.batch_size, mesh, "--batch_size")
  # An evaluation reports every photo it leaves out instead of stopping at the first few.
  config.data.max_bad_fraction = 1.0
  data = pipeline.prepare(config.data, problems_path=None,
                          splits=None if split == "all" else [split])
  split_evaluator = evaluator.Evaluator(predict.make_predict_fn(run.graphdef, _FLIP_TTA.value),
                                       mesh, config.eval.batch_size, config.eval.legal_age)
  result = _evaluate(split_evaluator, run.variables, data, split, config)
  robustness_report = (_robustness(split_evaluator, run.variables, data, result, split, config,
                                   shifts) if shifts else None)
  output_dir = _OUTPUT_DIR.value or run_files.eval_dir(
      _WORKDIR.value, run.step, _evaluation_name(split, None if is_own_folder else config.data.dir))
  policies, protected_ages = _id_policies(result, data.indices(split), config, run.step)
  report.report(result, data, split, run.step, _baseline_median(), config, _FLIP_TTA.value,
                output_dir, policies, protected_ages, robustness_report)


def _evaluate(split_evaluator, variables, data, split: str, config, what: str = "photos"
              ) -> evaluator.EvalResult:
  """The split evaluated once, with a progress bar."""
  progress = Progress(len(data.indices(split)), f"evaluated {{done:,}}/{{total:,}} {what}",
                      log_fn=log_line, every_seconds=10.0, bar=True)
  return loop.evaluate_split(split_evaluator, variables, data, split, config, progress.update)


def _robustness(split_evaluator, variables, data, result, split: str, config,
                shifts: tuple[str, ...]) -> dict:
  """The clean row and one row per shift: the split made again from shifted photos (as
  the clean one, framing included) and evaluated by the same evaluator."""
  rows = [_robustness_row(robustness.CLEAN, data, result, split)]
  for name in shifts:
    shifted = pipeline.shifted_copy(data, split, config.data,
                                    functools.partial(till_shifts.apply, name, config.seed))
    shifted_result = _evaluate(split_evaluator, variables, shifted, split, config,
                               f"{name} photos")
    rows.append(_robustness_row(name, shifted, shifted_result, split))
  return robustness.summary(rows)


def _robustness_row(name: str, data, result, split: str) -> dict:
  indices = data.indices(split)
  predictions = np.array([result.predictions[int(i)] for i in indices])
  return robustness.row(name, data.store.ages[indices], predictions,
                        robustness.no_face_count(data))


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


def _choose_split(config) -> tuple[str, bool]:
  """Points the config at the folder to evaluate and picks the split; returns the split and
  whether the folder is the run's own."""
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
  return split, same_folder


def _evaluation_name(split: str, other_folder: str | None) -> str:
  """The default output folder's name: `other_folder`'s (a folder not the run's own), the
  split, and each flag given that changes the figures, e.g. 'cacd_all_flip_tta'."""
  parts = [] if other_folder is None else [
      re.sub(r"[^A-Za-z0-9.-]+", "-", os.path.basename(os.path.normpath(other_folder)))]
  parts.append(split)
  # (pattern, flag value): a flag left at its default (None, or False) adds nothing.
  options = (("flip_tta", _FLIP_TTA.value or None), ("{}px", _IMAGE_SIZE.value),
             ("{}", _DEX_READOUT.value), ("legal_age{:g}", _LEGAL_AGE.value),
             ("challenge_age{:g}", _CHALLENGE_AGE.value), ("robustness", _ROBUSTNESS.value or None))
  parts += [pattern.format(value) for pattern, value in options if value is not None]
  return "_".join(parts)


def _baseline_median() -> float | None:
  path = run_files.path(_WORKDIR.value, run_files.DATA_SUMMARY)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)["train_median_age"]


def run() -> None:
  """The console entry point: parses the flags and runs main."""
  common.run(main, __name__)
