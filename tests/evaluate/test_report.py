"""The evaluation report: metrics, age bands, the alcohol check, plots and curves."""

import csv
import json

import numpy as np
import pytest
from conftest import error_line, run_entry_point, tiny_train_args
from PIL import Image

from ageflax.core import age_bands
from ageflax.devtools.synthetic import portraits
from ageflax.evaluate import evaluator, plots
from ageflax.train import summaries
from configs import tiny

# Hand-made photos: (true age, estimate). Nobody is 45-54, so that band is empty.
PHOTOS = [(10, 12), (14, 26), (16.5, 20), (17.9, 25), (20, 30), (24, 19), (25, 24.9),
          (30, 30), (40, 33), (60, 66), (70, 58)]


def _hand_made():
  ages, predictions = zip(*PHOTOS, strict=True)
  return np.array(ages, np.float64), np.array(predictions, np.float64)


def test_bands_go_by_the_floor_of_the_age():
  ages = [0, 17.9, 18, 24.99, 25, 34.6, 54, 64.5, 65, 120, -2]
  assert [age_bands.LABELS[i] for i in age_bands.band_index(ages)] == [
      "0-17", "0-17", "18-24", "18-24", "25-34", "25-34", "45-54", "55-64", "65+", "65+",
      "0-17"]
  assert age_bands.band_of(34.6) == "25-34" and age_bands.band_of(65) == "65+"


def test_cs5_and_error_per_band_with_an_empty_band():
  ages, predictions = _hand_made()
  metrics = evaluator.detailed_metrics(ages, predictions, legal_age=18, challenge_age=25)
  # Within 5 years (5 itself counts): 10 (+2), 16.5 (+3.5), 24 (-5), 25 (-0.1), 30 (0).
  assert metrics["cs5"] == pytest.approx(5 / 11)
  bands = {b["band"]: b for b in metrics["age_bands"]}
  assert [b["band"] for b in metrics["age_bands"]] == list(age_bands.LABELS)
  assert bands["0-17"]["count"] == 4
  assert bands["0-17"]["mae"] == pytest.approx((2 + 12 + 3.5 + 7.1) / 4)
  assert bands["0-17"]["mean_error"] == pytest.approx((2 + 12 + 3.5 + 7.1) / 4)
  assert bands["18-24"] == {"band": "18-24", "count": 2, "mae": pytest.approx(7.5),
                            "mean_error": pytest.approx(2.5)}
  assert bands["25-34"]["mean_error"] == pytest.approx(-0.05)
  assert bands["45-54"] == {"band": "45-54", "count": 0, "mae": None, "mean_error": None}
  assert bands["65+"]["mean_error"] == pytest.approx(-12)
  assert sum(b["count"] for b in metrics["age_bands"]) == len(PHOTOS)


def test_ranking_separates_a_compressed_scale_from_a_noisy_order():
  ages = np.array([15.0, 25, 35, 45, 55])
  # Pulled halfway to 35: biased at both ends, yet a recalibration removes all of it.
  compressed = evaluator.ranking(ages, 35 + (ages - 35) / 2)
  assert compressed["pearson_r"] == pytest.approx(1.0)
  assert compressed["refit_mae"] == pytest.approx(0.0, abs=1e-9)
  # The right scale, the order scrambled: no affine map brings the error down to 0.
  scrambled = evaluator.ranking(ages, np.array([35.0, 15, 55, 25, 45]))
  assert scrambled["pearson_r"] == pytest.approx(0.3)
  assert scrambled["refit_mae"] > 10
  assert evaluator.ranking(ages, np.full(5, 30.0)) == {"pearson_r": None, "refit_mae": None}
  text = evaluator.format_report(dict(
      evaluator.metrics_from_sums({"sum_abs_error": 1.0, "sum_squared_error": 1.0,
                                   "sum_error": 0.0, "count": 5}),
      **evaluator.detailed_metrics(ages, 35 + (ages - 35) / 2, 18, 25)))
  assert "| r 1.000 (affine refit MAE 0.00, in sample) |" in text


def test_alcohol_check_counts():
  ages, predictions = _hand_made()
  check = evaluator.detailed_metrics(ages, predictions, 18, 25)["alcohol_check"]
  assert check["legal_age"] == 18 and check["challenge_age"] == 25
  # Under 18: 10, 14, 16.5, 17.9; estimated 25 or more (no ID asked): 14 (26), 17.9 (25).
  assert check["under_age_passed"] == {"count": 2, "of": 4, "share": 0.5}
  # 25 or older: 25, 30, 40, 60, 70; estimated under 25: only 25 (24.9).
  assert check["adults_asked"] == {"count": 1, "of": 5, "share": 0.2}
  # 13-17: 14, 16.5, 17.9; estimated under 25: 16.5 only.
  assert check["teens_under_challenge"] == {"count": 1, "of": 3, "share": pytest.approx(1 / 3),
                                            "bar": 0.999}
  # Nobody under a legal age of 5: the share is undefined, not 0.
  assert evaluator.alcohol_check(ages, predictions, 5, 25)["under_age_passed"] == {
      "count": 0, "of": 0, "share": None}


def test_report_lines_show_counts_and_empty_bands():
  ages, predictions = _hand_made()
  metrics = dict(evaluator.metrics_from_sums({
      "sum_abs_error": float(np.sum(np.abs(predictions - ages))),
      "sum_squared_error": float(np.sum(np.square(predictions - ages))),
      "sum_error": float(np.sum(predictions - ages)), "count": len(ages)}),
      **evaluator.detailed_metrics(ages, predictions, 18, 25), flip_tta=True)
  assert metrics["mean_error"] == pytest.approx(np.mean(predictions - ages))
  text = evaluator.format_report(metrics)
  assert f"CS@5 {100 * 5 / 11:.1f}%" in text and "flip TTA on" in text
  assert f"mean signed error {np.mean(predictions - ages):+.2f} years" in text
  lines = text.splitlines()
  assert [line.split() for line in lines if line.startswith("  45-54")] == [["45-54", "0", "-",
                                                                             "-"]]
  assert any("sold without ID" in line and line.split()[-4:] == ["2", "of", "4", "50.00%"]
             for line in lines)
  assert any("asked needlessly" in line and line.split()[-4:] == ["1", "of", "5", "20.00%"]
             for line in lines)


def _assert_png(path, min_width=700, min_height=450):
  with Image.open(path) as image:
    assert image.format == "PNG"
    assert min_width <= image.width <= 2500 and min_height <= image.height <= 2000
    assert len(np.unique(np.asarray(image.convert("L")))) > 10  # something was drawn


def test_plots_are_pngs_of_a_sensible_size(tmp_path):
  ages, predictions = _hand_made()
  plots.plot_predicted_vs_true(ages, predictions, tmp_path / "scatter.png", "hand-made", 18, 25)
  bands = evaluator.detailed_metrics(ages, predictions, 18, 25)["age_bands"]
  plots.plot_error_by_age(bands, tmp_path / "bands.png", "hand-made")
  history = [{"step": 5 * i, "epoch": float(i), "train_loss": 400 / i, "train_mae": 15 / i,
              "validation_loss": 300 / i, "validation_mae": 14 / i, "validation_rmse": 17 / i}
             for i in range(1, 4)]
  plots.plot_train_curves(history, tmp_path / "curves.png", "l2")
  plots.plot_train_curves([{"step": 4, "epoch": 0.8, "train_loss": 2.0, "train_mae": 1.0}],
                          tmp_path / "train_only.png", "l1")  # no validation split
  for name in ("scatter.png", "bands.png", "curves.png", "train_only.png"):
    _assert_png(tmp_path / name)


def test_history_keeps_one_record_per_step_across_resumes(tmp_path):
  path = tmp_path / "history.json"
  for step in (5, 10, 15):
    summaries.append_history(path, {"step": step, "train_mae": step})
  # Resumed from step 10's checkpoint: step 15 is trained and validated again.
  history = summaries.append_history(path, {"step": 15, "train_mae": 1.5})
  assert history == json.loads(path.read_text()) == [
      {"step": 5, "train_mae": 5}, {"step": 10, "train_mae": 10}, {"step": 15, "train_mae": 1.5}]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
  """A tiny run of 4 steps, evaluated with flip TTA and a challenge age of 21."""
  root = tmp_path_factory.mktemp("report")
  portraits.write_synthetic_faces(root / "faces", 60, seed=0, image_size=40)
  workdir, out = root / "run", root / "eval"
  trained = run_entry_point(tiny_train_args(root / "faces", workdir,
                                            "--config.train.num_steps=4"))
  assert trained.returncode == 0, trained.stderr[-3000:]
  result = run_entry_point(["scripts/eval.py", f"--workdir={workdir}", f"--output_dir={out}",
                            "--flip_tta", "--challenge_age=21"])
  return workdir, out, result


def test_eval_writes_the_report_and_its_plots(evaluated):
  _, out, result = evaluated
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.splitlines()
  assert lines[0].startswith("MAE ") and lines[0].endswith(" on 15 images")
  assert lines[1].startswith("predict-the-median baseline")
  assert "flip TTA on" in lines[2] and "CS@5" in lines[2]
  assert "alcohol check (legal age 18; estimated under 21 is asked for ID):" in lines
  metrics = json.loads((out / "eval_metrics.json").read_text())
  assert metrics["count"] == 15 and metrics["flip_tta"] is True
  assert metrics["image_size"] == tiny.get_config().data.image_size
  assert {"mae", "rmse", "mean_error", "cs5", "age_bands", "alcohol_check"} <= set(metrics)
  assert sum(b["count"] for b in metrics["age_bands"]) == 15
  check = metrics["alcohol_check"]
  assert (check["legal_age"], check["challenge_age"]) == (18, 21)
  with open(out / "predictions.csv") as f:
    rows = list(csv.DictReader(f))
  assert list(rows[0]) == ["file_name", "real_age", "predicted_age", "age_band"]
  assert all(r["age_band"] == age_bands.band_of(float(r["real_age"])) for r in rows)
  predictions = np.array([float(r["predicted_age"]) for r in rows])
  ages = np.array([float(r["real_age"]) for r in rows])
  assert check["adults_asked"]["of"] == np.count_nonzero(ages >= 21)
  assert check["adults_asked"]["count"] == np.count_nonzero((ages >= 21) & (predictions < 21))
  _assert_png(out / "predicted_vs_true.png")
  _assert_png(out / "error_by_age.png")


def test_training_writes_its_history_and_curves(evaluated):
  workdir, *_ = evaluated
  history = json.loads((workdir / "history.json").read_text())
  assert [(r["step"], r["epoch"]) for r in history] == [(4, 0.8)]  # 5 steps per epoch
  record = history[0]
  assert {"train_loss", "train_mae", "validation_loss", "validation_mae",
          "validation_rmse"} <= set(record)
  # The tiny config trains with L2: the validation loss is the validation MSE.
  assert record["validation_loss"] == pytest.approx(record["validation_rmse"] ** 2, rel=1e-4)
  _assert_png(workdir / "train_curves.png")


def test_a_challenge_age_below_the_legal_age_is_refused(evaluated):
  workdir, *_ = evaluated
  result = run_entry_point(["scripts/eval.py", f"--workdir={workdir}", "--legal_age=21",
                            "--challenge_age=18"])
  assert "the legal age (21) must be above 0 and at most the challenge age (18)" in error_line(
      result)


def test_a_step_that_is_not_there_lists_the_steps_there_are(evaluated):
  workdir = evaluated[0]
  line = error_line(run_entry_point(["scripts/eval.py", f"--workdir={workdir}", "--step=999"]))
  assert "999" in line and "4" in line.split("999", 1)[1], line


@pytest.mark.parametrize("script", ["train.py", "scripts/eval.py", "scripts/predict.py",
                                    "scripts/export.py"])
def test_help_exits_0(script):
  result = run_entry_point([script, "--help"])
  assert result.returncode == 0 and "--helpfull" in result.stdout, result.stderr[-2000:]


def test_eval_robustness_reports_a_row_per_shift_at_the_size_asked(evaluated, tmp_path):
  workdir = evaluated[0]
  result = run_entry_point(["scripts/eval.py", f"--workdir={workdir}", f"--output_dir={tmp_path}",
                            "--robustness", "--shifts=dim,low_res", "--image_size=48"])
  assert result.returncode == 0, result.stderr[-3000:]
  assert "| input 48 px" in result.stdout
  assert json.loads((tmp_path / "eval_metrics.json").read_text())["image_size"] == 48
  report = json.loads((tmp_path / "eval_metrics.json").read_text())["robustness"]
  rows = {row["shift"]: row for row in report["rows"]}
  assert list(rows) == ["clean", "low_res", "dim"]
  assert rows["clean"]["photos"] == rows["dim"]["photos"] == 15
  assert rows["clean"]["mae"] == pytest.approx(
      json.loads((tmp_path / "eval_metrics.json").read_text())["mae"], abs=1e-4)
  assert rows["dim"]["mae"] != rows["clean"]["mae"]  # the dimmed photos were evaluated
  worst = max(("low_res", "dim"), key=lambda name: rows[name]["mae"])
  assert report["worst"] == worst
  assert rows[worst]["mae_change"] == pytest.approx(rows[worst]["mae"] - rows["clean"]["mae"])
  assert f"worst shift: {worst}, MAE " in result.stdout
  with open(tmp_path / "robustness.csv") as f:
    assert [row["shift"] for row in csv.DictReader(f)] == ["clean", "low_res", "dim"]


def test_an_input_size_below_16_pixels_is_refused_in_one_line(evaluated):
  workdir = evaluated[0]
  line = error_line(run_entry_point(["scripts/eval.py", f"--workdir={workdir}",
                                     "--image_size=4"]))
  assert "flag --image_size=4" in line and ">= 16" in line, line


def test_each_evaluation_gets_its_own_default_folder(evaluated, tmp_path):
  workdir = evaluated[0]
  own = workdir / "eval" / "4" / "validation"
  own.mkdir(parents=True)
  (own / "robustness.csv").write_text("shift,mae\nclean,1.0\n")  # an earlier evaluation's
  portraits.write_synthetic_faces(tmp_path / "till photos", 12, seed=3, image_size=40)
  for args in ([], [f"--data_dir={tmp_path / 'till photos'}", "--flip_tta"]):
    result = run_entry_point(["scripts/eval.py", f"--workdir={workdir}", *args])
    assert result.returncode == 0, result.stderr[-3000:]
  assert json.loads((own / "eval_metrics.json").read_text())["split"] == "validation"
  assert not (own / "robustness.csv").exists()
  other = json.loads((workdir / "eval" / "4" / "till-photos_all_flip_tta" /
                      "eval_metrics.json").read_text())
  assert (other["count"], other["flip_tta"], other["split"]) == (12, True, "all")
