"""Faults a cluster run meets: a busy or unwritable workdir, corrupt checkpoints, kill -9."""

import os
import shutil
import signal
import subprocess

import pytest
from conftest import (
  error_line,
  run_entry_point,
  run_until_signalled,
  tiny_train_args,
  write_face_folder,
)

from ageflax.core.errors import ConfigError
from ageflax.train import checkpoints
from ageflax.train import workdir as workdir_lib


def _steps(workdir) -> list[int]:
  return sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())


def test_a_second_run_on_a_busy_workdir_is_refused(tmp_path, face_folder):
  with workdir_lib.RunLock(str(tmp_path)):
    result = run_entry_point(tiny_train_args(face_folder, tmp_path))
  assert f"is in use by pid {os.getpid()}" in error_line(result)
  with workdir_lib.RunLock(str(tmp_path)), pytest.raises(ConfigError, match="is in use"):
    workdir_lib.RunLock(str(tmp_path)).__enter__()


def test_an_unwritable_workdir_is_an_error_before_training(tmp_path, face_folder):
  (tmp_path / "a_file").write_text("not a directory")
  result = run_entry_point(tiny_train_args(face_folder, tmp_path / "a_file" / "run"))
  assert "is not writable" in error_line(result)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
  root = tmp_path_factory.mktemp("finished")
  data = write_face_folder(root / "faces", 60)
  first = run_entry_point(tiny_train_args(data, root / "run"))
  assert first.returncode == 0, first.stderr[-3000:]
  return data, root / "run"


@pytest.mark.parametrize("damage", ["truncate", "remove_item"])
def test_a_corrupt_latest_checkpoint_falls_back_to_the_previous(tmp_path, finished_run, damage):
  face_folder, finished = finished_run
  workdir = tmp_path / "run"
  shutil.copytree(finished, workdir)
  latest = _steps(workdir)[-1]
  if damage == "truncate":
    for root, _, files in os.walk(workdir / "checkpoints" / str(latest) / "trainer"):
      for name in files:
        with open(os.path.join(root, name), "r+b") as f:
          f.truncate(max(os.path.getsize(f.name) // 3, 1))
  else:
    subprocess.run(["rm", "-r", str(workdir / "checkpoints" / str(latest) / "trainer")], check=True)
  resumed = run_entry_point(
    tiny_train_args(face_folder, workdir, "--config.train.num_epochs=3", "--allow_config_change")
  )
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert f"checkpoint {latest} in" in resumed.stderr and "unreadable" in resumed.stderr
  resumed_step = int(resumed.stderr.split("resumed from step ")[1].split(" ")[0])
  assert 0 < resumed_step < latest  # the previous good checkpoint, not a fresh start
  assert (workdir / "checkpoints" / f"unreadable_{latest}").is_dir()


def test_kill_9_mid_run_resumes_from_the_last_committed_checkpoint(tmp_path, face_folder):
  args = tiny_train_args(
    face_folder,
    tmp_path / "run",
    "--config.train.num_epochs=12",
    "--config.checkpoint.every_steps=5",
    "--config.train.log_every_steps=5",
  )
  returncode, log = run_until_signalled(args, signal.SIGKILL, "step 40/")
  assert returncode == -signal.SIGKILL, log[-3000:]
  # Saves are asynchronous and these steps take milliseconds: the kill may land mid-save.
  committed = _steps(tmp_path / "run")
  assert committed and committed[-1] <= 40
  resumed = run_entry_point(args)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert f"resumed from step {committed[-1]}" in resumed.stderr


def test_eval_predict_and_export_fall_back_past_an_unreadable_best_checkpoint(tmp_path,
                                                                              finished_run):
  face_folder, finished = finished_run
  workdir = tmp_path / "run"
  shutil.copytree(finished, workdir)
  best = checkpoints.Checkpointer(str(workdir), read_only=True).best_step()
  for root, _, files in os.walk(workdir / "checkpoints" / str(best) / "model"):
    for name in files:
      with open(os.path.join(root, name), "r+b") as f:
        f.truncate(max(os.path.getsize(f.name) // 3, 1))
  photo = str(sorted((face_folder / "final_files").iterdir())[0])
  for args in (["scripts/eval.py", f"--workdir={workdir}", f"--output_dir={tmp_path / 'eval'}"],
               ["scripts/predict.py", f"--workdir={workdir}", photo],
               ["scripts/export.py", f"--workdir={workdir}", f"--output_dir={tmp_path / 'x'}"]):
    result = run_entry_point(args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"checkpoint {best} in" in result.stderr and "unreadable" in result.stderr, args[0]
