"""SIGTERM/SIGINT mid-run: a committed checkpoint, exit 0, and an exact resume."""

import signal

import numpy as np
from conftest import (
  final_arrays,
  run_entry_point,
  run_until_signalled,
  tiny_train_args,
  write_face_folder,
)

_OVERRIDES = [
  "--config.train.num_epochs=12",
  "--config.train.log_every_steps=5",
  "--config.checkpoint.every_steps=1000",
  "--config.eval.every_epochs=4",
]


def _final_validation(log: str) -> str:
  line = [line for line in log.splitlines() if "validation MAE" in line][-1]
  return line.split("]", 1)[1].split("(")[0]


def _stopped_step(returncode: int, log: str, signum: int) -> int:
  assert returncode == 0, log[-3000:]
  stopped = [line for line in log.splitlines() if "stopped by" in line]
  assert len(stopped) == 1 and signal.Signals(signum).name in stopped[0], log[-3000:]
  return int(stopped[0].split("after step ")[1].split(" ")[0])


def test_sigterm_saves_exits_cleanly_and_the_rerun_ends_where_an_uninterrupted_run_does(
  tmp_path, face_folder
):
  args = tiny_train_args(face_folder, tmp_path / "run", *_OVERRIDES)
  step = _stopped_step(*run_until_signalled(args, signal.SIGTERM, "step 20/60"), signal.SIGTERM)
  assert 20 <= step < 60
  assert (tmp_path / "run" / "checkpoints" / str(step)).is_dir()
  resumed = run_entry_point(args)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert f"resumed from step {step}" in resumed.stderr
  uninterrupted = run_entry_point(tiny_train_args(face_folder, tmp_path / "whole", *_OVERRIDES))
  # Data order and augmentation depend on (seed, step) only: the runs end identical, bit for bit.
  assert _final_validation(resumed.stderr) == _final_validation(uninterrupted.stderr)
  for a, b in zip(final_arrays(tmp_path / "run"), final_arrays(tmp_path / "whole"), strict=True):
    np.testing.assert_array_equal(a, b)


def test_ctrl_c_saves_and_exits_cleanly(tmp_path, face_folder):
  args = tiny_train_args(face_folder, tmp_path / "run", *_OVERRIDES)
  step = _stopped_step(*run_until_signalled(args, signal.SIGINT, "step 10/60"), signal.SIGINT)
  assert (tmp_path / "run" / "checkpoints" / str(step)).is_dir()


def test_sigterm_while_starting_up_is_one_line(tmp_path):
  args = tiny_train_args(write_face_folder(tmp_path / "faces", 40), tmp_path / "run")
  status, log = run_until_signalled(args, signal.SIGTERM, "mesh data=")
  assert status == 128 + signal.SIGTERM, log[-2000:]
  assert log.strip().splitlines()[-1].startswith("stopped by SIGTERM outside the training loop")
  assert "Traceback" not in log
