"""Records give one stream on any number of hosts: a run resumed on another topology ends
where an uninterrupted one does, and evaluation shared by two hosts counts every photo once."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import (
  REPO,
  data_config,
  final_arrays,
  free_port,
  subprocess_env,
  tiny_train_args,
  write_face_folder,
)

from ageflax.data import tfds_records

# A constant rate, so that stopping early (a shorter run) changes nothing but where it ends.
_OVERRIDES = ["--config.data.source=tfds", "--config.optim.schedule=constant",
              "--config.optim.warmup_epochs=0", "--config.checkpoint.every_steps=1000"]


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> str:
  tmp_path = tmp_path_factory.mktemp("records")
  folder = write_face_folder(tmp_path / "faces", 40)
  return tfds_records.write_records(data_config(folder), str(folder), str(tmp_path / "records"),
                                    "test").data_dir


def _run(args: list[str], processes: int) -> list[str]:
  """Runs `python ARGS` as `processes` gloo processes of one job on 2 CPU devices in all."""
  job = [f"--coordinator_address=localhost:{free_port()}", f"--num_processes={processes}"]
  started = [subprocess.Popen(
      [sys.executable, *args, *([*job, f"--process_id={index}"] if processes > 1 else [])],
      cwd=REPO, env=subprocess_env(2 // processes), text=True, stdout=subprocess.PIPE,
      stderr=subprocess.PIPE) for index in range(processes)]
  logs = [process.communicate(timeout=300)[1] for process in started]
  for process, log in zip(started, logs, strict=True):
    assert process.returncode == 0, log[-3000:]
  return logs


def _train(records: str, workdir, num_steps: int, processes: int) -> str:
  args = tiny_train_args(records, workdir, *_OVERRIDES, f"--config.train.num_steps={num_steps}",
                         "--allow_config_change")
  return _run(args, processes)[0]


def test_a_run_moved_between_one_and_two_hosts_ends_where_one_host_does(tmp_path, records):
  whole = _train(records, tmp_path / "whole", 12, processes=1)
  # 2 hosts, stopped after step 4; resumed on 1 host to step 8; then on 2 hosts again.
  for num_steps, processes in ((4, 2), (8, 1), (12, 2)):
    moved = _train(records, tmp_path / "moved", num_steps, processes)
    assert f"mesh data=2, {processes} process" in moved
  assert "resumed from step 8" in moved
  assert _validation(moved) == _validation(whole)
  # The same global batches; only the all-reduce transport differs (gloo vs in-process).
  for a, b in zip(final_arrays(tmp_path / "moved"), final_arrays(tmp_path / "whole"),
                  strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _validation(log: str) -> str:
  return [line for line in log.splitlines() if "validation MAE" in line][-1].split(
      "validation MAE")[1].split("(")[0]


def test_two_hosts_share_evaluation_and_count_every_photo_once(tmp_path, records):
  _run(["tests/records_eval_run.py", records, str(tmp_path / "one")], processes=1)
  _run(["tests/records_eval_run.py", records, str(tmp_path / "two")], processes=2)
  single = np.load(tmp_path / "one.0.npz")
  shared = [np.load(tmp_path / f"two.{index}.npz") for index in range(2)]
  # 10 validation photos in 2 padded batches of 8: host 0 reads rows 0-3 and 8-9, host 1 4-7.
  assert [int(host["rows_read"]) for host in shared] == [6, 4] and single["rows_read"] == 10
  for host in shared:
    assert host["count"] == single["count"] == 10  # every photo counted once
    np.testing.assert_array_equal(host["index"], single["index"])
    np.testing.assert_array_equal(host["prediction"], single["prediction"])
    np.testing.assert_allclose(host["sum_abs_error"], single["sum_abs_error"], rtol=1e-6)
