"""Ages for photos at the till: estimate, age band and the ID-check answer for each photo.

  python scripts/predict.py --workdir=runs/r50 photo.jpg more/*.jpg folder/ [--csv=list.csv]
      [--detect_faces] [--flip_tta] [--max_risk=0.05] [--output=ages.csv|ages.json]

Restores the run's best checkpoint, loads the photos on a thread pool while the jitted
model estimates the previous batch, and prints one row per photo (per face with
--detect_faces): file, age (one decimal), age band and `ID check: yes/no` (estimate under
the challenge age, or, for a dex-head run with --max_risk, P(age < legal age) above it).
An unreadable photo or one without a face gets a row that says why (and `yes`).
"""

from ageflax.cli import predict as predict_cli

if __name__ == "__main__":
  predict_cli.run()
