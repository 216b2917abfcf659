"""The per-group breakdown: statistics against hand-computed numbers, the small-group
warnings, its table and CSV, and scripts/calibrate_policy.py and scripts/eval.py reporting
it on a tiny run whose folders carry a group column."""

import csv
import json

import numpy as np
import pytest
from conftest import error_line, run_entry_point, tiny_train_args, write_jpeg, write_labels

from ageflax.evaluate import groups

# Two groups of 12: ten 15-year-olds and two 30-year-olds each.
AGES = np.array(([15.0] * 10 + [30.0] * 2) * 2)
GENDER = np.array(["f"] * 12 + ["m"] * 12, dtype=object)
# f: estimates 2 years high; m: the ten teens 1 low, the adults 4 high.
ESTIMATES = AGES + np.array([2.0] * 12 + [-1.0] * 10 + [4.0] * 2)
# f: one teen passes, both adults are asked; m: no teen passes, one adult is asked.
ASKED = np.array([False] + [True] * 9 + [True, True] + [True] * 10 + [True, False])


def _breakdown(min_photos: int) -> list[dict]:
  return groups.breakdown({"gender": GENDER}, AGES, ESTIMATES, [("rule", ASKED)],
                          legal_age=18, protected_ages=(13, 17), min_photos=min_photos)


def test_the_bias_interval_is_students_t():
  # Mean 2.5, s = sqrt(5/3), t(0.975, 3) = 3.182446: 2.5 -+ 3.182446 * 1.290994 / 2.
  assert groups.mean_interval(np.array([1.0, 2.0, 3.0, 4.0])) == pytest.approx(
      [0.445740, 4.554260], abs=1e-6)
  assert groups.mean_interval(np.array([3.0])) is None


def test_errors_and_rates_per_group_match_hand_computed_numbers():
  female, male = _breakdown(min_photos=10)
  assert (female["field"], female["value"], female["photos"]) == ("gender", "f", 12)
  assert female["mae"] == pytest.approx(2) and female["bias"] == pytest.approx(2)
  assert female["bias_interval"] == pytest.approx([2, 2])  # every error the same
  assert male["mae"] == pytest.approx((10 * 1 + 2 * 4) / 12)
  assert male["bias"] == pytest.approx((-10 + 8) / 12)
  assert not female["too_small"] and female["warning"] is None
  (female_rule,), (male_rule,) = female["policies"], male["policies"]
  # Exact Clopper-Pearson 95% intervals, as tabulated: 1/10 (0.0025, 0.4450),
  # 0/10 (0, 1 - 0.025 ** 0.1 = 0.3085), 2/2 (sqrt(0.025) = 0.1581, 1), 1/2 (0.0126, 0.9874).
  assert female_rule["protected_passed"] == {
      "count": 1, "of": 10, "share": 0.1, "interval": pytest.approx([0.002529, 0.445016],
                                                                     abs=1e-6)}
  assert male_rule["protected_passed"]["interval"] == pytest.approx([0, 0.308497], abs=1e-6)
  assert female_rule["adults_asked"]["interval"] == pytest.approx([0.158114, 1], abs=1e-6)
  assert male_rule["adults_asked"] == {
      "count": 1, "of": 2, "share": 0.5, "interval": pytest.approx([0.012579, 0.987421],
                                                                    abs=1e-6)}
  assert not female_rule["too_few_protected"] and female_rule["warning"] is None


def test_groups_too_small_to_judge_are_warned_about_not_ranked():
  female, _ = _breakdown(min_photos=11)  # 12 photos are enough, 10 protected are not
  assert not female["too_small"]
  assert female["policies"][0]["too_few_protected"]
  assert female["policies"][0]["warning"] == ("pass rate too small to judge: 10 aged 13-17, "
                                              "fewer than 11")
  female, _ = _breakdown(min_photos=13)
  assert female["too_small"] and female["warning"] == ("too small to judge: 12 photos, "
                                                       "fewer than 13")
  text = groups.format_breakdown(_breakdown(min_photos=13), (13, 17))
  assert "gender=f" in text and "too small to judge: 12 photos, fewer than 13" in text
  assert "  gender=f" + " " * 16 + "      12  too small" in text


def test_the_table_and_csv_show_every_figure(tmp_path):
  entries = _breakdown(min_photos=10)
  lines = groups.format_breakdown(entries, (13, 17)).splitlines()
  female = next(line for line in lines if line.startswith("  gender=f") and "MAE" not in line)
  assert female.split()[:4] == ["gender=f", "12", "2.00", "+2.00"]
  assert "ID policy by group: rule" in lines
  assert any(line.split()[:3] == ["gender=f", "1/10", "10.00%"] and "(0.25-44.50%)" in line
             for line in lines)
  groups.write_csv(entries, tmp_path / "groups.csv")
  with open(tmp_path / "groups.csv") as f:
    rows = list(csv.DictReader(f))
  assert [(r["value"], r["photos"], r["protected_passed"], r["protected"]) for r in rows] == [
      ("f", "12", "1", "10"), ("m", "12", "0", "10")]
  assert float(rows[1]["pass_high"]) == pytest.approx(0.308497, abs=1e-6)


def test_photos_without_a_field_are_unknown_and_listed_last():
  values = groups.values_by_field([(("site", "b"),), (), (("site", "a"),)])
  assert list(values["site"]) == ["b", "unknown", "a"]
  entries = groups.breakdown(values, np.array([20.0, 30, 40]), np.array([21.0, 30, 40]), [],
                             18, (13, 17), 1)
  assert [(e["value"], e["photos"]) for e in entries] == [("a", 1), ("b", 1), ("unknown", 1)]
  assert groups.values_by_field([(), ()]) == {}


def _write_folder(directory, count, seed):
  """Photos with a 'camera' column: half 13-17, half adults; even rows 'front', odd 'back',
  but the last one is blank ('unknown')."""
  rng, rows = np.random.default_rng(seed), []
  for i in range(count):
    age = 13 + i % 5 if i < count // 2 else int(rng.integers(18, 80))
    write_jpeg(directory / "final_files" / f"{i:04d}.jpg", age, rng)
    camera = "" if i == count - 1 else ("front", "back")[i % 2]
    rows.append((f"{i:04d}.jpg", age, camera))
  write_labels(directory, rows, header=("file_name", "real_age", "camera"))
  return directory


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """A tiny dex run trained with data.group_columns='camera', and a store folder of 80."""
  root = tmp_path_factory.mktemp("groups")
  workdir = root / "run"
  trained = run_entry_point(tiny_train_args(
      _write_folder(root / "faces", 60, seed=0), workdir, "--config.train.num_steps=4",
      "--config.model.head=dex", "--config.train.loss=dex", "--config.train.label_sigma=2",
      "--config.data.group_columns=camera", "--config.eval.min_group_photos=15"))
  assert trained.returncode == 0, trained.stderr[-3000:]
  return {"workdir": workdir, "store": _write_folder(root / "store", 80, seed=1), "root": root}


def test_calibration_and_eval_report_each_group(run):
  calibrated = run_entry_point([
      "scripts/calibrate_policy.py", f"--workdir={run['workdir']}", f"--data_dir={run['store']}",
      "--max_pass_rate=0.2", "--confidence=0.9", "--group_columns=camera"])
  assert calibrated.returncode == 0, calibrated.stderr[-3000:]
  policy = json.loads((run["workdir"] / "id_policy.json").read_text())
  by_value = {e["value"]: e for e in policy["groups"]}
  assert [e["value"] for e in policy["groups"]] == ["back", "front", "unknown"]
  assert [by_value[v]["photos"] for v in ("back", "front", "unknown")] == [39, 40, 1]
  assert [p["protected_passed"]["of"] for p in by_value["front"]["policies"]] == [20, 20]
  assert by_value["unknown"]["too_small"] and "camera=unknown" in calibrated.stdout
  out = run["root"] / "eval"
  # No --group_columns: the run's own data.group_columns names the store's column too.
  evaluated = run_entry_point(["scripts/eval.py", f"--workdir={run['workdir']}",
                               f"--data_dir={run['store']}", f"--output_dir={out}"])
  assert evaluated.returncode == 0, evaluated.stderr[-3000:]
  metrics = json.loads((out / "eval_metrics.json").read_text())
  assert [(e["value"], e["photos"]) for e in metrics["groups"]] == [
      ("back", 39), ("front", 40), ("unknown", 1)]
  assert sum(e["photos"] for e in metrics["groups"]) == metrics["count"] == 80
  for entry in metrics["groups"]:  # the same photos and rule: the calibration's counts
    assert entry["policies"][0]["protected_passed"] == (
        by_value[entry["value"]]["policies"][0]["protected_passed"])
    assert "calibrated" in entry["policies"][0]["policy"]
    assert "under 25" in entry["policies"][1]["policy"]
  assert "too small to judge: 1 photos, fewer than 15" in evaluated.stdout
  assert any(line.startswith("  camera=front") and line.split()[1] == "40"
             for line in evaluated.stdout.splitlines())
  with open(out / "groups.csv") as f:
    rows = list(csv.DictReader(f))
  assert [(r["value"], r["photos"]) for r in rows] == [
      ("back", "39"), ("back", "39"), ("front", "40"), ("front", "40"), ("unknown", "1"),
      ("unknown", "1")]


def test_a_group_column_the_folder_lacks_is_one_line(run):
  line = error_line(run_entry_point(["scripts/eval.py", f"--workdir={run['workdir']}",
                                     f"--data_dir={run['store']}", "--group_columns=gender"]))
  assert str(run["store"] / "labels.csv") in line and "missing column(s) gender" in line
