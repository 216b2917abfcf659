"""train.py and scripts/eval.py end to end, as a user runs them, including bad input."""

import csv
import json

import pytest
from conftest import error_line, run_entry_point, tiny_train_args, write_face_folder
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from ageflax.core.errors import ConfigError
from ageflax.devtools.synthetic import portraits
from ageflax.train import workdir as workdir_lib
from configs import tiny

# As a user's shell runs it: no TensorFlow log level set (the tests' environment sets one).
_AS_A_USER_RUNS_IT = {"TF_CPP_MIN_LOG_LEVEL": None}
# What TensorFlow's C++ runtime prints unasked: absl's pre-initialisation lines, oneDNN,
# CPU features, CUDA plugin factories.
_TENSORFLOW_NOISE = ("I0000", "W0000", "E0000", "oneDNN", "absl::InitializeLog",
                     "cpu_feature_guard", "Unable to register")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """A tiny run of 2 epochs on 60 synthetic faces (45 train = 5 steps per epoch), resumed to 3."""
  root = tmp_path_factory.mktemp("e2e")
  portraits.write_synthetic_faces(root / "faces", 60, seed=0, image_size=40)
  data = root / "faces"
  workdir = root / "run"
  first = run_entry_point(tiny_train_args(data, workdir), extra_env=_AS_A_USER_RUNS_IT)
  refused = run_entry_point(tiny_train_args(data, workdir, "--config.train.num_epochs=3"))
  resumed = run_entry_point(tiny_train_args(data, workdir, "--config.train.num_epochs=3",
                                            "--allow_config_change"))
  return data, workdir, first, resumed, refused


def test_training_logs_devices_progress_and_epochs(trained):
  _, workdir, first, *_ = trained
  assert first.returncode == 0, first.stderr[-3000:]
  log = first.stderr
  assert "1 device (cpu), mesh data=1, 1 process" in log.splitlines()[0] + log
  assert "step 2/10 (epoch 0.40) | loss" in log and "img/s | ETA" in log
  assert log.count("validation MAE") == 2
  assert json.loads((workdir / "config.json").read_text())["model"]["name"] == "_resnet_tiny"
  assert list((workdir / "tensorboard").glob("events.out.tfevents.*"))
  summary = json.loads((workdir / "data_summary.json").read_text())
  assert summary["num_train"] == 45 and summary["num_validation"] == 15


def _noise(log: str) -> list[str]:
  return [line for line in log.splitlines() if any(mark in line for mark in _TENSORFLOW_NOISE)]


def test_training_prints_no_tensorflow_noise_and_names_the_modules_that_log(trained):
  log = trained[2].stderr
  assert _noise(log) == []
  validation = next(line for line in log.splitlines() if "validation MAE" in line)
  progress = next(line for line in log.splitlines() if "step 2/10" in line)
  assert " loop.py:" in validation and " loop.py:" in progress
  assert "summaries.py:" not in log and "progress.py:" not in log


def _events(workdir) -> event_accumulator.EventAccumulator:
  everything = {kind: 0 for kind in (event_accumulator.IMAGES, event_accumulator.HISTOGRAMS,
                                     event_accumulator.TENSORS)}
  events = event_accumulator.EventAccumulator(str(workdir / "tensorboard"), everything)
  events.Reload()
  return events


def test_tensorboard_has_config_hparams_samples_figures_and_histograms(trained):
  events = _events(trained[1])
  assert "config/text_summary" in events.Tags()["tensors"]
  config_text = events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
  assert '"name": "_resnet_tiny"' in config_text
  # One grid at the first step of each process: the first run's and the resumed run's.
  assert [image.step for image in events.Images("train/augmented_samples")] == [1, 11]
  grid = events.Images("train/augmented_samples")[0]
  assert (grid.width, grid.height) == (8 * 32, 32 + 12)
  assert [image.step for image in events.Images("validation/predicted_vs_true")] == [5, 10, 15]
  histograms = events.Tags()["histograms"]
  assert {"weights/head/kernel", "weights/stem_conv/kernel"} <= set(histograms)
  assert [h.step for h in events.Histograms("weights/head/kernel")] == [5, 10, 15]
  hparams = events.PluginTagToContent("hparams")
  start = plugin_data_pb2.HParamsPluginData.FromString(
      hparams["_hparams_/session_start_info"]).session_start_info
  # TensorBoard keeps the first metadata of a tag: the hyper-parameters the run started with,
  # not the resumed run's changed train.num_epochs (its TEXT tab shows both configs).
  assert start.hparams["train.num_epochs"].number_value == 2
  assert start.hparams["model.name"].string_value == "_resnet_tiny"
  experiment = plugin_data_pb2.HParamsPluginData.FromString(
      hparams["_hparams_/experiment"]).experiment
  assert "validation/mae" in [metric.name.tag for metric in experiment.metric_infos]
  assert "validation/mae" in events.Tags()["scalars"]  # the metric the HPARAMS tab shows


def test_history_csv_has_the_rows_of_history_json(trained):
  workdir = trained[1]
  history = json.loads((workdir / "history.json").read_text())
  with open(workdir / "history.csv", newline="") as f:
    rows = list(csv.DictReader(f))
  assert [int(row["step"]) for row in rows] == [record["step"] for record in history] == [5, 10,
                                                                                         15]
  for row, record in zip(rows, history, strict=True):
    assert {name: float(value) for name, value in row.items()} == pytest.approx(record)


def test_resuming_with_a_changed_config_is_refused_unless_allowed(trained):
  refused = trained[4]
  assert "train.num_epochs: 2.0 -> 3.0" in error_line(refused)
  assert "--allow_config_change" in error_line(refused)


def test_rerun_resumes_from_the_latest_checkpoint(trained):
  _, workdir, _, resumed, _ = trained
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert "resumed from step 10" in resumed.stderr
  assert "step 12/15" in resumed.stderr and "step 2/15" not in resumed.stderr
  steps = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
  assert 15 in steps and len(steps) <= 3  # latest 2 + best 1


def test_the_same_seed_trains_the_same_model(trained, tmp_path):
  data, _, first, *_ = trained
  again = run_entry_point(tiny_train_args(data, tmp_path / "again"))
  assert again.returncode == 0, again.stderr[-3000:]
  assert _validation_lines(again.stderr) == _validation_lines(first.stderr)


def _validation_lines(log: str) -> list[str]:
  return [line.split("]", 1)[1].split("(")[0] for line in log.splitlines()
          if "validation MAE" in line]


def test_eval_script_reports_mae_and_writes_predictions(trained, tmp_path):
  _, workdir, *_ = trained
  other = tmp_path / "other"
  portraits.write_synthetic_faces(other, 13, seed=7, image_size=40)
  result = run_entry_point(["scripts/eval.py", f"--workdir={workdir}", f"--data_dir={other}",
                            "--output_dir", str(tmp_path / "out")], extra_env=_AS_A_USER_RUNS_IT)
  assert result.returncode == 0, result.stderr[-3000:]
  assert _noise(result.stderr) == []
  done = next(line for line in result.stderr.splitlines() if "evaluated 13/13 photos |" in line)
  assert " evaluator.py:" in done and "img/s | ETA 0s" in done
  assert "MAE " in result.stdout and " on 13 images" in result.stdout
  assert "predict-the-median baseline" in result.stdout
  metrics = json.loads((tmp_path / "out" / "eval_metrics.json").read_text())
  assert metrics["count"] == 13 and metrics["split"] == "all"
  with open(tmp_path / "out" / "predictions.csv") as f:
    rows = list(csv.DictReader(f))
  assert [r["file_name"] for r in rows] == [f"{i:06d}.jpg" for i in range(13)]
  mae = sum(abs(float(r["real_age"]) - float(r["predicted_age"])) for r in rows) / 13
  assert abs(mae - metrics["mae"]) < 0.01


def test_eval_script_defaults_to_the_runs_validation_split(trained):
  _, workdir, *_ = trained
  result = run_entry_point(["scripts/eval.py", f"--workdir={workdir}"])
  assert result.returncode == 0, result.stderr[-3000:]
  assert " on 15 images" in result.stdout


@pytest.mark.parametrize("overrides, message", [
    (["--config.data.dir=/nonexistent/faces"], "error: data directory /nonexistent/faces does "
                                              "not exist"),
    (["--config.train.batch_sze=8"], "bad config override --config.train.batch_sze: "
                                     "'batch_sze' Did you mean \"batch_size\""),
    (["--config.train.batch_size=x"], "error: flag --config.train.batch_size=x: invalid literal"),
    (["--config.train.loss=l3"], "train.loss must be one of"),
    (["--config.data.bad_rows=error"], "data.bad_rows='error': labels.csv row 22 (gone.jpg): file not found"),
])
def test_bad_input_gets_one_clear_line(tmp_path, overrides, message):
  data = write_face_folder(tmp_path / "faces", 20)
  with open(data / "labels.csv", "a") as f:
    f.write("gone.jpg,30\n")
  args = tiny_train_args(data, tmp_path / "run", *overrides)
  result = run_entry_point(args)
  assert result.returncode != 0
  assert "Traceback" not in result.stderr
  assert message in result.stderr, result.stderr[-2000:]


def test_batch_not_divisible_by_the_devices(tmp_path):
  data = write_face_folder(tmp_path / "faces", 20)
  result = run_entry_point(tiny_train_args(data, tmp_path / "run", "--config.train.batch_size=6"),
                           devices=4)
  assert "train.batch_size=6 is not a positive multiple of the 4 devices" in error_line(result)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
  data = write_face_folder(tmp_path / "faces", 60)
  result = run_entry_point(tiny_train_args(
      data, tmp_path / "run", "--config.optim.learning_rate=1e30",
      "--config.optim.warmup_epochs=0", "--config.checkpoint.every_steps=1"))
  line = error_line(result)
  assert "non-finite loss or gradient at step" in line
  bad_step = int(line.split("at step ")[1].split(";")[0])
  saved = [int(p.name) for p in (tmp_path / "run" / "checkpoints").iterdir() if p.name.isdigit()]
  assert all(step < bad_step for step in saved)


def test_eval_without_checkpoints_is_a_clear_error(tmp_path):
  result = run_entry_point(["scripts/eval.py", f"--workdir={tmp_path}"])
  assert "no checkpoints in" in error_line(result)


def test_a_run_saved_before_a_config_field_existed_resumes(trained, tmp_path):
  data, workdir, *_ = trained
  saved = json.loads((workdir / "config.json").read_text())
  del saved["data"]["augment"]["placement"]  # as written before the field was added
  old = tmp_path / "old"
  old.mkdir()
  (old / "config.json").write_text(json.dumps(saved))
  config = tiny.get_config()
  config.data.dir = str(data)
  config.train.num_epochs = saved["train"]["num_epochs"]
  workdir_lib.check_same_config(str(old), config, allow_changes=False)
  config.data.augment.placement = "device"
  with pytest.raises(ConfigError, match=r"data\.augment\.placement: 'host' -> 'device'"):
    workdir_lib.check_same_config(str(old), config, allow_changes=False)
