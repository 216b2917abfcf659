"""scripts/calibrate_policy.py end to end on a tiny dex run trained here: the policy file and
its plot, predict.py and eval.py using it, and one-line errors for bad input."""

import json
import re

import numpy as np
import pytest
from conftest import (
  error_line,
  run_entry_point,
  tiny_train_args,
  write_face_folder,
  write_jpeg,
  write_labels,
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """A tiny dex run, and a 'store camera' folder of 40 13-17-year-olds and 40 adults."""
  root = tmp_path_factory.mktemp("calibrate")
  write_face_folder(root / "faces", 60)
  workdir = root / "dex"
  trained = run_entry_point(tiny_train_args(
      root / "faces", workdir, "--config.train.num_steps=4", "--config.model.head=dex",
      "--config.train.loss=dex", "--config.train.label_sigma=2"))
  assert trained.returncode == 0, trained.stderr[-3000:]
  store = root / "store"
  rng, rows = np.random.default_rng(3), []
  for i in range(80):
    age = 13 + i % 5 if i < 40 else int(rng.integers(18, 80))
    write_jpeg(store / "final_files" / f"{i:04d}.jpg", age, rng)
    rows.append((f"{i:04d}.jpg", age))
  write_labels(store, rows)
  return {"root": root, "workdir": workdir, "store": store,
          "photos": [str(store / "final_files" / f"{i:04d}.jpg") for i in (0, 50)]}


def _calibrate(run, *flags: str):
  return run_entry_point(["scripts/calibrate_policy.py", f"--workdir={run['workdir']}",
                          f"--data_dir={run['store']}", *flags])


def test_too_few_protected_photos_refuses_in_one_line(run):
  line = error_line(_calibrate(run, "--max_pass_rate=0.01", "--confidence=0.95"))
  assert "40 protected photos cannot support at most 1% passing at 95% confidence" in line
  assert "408 protected photos" in line
  assert not (run["workdir"] / "id_policy.json").exists()


@pytest.mark.parametrize("flag, message", [
    ("--max_pass_rate=1.5", "--max_pass_rate must lie strictly between 0 and 1"),
    ("--confidence=0", "--confidence must lie strictly between 0 and 1"),
    ("--protected_ages=teens", "--protected_ages='teens' does not parse"),
    ("--protected_ages=13-19", "--protected_ages=13-19: the range must .* below the legal age"),
    ("--protected_ages=0-5", "no protected customers .*--protected_ages"),
    ("--rules=height", "--rules: unknown rule 'height'"),
])
def test_bad_input_is_one_line_naming_the_flag(run, flag, message):
  line = error_line(_calibrate(run, "--max_pass_rate=0.2", flag))
  assert re.search(message, line), line


def test_calibrated_policy_is_written_and_used_by_predict_and_eval(run, tmp_path):
  result = _calibrate(run, "--max_pass_rate=0.2", "--confidence=0.9")
  assert result.returncode == 0, result.stderr[-3000:]
  policy = json.loads((run["workdir"] / "id_policy.json").read_text())
  assert policy["target"] == {"max_pass_rate": 0.2, "confidence": 0.9, "protected_ages": "13-17"}
  assert policy["calibration"]["protected"] == 40 and policy["calibration"]["adults"] == 40
  assert policy["guarantee"]["upper_bound"] <= 0.2 and policy["guarantee"]["meets_target"]
  assert policy["realized"]["protected_passed"]["of"] == 40
  assert (run["workdir"] / "id_policy_tradeoff.png").stat().st_size > 10_000
  assert "guarantee: with 90% confidence at most" in result.stdout
  out = tmp_path / "ages.json"
  predicted = run_entry_point(["scripts/predict.py", f"--workdir={run['workdir']}",
                               *run["photos"], f"--output={out}"])
  assert predicted.returncode == 0, predicted.stderr[-3000:]
  about = json.loads(out.read_text())["about"]
  assert "calibrated: at most 20% of 13-17 pass at 90% confidence" in about["policy"]
  assert policy["rule"]["describe"].split(";")[0] == about["policy"].split(";")[0]
  evaluated = run_entry_point(["scripts/eval.py", f"--workdir={run['workdir']}",
                               f"--data_dir={run['store']}", f"--output_dir={tmp_path}/eval"])
  assert evaluated.returncode == 0, evaluated.stderr[-3000:]
  metrics = json.loads((tmp_path / "eval" / "eval_metrics.json").read_text())
  calibrated, fixed = metrics["id_policies"]
  assert "calibrated" in calibrated["policy"] and "under 25" in fixed["policy"]
  # The same photos as the calibration: the same realized rate.
  assert calibrated["protected_passed"] == policy["realized"]["protected_passed"]
  assert "95% CI" in evaluated.stdout


def test_a_corrupt_or_foreign_policy_file_stops_prediction(run, tmp_path):
  path = run["workdir"] / "id_policy.json"
  assert _calibrate(run, "--max_pass_rate=0.2", "--confidence=0.9").returncode == 0
  good = json.loads(path.read_text())
  predict = ["scripts/predict.py", f"--workdir={run['workdir']}", *run["photos"]]
  path.write_text(json.dumps(dict(good, run=dict(good["run"], step=999))))
  line = error_line(run_entry_point(predict))
  assert f"{path} belongs to another run or checkpoint (step 999" in line
  path.write_text("{not json")
  assert f"{path} is not a readable ID policy" in error_line(run_entry_point(predict))
  overridden = run_entry_point([*predict, "--challenge_age=25"])
  assert overridden.returncode == 0 and "set by --challenge_age/--max_risk" in overridden.stderr
  path.write_text(json.dumps(good))
  assert (f"--flip_tta: {path} was calibrated without flip TTA; drop the flag"
          in error_line(run_entry_point([*predict, "--flip_tta"])))
