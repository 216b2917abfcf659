"""The robustness rows: MAE and bias overall and on 13-17-year-olds, the change from the clean
row, the worst shift against the target, the table and the CSV."""

import csv

import numpy as np
import pytest

from ageflax.evaluate import robustness


def _report() -> dict:
  ages = np.array([14.0, 17.9, 18.0, 30.0])
  clean = robustness.row("clean", ages, ages + np.array([1, -1, 2, 0]), photos_without_face=0)
  blur = robustness.row("blur", ages, ages + np.array([3, 1, 2, -2]), photos_without_face=1)
  dim = robustness.row("dim", ages[2:], ages[2:] + 1, photos_without_face=2)
  return robustness.summary([clean, blur, dim])


def test_rows_give_mae_bias_and_the_teens_and_the_worst_shift():
  report = _report()
  clean, blur, dim = report["rows"]
  assert (clean["mae"], clean["mean_error"]) == (1.0, 0.5)
  assert (clean["teen_photos"], clean["teen_mae"], clean["teen_mean_error"]) == (2, 1.0, 0.0)
  assert (blur["mae"], blur["teen_mae"], blur["teen_mean_error"]) == (2.0, 2.0, 2.0)
  assert dim["teen_photos"] == 0 and dim["teen_mae"] is None and dim["photos"] == 2
  assert clean["mae_change"] is None and blur["mae_change"] == pytest.approx(1.0)
  assert report["worst"] == "blur" and report["meets_target"] is True


def test_the_table_and_csv_show_every_row(tmp_path):
  report = _report()
  table = robustness.format_table(report, "test").splitlines()
  assert table[1].split() == ["shift", "photos", "no", "face", "MAE", "bias", "13-17", "MAE",
                              "13-17", "bias", "vs", "clean"]
  assert table[3].split() == ["blur", "4", "1", "2.00", "+1.00", "2.00", "+2.00", "+1.00"]
  assert table[4].split()[-3:] == ["-", "-", "+0.00"]
  assert table[-1] == "worst shift: blur, MAE +1.00 years from clean (target within 1: met)"
  robustness.write_csv(report, tmp_path / "robustness.csv")
  with open(tmp_path / "robustness.csv") as f:
    rows = list(csv.DictReader(f))
  assert [row["shift"] for row in rows] == ["clean", "blur", "dim"]
  assert rows[0]["mae_change"] == "" and rows[1]["teen_mae"] == "2.0000"
