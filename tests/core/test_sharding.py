"""Data parallelism: 1, 2 and 4 forced host devices train to the same parameters."""

import jax
import numpy as np
import pytest
from conftest import run_entry_point

from ageflax.core import sharding
from ageflax.core.errors import ConfigError


def _sharded_run(tmp_path, devices: int) -> dict:
  out = tmp_path / f"run{devices}.npz"
  result = run_entry_point(["tests/sharded_run.py", str(out)], devices=devices)
  assert result.returncode == 0, result.stderr[-3000:]
  return dict(np.load(out))


def test_one_two_and_four_devices_reach_the_same_parameters(tmp_path):
  runs = {n: _sharded_run(tmp_path, n) for n in (1, 2, 4)}
  for n, run in runs.items():
    assert int(run["devices"]) == n
    assert int(run["traces"]) == 1  # the sharded step compiled once
  leaves = sorted(k for k in runs[1] if k.startswith("leaf"))
  for n in (2, 4):
    np.testing.assert_allclose(runs[n]["losses"], runs[1]["losses"], rtol=1e-5)
    for key in leaves:
      # Reductions split across devices sum in another order: float32 rounding only.
      np.testing.assert_allclose(runs[n][key], runs[1][key], rtol=2e-4, atol=2e-5)


def test_batch_size_must_split_over_the_devices():
  mesh = sharding.create_mesh()
  sharding.check_batch_size(8, mesh, "train.batch_size")
  with pytest.raises(ConfigError, match=r"train\.batch_size=0 is not a positive multiple"):
    sharding.check_batch_size(0, mesh, "train.batch_size")


def test_host_rows_cover_the_batch_on_one_process():
  mesh = sharding.create_mesh()
  assert sharding.host_rows(mesh, 16) == (0, 16)
  assert sharding.describe(mesh).startswith(f"{jax.device_count()} device")
