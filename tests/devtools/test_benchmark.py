"""scripts/benchmark.py at tiny settings, and the timing and counting it is built from.

No assertion is about speed: a shared 2-core machine gives no stable figure. The tests check
that every section reports positive, finite figures and that the ratio lines are printed.
"""

import importlib.util
import json
import math
import re

import pytest
from conftest import error_line, run_entry_point

from ageflax.core.errors import ConfigError
from ageflax.devtools.bench import benchmarks, peers, report, timing
from ageflax.model import architectures
from configs import tiny

_TINY = ["scripts/benchmark.py", "--model=_resnet_tiny", "--image_size=32", "--batch_size=8",
         "--repeats=2", "--steps=1", "--synthetic_faces=40", "--pipeline_batches=2",
         "--matmul_size=128"]
_TORCH = importlib.util.find_spec("torch") is not None
_PEERS = ["keras", "torch"] if _TORCH else ["keras"]

_WITHOUT_TENSORFLOW = """
import runpy, sys
sys.modules["tensorflow"] = None  # any import of TensorFlow now raises ImportError
sys.argv = {argv!r}
runpy.run_path("scripts/benchmark.py", run_name="__main__")
"""


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
  output = tmp_path_factory.mktemp("benchmark") / "report.json"
  result = run_entry_point([*_TINY, f"--output={output}"], timeout=240)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout, json.loads(output.read_text())


def _assert_positive_figure(entry: dict, count: int) -> None:
  values = [entry["median"], entry["min"], entry["max"], *entry["values"]]
  assert all(math.isfinite(v) and v > 0 for v in values), entry
  assert entry["min"] <= entry["median"] <= entry["max"]
  assert len(entry["values"]) == count


def test_every_section_reports_positive_finite_figures(tiny_run):
  _, report = tiny_run
  sections = report["sections"]
  assert set(sections["input_pipeline"]) == {"prepare", "ageflax", "ageflax_uncached",
                                             "ageflax_device_augment", "plain"}
  assert set(sections["train_step"]) == {"ageflax", "ageflax_device_augment", *_PEERS}
  assert set(sections["end_to_end"]) == {"ageflax", *_PEERS}
  expected_utilisation = {"matmul", *(f"{section} {name}" for section, names in (
      ("train_step", sections["train_step"]), ("end_to_end", sections["end_to_end"]))
      for name in names)}
  assert set(sections["utilisation"]) == expected_utilisation
  for section, entries in sections.items():
    for name, entry in entries.items():
      _assert_positive_figure(entry, count=1 if name == "prepare" else 2)
      if section == "input_pipeline":
        _assert_positive_figure(entry["per_core"], count=1 if name == "prepare" else 2)
  assert sections["train_step"]["ageflax"]["compile_seconds"] > 0
  assert sections["train_step"]["ageflax_device_augment"]["compile_seconds"] > 0
  for name in _PEERS:
    assert sections["train_step"][name]["first_step_seconds"] > 0
  fractions = [entry["fraction"] for name, entry in sections["utilisation"].items()
               if name != "matmul"]
  assert all(math.isfinite(f) and f > 0 for f in fractions)
  assert report["settings"]["model"] == "_resnet_tiny"
  assert report["settings"]["image_size"] == 32 and report["settings"]["batch_size"] == 8


def test_ratio_lines_are_printed_as_in_the_json(tiny_run):
  stdout, report = tiny_run
  printed = dict(re.findall(r"^ratio (\S+ \S+): (\d+\.\d\d)$", stdout, re.MULTILINE))
  expected = {"input_pipeline ageflax/plain", "input_pipeline ageflax_uncached/plain",
              "input_pipeline ageflax_device_augment/plain",
              "train_step ageflax_device_augment/ageflax",
              *(f"{section} ageflax/{peer}" for section in ("train_step", "end_to_end")
                for peer in _PEERS)}
  assert set(printed) == set(report["ratios"]) == expected
  for name, value in report["ratios"].items():
    assert printed[name] == f"{value:.2f}" and value > 0
  if not _TORCH:
    assert "note: torch peer skipped" in stdout


def test_the_train_step_section_runs_without_tensorflow(tmp_path):
  output = tmp_path / "report.json"
  argv = [*_TINY, "--sections=train_step,utilisation,peers", "--peers=keras",
          f"--output={output}"]
  result = run_entry_point(["-c", _WITHOUT_TENSORFLOW.format(argv=argv)], timeout=120)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "note: keras peer skipped" in result.stdout
  report = json.loads(output.read_text())
  assert set(report["sections"]) == {"train_step", "utilisation"}
  for name in ("ageflax", "ageflax_device_augment"):  # augmenting on the device needs no TF
    _assert_positive_figure(report["sections"]["train_step"][name], count=2)
  assert set(report["ratios"]) == {"train_step ageflax_device_augment/ageflax"}


def test_an_unknown_section_is_a_one_line_error():
  result = run_entry_point(["scripts/benchmark.py", "--sections=train_step,warp"], timeout=60)
  assert "--sections: unknown ['warp']" in error_line(result)


def test_rounds_take_turns_and_time_every_runner_once_per_round():
  calls = []
  runners = {name: (lambda num_steps, name=name: calls.append((name, num_steps)))
             for name in ("a", "b", "c")}
  figures = timing.interleaved_rates(runners, steps=2, repeats=3, items_per_step=8)
  assert [name for name, _ in calls] == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
  assert {steps for _, steps in calls} == {2}
  assert all(len(f.values) == 3 and f.median > 0 for f in figures.values())


def test_the_torch_resnet50_has_the_reference_parameter_count():
  torch = pytest.importorskip("torch")
  model = peers.torch_resnet("resnet50")
  head = 2048 + 1
  assert sum(p.numel() for p in model.parameters()) - head == 23_508_032
  images = torch.zeros(2, 3, 64, 64).contiguous(memory_format=torch.channels_last)
  assert model(images).shape == (2,)


def test_bad_options_are_config_errors():
  with pytest.raises(ConfigError, match="--peers: unknown"):
    benchmarks.check_options(benchmarks.Options(peers=("mxnet",)))
  with pytest.raises(ConfigError, match="--repeats must be at least 1"):
    benchmarks.check_options(benchmarks.Options(repeats=0))


def test_named_settings_set_model_size_and_batch_and_keep_the_rest():
  base = tiny.get_config()
  base.model.conv_impl = "matmul"
  configs = benchmarks.configure_settings(base, ["study", "cpu45"])
  assert [(c.model.name, c.data.image_size, c.train.batch_size) for c in configs.values()] == [
      ("resnet50", 128, 32), ("resnet18", 64, 64)]
  assert all(c.model.conv_impl == "matmul" for c in configs.values())
  with pytest.raises(ConfigError, match=r"--settings: unknown \['laptop'\]"):
    benchmarks.configure_settings(base, ["cpu45", "laptop"])


def test_several_reports_are_written_by_setting(tmp_path):
  reports = {name: report.Report({"title": name}) for name in ("study", "cpu45")}
  report.write_reports(str(tmp_path / "r.json"), reports)
  written = json.loads((tmp_path / "r.json").read_text())
  assert list(written["reports"]) == ["study", "cpu45"]
  assert written["reports"]["cpu45"]["settings"] == {"title": "cpu45"}


def test_the_torch_peer_autocasts_to_bf16_where_ageflax_computes_in_bfloat16():
  torch = pytest.importorskip("torch")
  config = tiny.get_config()
  config.model.dtype = "bfloat16"
  batch = timing.synthetic_batch(4, 32)
  peer = peers.TorchPeer(config, batch)
  computed = []
  for module in peer.model.modules():
    if isinstance(module, torch.nn.Conv2d | torch.nn.Linear):
      module.register_forward_hook(lambda module, args, out: computed.append(out.dtype))
  peer.run(1)
  assert "bf16 autocast" in peer.description
  assert computed and set(computed) == {torch.bfloat16}
  assert torch.get_num_threads() == report.cores()
  assert all(p.dtype == torch.float32 for p in peer.model.parameters())


@pytest.mark.parametrize("name", sorted(peers.KERAS_APPLICATIONS))
def test_keras_applications_have_the_tables_blocks_per_stage(name):
  keras = pytest.importorskip("keras")
  application = getattr(keras.applications, peers.KERAS_APPLICATIONS[name])
  model = application(weights=None, include_top=False, input_shape=(64, 64, 3))
  # Keras names each block's sum convS_blockB_add, S = 2 for the first stage.
  blocks = [layer.name.split("_")[0] for layer in model.layers if layer.name.endswith("_add")]
  stage_sizes = tuple(blocks.count(f"conv{stage + 2}") for stage in range(4))
  assert stage_sizes == architectures.get(name).stage_sizes
  assert model.output_shape[-1] == architectures.get(name).num_features

