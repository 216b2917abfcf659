"""The names of every file and folder of a run directory (WORKDIR), in one place.

  WORKDIR/config.json          the config the run trains with
  WORKDIR/.lock                held while a run trains (`ageflax.train.workdir.RunLock`)
  WORKDIR/data_summary.json    split sizes and training age statistics
  WORKDIR/skipped_rows.csv     every row the data checks skipped
  WORKDIR/history.json         train and validation metrics of every validation
  WORKDIR/history.csv          the same rows, for a spreadsheet
  WORKDIR/train_curves.png     those metrics drawn
  WORKDIR/validation_predicted_vs_true.png  the latest validation's estimates vs true ages
  WORKDIR/tensorboard/         TensorBoard scalars, config, hparams, images and histograms
  WORKDIR/checkpoints/STEP/    Orbax checkpoints; unreadable ones are renamed unreadable_STEP
  WORKDIR/eval/STEP/NAME/      what scripts/eval.py writes (EVAL_OUTPUTS); NAME tells the
                               evaluations of one checkpoint apart (split, data, options)
  WORKDIR/id_policy.json       the calibrated ID-check policy (scripts/calibrate_policy.py)
  WORKDIR/id_policy_tradeoff.png  its trade-off: protected customers passed vs adults asked
"""

import os

CONFIG = "config.json"
LOCK = ".lock"
DATA_SUMMARY = "data_summary.json"
# Also the name beside prepared records (`ageflax.data.tfds_records`).
SKIPPED_ROWS = "skipped_rows.csv"
HISTORY = "history.json"
HISTORY_CSV = "history.csv"
TRAIN_CURVES = "train_curves.png"
VALIDATION_PREDICTED_VS_TRUE = "validation_predicted_vs_true.png"
TENSORBOARD = "tensorboard"
CHECKPOINTS = "checkpoints"
UNREADABLE_PREFIX = "unreadable_"
EVAL = "eval"
ID_POLICY = "id_policy.json"
ID_POLICY_TRADEOFF = "id_policy_tradeoff.png"

# The files of one evaluation, in its output folder.
EVAL_METRICS = "eval_metrics.json"
PREDICTIONS = "predictions.csv"
PREDICTED_VS_TRUE = "predicted_vs_true.png"
ERROR_BY_AGE = "error_by_age.png"
EVAL_OUTPUTS = (EVAL_METRICS, PREDICTIONS, SKIPPED_ROWS, PREDICTED_VS_TRUE, ERROR_BY_AGE)
# Also written when the photos carry group fields: the per-group breakdown, one row per
# (field, value, ID policy).
GROUPS = "groups.csv"
# Also written with --robustness: one row per till-camera shift of the photos (and clean).
ROBUSTNESS = "robustness.csv"


def path(workdir: str | os.PathLike, name: str) -> str:
  """WORKDIR/`name`, for one of the names above."""
  return os.path.join(workdir, name)


def checkpoints_dir(workdir: str | os.PathLike) -> str:
  """The absolute path of WORKDIR/checkpoints (Orbax wants absolute paths)."""
  return os.path.join(os.path.abspath(workdir), CHECKPOINTS)


def eval_dir(workdir: str | os.PathLike, step: int, evaluation: str) -> str:
  """WORKDIR/eval/STEP/`evaluation`, where an evaluation of checkpoint `step` goes by default;
  `evaluation` names what was evaluated, so that one evaluation never overwrites another's."""
  return os.path.join(workdir, EVAL, str(step), evaluation)
