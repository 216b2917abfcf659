"""Compares the convolution algorithms of `model.conv_impl` on this machine.

  python scripts/benchmark_conv.py --model=resnet18 --image_size=64 --batch_size=64

Prints, for each algorithm, the jitted train step's images/s on a fixed device-resident
batch (median of several timed rounds after compilation, with the spread), and the ratio
to 'xla'. The train step is the real one (`steps.train_step`), so the figures are what
training gets, minus the input pipeline.
"""

import copy
import statistics
import time

import jax
import numpy as np
from absl import flags
from ml_collections import config_flags

from ageflax.cli import common
from ageflax.cli import flags as shared_flags
from ageflax.config import schema
from ageflax.core import sharding
from ageflax.train import optimizers
from ageflax.train import steps as steps_lib

_MODEL = flags.DEFINE_string("model", "resnet18", "model.name to time.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 64, "Square input size.")
_CONFIG = config_flags.DEFINE_config_file("config", common.experiment_file("cpu.py"),
                                          "Config whose model and optimizer are timed.")
_BATCH_SIZE = shared_flags.define_batch_size("Global batch size.", default=64)
_ROUNDS = flags.DEFINE_integer("rounds", 5, "Timed rounds after compilation.")
_STEPS = flags.DEFINE_integer("steps_per_round", 3, "Train steps per timed round.")
_IMPLS = flags.DEFINE_list("impls", ["xla", "matmul", "auto"], "conv_impl values to compare.")


def time_train_step(conv_impl: str) -> tuple[float, list[float]]:
  """Returns (compile seconds, images/s of each timed round) for one conv algorithm."""
  config = copy.deepcopy(_CONFIG.value)
  config.model.name = _MODEL.value
  config.model.conv_impl = conv_impl
  schema.check(config)
  mesh = sharding.create_mesh()
  optimizer = optimizers.create_optimizer(config.optim, lambda _: 1e-3)
  graphdef, state = steps_lib.create_train_state(config, optimizer, mesh, head_bias=30.0)
  train_step = steps_lib.jit_train_step(graphdef, optimizer, config.train, mesh)
  rng = np.random.default_rng(0)
  size, batch_size = _IMAGE_SIZE.value, _BATCH_SIZE.value
  batch = sharding.global_batch(
      {"image": rng.integers(0, 256, (batch_size, size, size, 3), np.uint8),
       "age": rng.uniform(1, 90, batch_size).astype(np.float32)}, mesh, batch_size)
  started = time.perf_counter()
  state, metrics = train_step(state, batch)
  jax.block_until_ready(metrics)
  compile_seconds = time.perf_counter() - started
  rates = []
  for _ in range(_ROUNDS.value):
    started = time.perf_counter()
    for _ in range(_STEPS.value):
      state, metrics = train_step(state, batch)
    jax.block_until_ready(metrics)
    rates.append(_STEPS.value * batch_size / (time.perf_counter() - started))
  return compile_seconds, rates


def main(argv: list[str]) -> None:
  del argv
  print(f"{_MODEL.value} train step, {_IMAGE_SIZE.value}x{_IMAGE_SIZE.value}, batch "
        f"{_BATCH_SIZE.value}, float32, {jax.device_count()} {jax.devices()[0].platform} "
        "device(s)")
  print(f"{'conv_impl':<10} {'images/s (median)':>18} {'min-max':>14} {'compile s':>10}")
  medians = {}
  for impl in _IMPLS.value:
    compile_seconds, rates = time_train_step(impl)
    medians[impl] = statistics.median(rates)
    print(f"{impl:<10} {medians[impl]:>18.1f} {min(rates):>6.1f}-{max(rates):<7.1f} "
          f"{compile_seconds:>10.1f}")
  if "xla" in medians:
    for impl, rate in medians.items():
      if impl != "xla":
        print(f"ratio train_step {impl}/xla: {rate / medians['xla']:.2f}")



def run() -> None:
  """The console entry point: parses the flags and runs main."""
  common.run(main, __name__)
