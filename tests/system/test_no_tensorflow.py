"""The model, step, sharding, checkpoint and evaluation modules run where TensorFlow is absent."""

from conftest import run_entry_point

_BLOCK_TENSORFLOW_AND_TRAIN = """
import sys
sys.modules["tensorflow"] = None  # any import of TensorFlow now raises ImportError
import numpy as np, optax
from ageflax.core import sharding
from ageflax.evaluate import evaluator
from ageflax.model import resnet
from ageflax.train import checkpoints, steps
from configs import tiny
config = tiny.get_config()
mesh = sharding.create_mesh()
graphdef, state = steps.create_train_state(config, optax.adam(1e-3), mesh, head_bias=30.0)
step = steps.jit_train_step(graphdef, optax.adam(1e-3), config.train, mesh)
batch = {"image": np.zeros((8, 32, 32, 3), np.uint8), "age": np.full(8, 30.0, np.float32)}
state, metrics = step(state, sharding.global_batch(batch, mesh, 8))
print("trained without tensorflow, loss", float(metrics["loss"]))
"""


def test_train_step_runs_without_tensorflow():
  result = run_entry_point(["-c", _BLOCK_TENSORFLOW_AND_TRAIN])
  assert result.returncode == 0, result.stderr[-3000:]
  assert "trained without tensorflow" in result.stdout


_BLOCK_TENSORFLOW_AND_IMPORT_THE_DEVICE_BENCHMARK = """
import sys
sys.modules["tensorflow"] = None  # any import of TensorFlow now raises ImportError
from ageflax.cli import benchmark_device  # each entry point defines --config: one of them
from ageflax.devtools.bench import device, levers
print("device benchmark imported without tensorflow")
"""


def test_the_device_benchmark_and_lever_table_import_without_tensorflow():
  # The lent GPU machines have no TensorFlow; tests/devtools/test_device_benchmark.py runs it.
  result = run_entry_point(["-c", _BLOCK_TENSORFLOW_AND_IMPORT_THE_DEVICE_BENCHMARK])
  assert result.returncode == 0, result.stderr[-3000:]
  assert "device benchmark imported without tensorflow" in result.stdout
