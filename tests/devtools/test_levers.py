"""scripts/benchmark_levers.py at tiny sizes, and its levers. No assertion is about speed."""

import json
import math
import re

import pytest
from conftest import run_entry_point

from ageflax.core.errors import ConfigError
from ageflax.devtools.bench import benchmarks, levers
from configs import tiny

_TINY = ["scripts/benchmark_levers.py", "--config=configs/tiny.py", "--image_size=32",
         "--batch_size=8", "--repeats=2", "--steps=1"]


@pytest.fixture(scope="module")
def lever_run(tmp_path_factory):
  output = tmp_path_factory.mktemp("levers") / "levers.json"
  result = run_entry_point([*_TINY, "--levers=baseline,bfloat16,batch32,xla_fast_math",
                            f"--output={output}"], timeout=400)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout, json.loads(output.read_text())


def test_every_lever_gets_a_row_with_its_ratio_to_the_baseline(lever_run):
  stdout, table = lever_run
  assert list(table["levers"]) == ["baseline", "bfloat16", "batch32", "xla_fast_math"]
  for name, row in table["levers"].items():
    assert not row["failure"], row
    assert all(math.isfinite(v) and v > 0 for v in (*row["values"], row["ratio"]))
    # The baseline's rounds beside each of the two levers in this process, pooled.
    assert len(row["values"]) == (4 if name == "baseline" else 2)
    printed = re.search(rf"^{name} .* {row['median']:.1f}  \S+ +{row['ratio']:.2f}  ", stdout,
                        re.M)
    assert printed, stdout
  assert table["levers"]["baseline"]["ratio"] == 1.0
  assert "XLA_FLAGS --xla_cpu_enable_fast_math=true" in table["levers"]["xla_fast_math"]["what"]


def test_a_lever_that_fails_in_its_child_process_gets_a_failed_row(monkeypatch):
  monkeypatch.setitem(levers.LEVERS, "xla_broken", levers.Lever("broken", xla_flags="--x"))
  row = levers._child_row(levers.LEVERS["xla_broken"], ["false"], levers.Timing())
  assert row == {"failure": "exit 1: no output"}


def test_levers_override_the_config_and_bad_values_name_the_field():
  config = benchmarks.configure(tiny.get_config())
  changed = levers.with_lever(config, levers.LEVERS["batch128"])
  assert changed.train.batch_size == 128 and config.train.batch_size != 128
  assert levers.with_lever(config, levers.LEVERS["bfloat16"]).model.dtype == "bfloat16"
  with pytest.raises(ConfigError, match=r"train\.batch_size"):
    levers.with_lever(config, levers.Lever("bad", (("train.batch_size", 0),)))
  with pytest.raises(ConfigError, match=r"--levers: unknown \['warp'\]"):
    levers.check_levers(["baseline", "warp"])
