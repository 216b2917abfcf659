"""scripts/device_benchmark.sh at tiny sizes on the CPU, with TensorFlow blocked as on the
lent GPU machines, and the pieces it is built from. No assertion is about speed."""

import importlib.util
import re
import subprocess
import sys
import types

import numpy as np
import pytest
from conftest import REPO, subprocess_env

from ageflax.devtools.bench import benchmarks, device
from ageflax.model import architectures
from configs import tiny

_TINY = ["--model=_resnet_tiny", "--image_size=32", "--batch_size=4", "--steps=2", "--repeats=1",
         "--warmup_steps=1"]
_NUMBER = r"(\d+(?:\.\d+)?)"


@pytest.fixture(scope="module")
def device_run(tmp_path_factory) -> str:
  # Python imports sitecustomize from PYTHONPATH at start: TensorFlow is then unimportable.
  blocker = tmp_path_factory.mktemp("no_tensorflow")
  (blocker / "sitecustomize.py").write_text('import sys\nsys.modules["tensorflow"] = None\n')
  env = dict(subprocess_env(1), PYTHON=sys.executable, PYTHONPATH=str(blocker))
  result = subprocess.run(["bash", "scripts/device_benchmark.sh", *_TINY], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout


def test_the_script_prints_every_figure_without_tensorflow(device_run):
  for name in ("ageflax", "ageflax_device_augment"):
    rate = re.search(rf"^train_step {name}: {_NUMBER} images/s \(min-max", device_run, re.M)
    assert rate and float(rate.group(1)) > 0, device_run
    assert re.search(rf"^mfu {name}: n/a \(no peak bf16 FLOP/s known for device kind 'cpu'",
                     device_run, re.M), device_run
  fed = re.search(rf"^end_to_end ageflax_host_fed: {_NUMBER} images/s", device_run, re.M)
  assert fed and float(fed.group(1)) > 0, device_run
  assert "end_to_end train.py: skipped: tensorflow not installed" in device_run
  missing = [name for name in ("torch", "torchvision") if importlib.util.find_spec(name) is None]
  if missing:
    assert f"train_step torch: skipped: {missing[0]} not installed" in device_run
  else:  # torchvision has no test-only tiny ResNet
    assert "train_step torch: skipped: Unknown model _resnet_tiny" in device_run


def test_peak_flops_come_from_the_device_kind_or_the_flag():
  assert device.peak_flops("NVIDIA H100 80GB HBM3") == 989e12
  assert device.peak_flops("NVIDIA H100 PCIe") == 756e12
  assert device.peak_flops("NVIDIA H200") == 989e12
  assert device.peak_flops("cpu") is None
  assert device.peak_flops("cpu", override=1e12) == 1e12


def test_mfu_is_images_times_the_known_flops_over_the_peak():
  config = benchmarks.configure(tiny.get_config(), model="resnet50", image_size=224)
  per_image = architectures.train_flops_per_image("resnet50", 224)
  assert 24e9 < per_image < 25e9
  figures = {"ageflax": device.Figure((1000.0, 1000.0))}
  (line,) = device._mfu_lines(config, device.DeviceOptions(peak_flops=989e12), figures)
  assert line.startswith(f"mfu ageflax: {1000 * per_image / 989e12:.3f} ({per_image / 1e9:.2f} "
                         "GFLOP per image, peak 989 TFLOP/s"), line


def test_the_torchvision_peer_trains_with_bf16_autocast_and_channels_last(monkeypatch):
  torch = pytest.importorskip("torch")

  def get_model(name, num_classes):
    del name
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.Linear(4, num_classes))

  # torchvision beside this torch build cannot be installed here: its one function stands in.
  fake = types.ModuleType("torchvision")
  fake.models = types.SimpleNamespace(get_model=get_model)
  monkeypatch.setitem(sys.modules, "torchvision", fake)
  config = tiny.get_config()
  config.model.dtype = "bfloat16"
  rng = np.random.default_rng(0)
  batch = {"image": rng.integers(0, 256, (4, 16, 16, 3), np.uint8),
           "age": rng.uniform(1, 90, 4).astype(np.float32)}
  peer = device.TorchvisionPeer(config, batch, compile_model=False)
  before = [p.detach().clone() for p in peer.model.parameters()]
  peer.run(2)
  assert peer.device.type == "cpu" and "bf16 autocast" in peer.description
  assert peer.images.is_contiguous(memory_format=torch.channels_last)
  assert all(p.dtype == torch.float32 for p in peer.model.parameters())
  assert all(not torch.equal(a, b) for a, b in zip(before, peer.model.parameters(), strict=True))
