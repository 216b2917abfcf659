"""Two local processes (2 CPU devices each, gloo collectives) train like one with 4 devices."""

import subprocess
import sys

import numpy as np
from conftest import (
  REPO,
  final_arrays,
  free_port,
  run_entry_point,
  subprocess_env,
  tiny_train_args,
  write_face_folder,
)


def _start(args: list[str], devices: int) -> subprocess.Popen:
  return subprocess.Popen(
    [sys.executable, *args],
    cwd=REPO,
    env=subprocess_env(devices),
    text=True,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
  )


def _validation_figures(log: str) -> str:
  line = [line for line in log.splitlines() if "validation MAE" in line][-1]
  return line.split("validation MAE")[1].split("(")[0]


def test_two_processes_match_one_process_with_four_devices(tmp_path):
  data = write_face_folder(tmp_path / "faces", 60)
  overrides = ["--config.train.num_epochs=1"]
  single = run_entry_point(tiny_train_args(data, tmp_path / "one", *overrides), devices=4)
  assert single.returncode == 0, single.stderr[-3000:]
  port = free_port()
  processes = [
    _start(
      [
        *tiny_train_args(data, tmp_path / "two", *overrides),
        f"--coordinator_address=localhost:{port}",
        "--num_processes=2",
        f"--process_id={index}",
      ],
      devices=2,
    )
    for index in range(2)
  ]
  logs = [process.communicate(timeout=300)[1] for process in processes]
  for process, log in zip(processes, logs, strict=True):
    assert process.returncode == 0, log[-3000:]
  assert "4 devices (cpu), mesh data=4, 1 process" in single.stderr
  assert "4 devices (cpu), mesh data=4, 2 processes" in logs[0]
  assert "validation MAE" in logs[0] and "validation MAE" not in logs[1]  # process 0 logs
  assert _validation_figures(logs[0]) == _validation_figures(single.stderr)
  # Same global batches, same mesh: only the all-reduce transport differs (gloo vs in-process).
  for two, one in zip(final_arrays(tmp_path / "two"), final_arrays(tmp_path / "one"),
                      strict=True):
    np.testing.assert_allclose(two, one, rtol=1e-4, atol=1e-5)
