"""Timing for the benchmark: rates in interleaved rounds, the peak matmul, ageflax's step.

Each contender is timed once per round, the first one rotating, because a shared machine
is noisy; `AgeflaxStep` is the compiled train step with its FLOP count.
"""

import dataclasses
import math
import time
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from ageflax.core import sharding
from ageflax.devtools.bench.report import Figure
from ageflax.train import optimizers, summaries
from ageflax.train import steps as steps_lib

# Batches drawn before each timed pipeline window, so that tf.data's autotuner has settled.
PIPELINE_WARMUP_BATCHES = 5
_HEAD_BIAS = 30.0


def seconds(fn: Callable, *args) -> float:
  """Wall-clock seconds of `fn(*args)`."""
  started = time.perf_counter()
  fn(*args)
  return time.perf_counter() - started


def interleaved_rates(
    runners: dict[str, Callable[[int], None]], steps: int, repeats: int, items_per_step: int
) -> dict[str, Figure]:
  """Times `steps` steps of every runner per round, the first runner rotating each round.

  Args:
    runners: name -> run(num_steps), which returns once the steps are done.
    steps: steps per timed repetition.
    repeats: rounds; each runner is timed once per round.
    items_per_step: images per step.

  Returns:
    name -> one rate (items/s) per round.
  """
  names = list(runners)
  rates = {name: [] for name in names}
  for round_index in range(repeats):
    shift = round_index % len(names)
    for name in names[shift:] + names[:shift]:
      rates[name].append(steps * items_per_step / seconds(runners[name], steps))
    summaries.log("round %d/%d: %s", round_index + 1, repeats,
                  ", ".join(f"{name} {rates[name][-1]:.1f}" for name in names))
  return {name: Figure(tuple(values)) for name, values in rates.items()}


def pipeline_rates(
    pipelines: dict[str, Callable[[], Iterator]], batches: int, repeats: int, batch_size: int
) -> dict[str, Figure]:
  """Images/s of each stream, restarted, warmed up and timed over `batches` per round.

  A stream left running between windows would fill its prefetch buffers for free while
  another is timed, so every window starts from a fresh iterator past its warm-up.
  """
  names = list(pipelines)
  rates = {name: [] for name in names}
  for round_index in range(repeats):
    shift = round_index % len(names)
    for name in names[shift:] + names[:shift]:
      iterator = pipelines[name]()
      _draw(iterator, PIPELINE_WARMUP_BATCHES)
      rates[name].append(batches * batch_size / seconds(_draw, iterator, batches))
      del iterator
  return {name: Figure(tuple(values)) for name, values in rates.items()}


def _draw(iterator: Iterator, count: int) -> None:
  for _ in range(count):
    next(iterator)


def matmul_rate(size: int, dtype: str, repeats: int, products: int = 5) -> Figure:
  """FLOP/s of a jitted size x size matrix product (2 size^3 FLOPs), per repetition."""
  keys = jax.random.split(jax.random.key(0))
  a, b = (jax.random.normal(key, (size, size), jnp.dtype(dtype)) for key in keys)
  product = jax.jit(jnp.matmul)
  product(a, b).block_until_ready()

  def run() -> None:
    for _ in range(products):
      out = product(a, b)
    out.block_until_ready()

  return Figure(tuple(2 * size**3 * products / seconds(run) for _ in range(repeats)), "FLOP/s")


@dataclasses.dataclass
class AgeflaxStep:
  """The compiled train step and its state, which every run advances."""

  compiled: Callable
  state: steps_lib.TrainState
  mesh: jax.sharding.Mesh
  batch_size: int
  compile_seconds: float
  flops_per_image: float | None  # from the compiled step's cost analysis

  def run(self, batch: dict[str, jax.Array], num_steps: int) -> None:
    """`num_steps` steps on one device-resident batch."""
    for _ in range(num_steps):
      self.state, metrics = self.compiled(self.state, batch)
    jax.block_until_ready(metrics)

  def run_stream(self, batches: Iterator[dict[str, np.ndarray]], num_steps: int) -> None:
    """`num_steps` steps on the next host batches of a stream, as the trainer runs them."""
    for _ in range(num_steps):
      batch = sharding.global_batch(next(batches), self.mesh, self.batch_size)
      self.state, metrics = self.compiled(self.state, batch)
    jax.block_until_ready(metrics)


def compile_ageflax_step(
    config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh, batch: dict[str, jax.Array]
) -> AgeflaxStep:
  """`steps.jit_train_step` for `config`, compiled ahead of time for `batch`'s shapes."""
  schedule = optimizers.create_learning_rate_schedule(config.optim, total_steps=10_000,
                                                      steps_per_epoch=100)
  optimizer = optimizers.create_optimizer(config.optim, schedule)
  graphdef, state = steps_lib.create_train_state(config, optimizer, mesh, _HEAD_BIAS)
  jitted = steps_lib.jit_train_step(graphdef, optimizer, config.train, mesh, config.data.augment,
                                    config.seed)
  started = time.perf_counter()
  compiled = jitted.lower(state, batch).compile()
  compile_seconds = time.perf_counter() - started
  flops = _cost_analysis_flops(compiled)
  # Under SPMD the compiled program is one device's share of the global batch.
  flops_per_image = flops * mesh.size / config.train.batch_size if flops else None
  return AgeflaxStep(compiled, state, mesh, config.train.batch_size, compile_seconds,
                     flops_per_image)


def _cost_analysis_flops(compiled) -> float | None:
  try:
    analysis = compiled.cost_analysis()
  except (NotImplementedError, jax.errors.JaxRuntimeError):  # the known count stands in
    return None
  if isinstance(analysis, list | tuple):
    analysis = analysis[0] if analysis else {}
  flops = (analysis or {}).get("flops")
  return float(flops) if flops and math.isfinite(flops) and flops > 0 else None


def synthetic_batch(batch_size: int, image_size: int, seed: int = 0) -> dict[str, np.ndarray]:
  """Random uint8 images and ages: the fixed batch every framework trains on."""
  rng = np.random.default_rng(seed)
  return {"image": rng.integers(0, 256, (batch_size, image_size, image_size, 3), np.uint8),
          "age": rng.uniform(1, 90, batch_size).astype(np.float32)}
