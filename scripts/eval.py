"""Reports a trained run's errors on a data folder (any layout) or on prepared records.

  python scripts/eval.py --workdir=runs/r50 --data_dir=DIR [--flip_tta]

Restores the run's best checkpoint (lowest validation MAE), evaluates every photo of
DIR exactly once (or one split of it), prints `MAE 6.12 on 1,897 images` beside the
predict-the-median baseline, then RMSE, CS@5, bias, the error per age band and the
alcohol check, and writes eval_metrics.json, predictions.csv, predicted_vs_true.png and
error_by_age.png.
"""

from ageflax.cli import eval as eval_cli

if __name__ == "__main__":
  eval_cli.run()
