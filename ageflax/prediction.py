"""A trained run as a predictor: its checkpoint restored, batches of photos in, ages out.

`predict_outputs` is the one pure prediction function: the jitted predictor here and the
SavedModel export (`ageflax.serving`) both run it, so scripts and serving compute the same
numbers. Batches are padded to one fixed size (one compilation) and sharded over the mesh.
This module never imports TensorFlow.
"""

import dataclasses
import functools
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

import configs
from ageflax import checkpointing, dex, reporting, sharding
from ageflax import steps as steps_lib
from ageflax.errors import CheckpointError


def predict_outputs(
    variables: dict, images: jax.Array, *, graphdef: nnx.GraphDef, flip_tta: bool = False
) -> dict[str, jax.Array]:
  """{'age': [B]} for uint8/float RGB images [B, S, S, 3] in [0, 255], and for the dex head
  'distribution' [B, bins] too; with `flip_tta` the mean over each image and its mirror."""
  model = nnx.merge(graphdef, variables["params"], variables["batch_stats"])

  def outputs(x):
    if model.head_kind == "dex":
      distribution = model.age_distribution(x)
      return {"age": dex.expected_age(distribution), "distribution": distribution}
    return {"age": model(x)}

  result = outputs(images)
  if flip_tta:
    mirrored = outputs(images[:, :, ::-1, :])
    result = jax.tree.map(lambda a, b: (a + b) / 2, result, mirrored)
  return result


@dataclasses.dataclass(frozen=True)
class Predictions:
  """Per-photo estimates: ages [N], and the dex head's distributions [N, bins] or None."""

  ages: np.ndarray
  distributions: np.ndarray | None

  def spreads(self) -> np.ndarray | None:
    """Each estimate's standard deviation in years (dex head), or None."""
    return None if self.distributions is None else np.asarray(
        dex.age_spread(self.distributions))

  def probabilities_under(self, age: float) -> np.ndarray | None:
    """Each photo's P(age < `age`) (dex head), or None."""
    return None if self.distributions is None else np.asarray(
        dex.probability_under(self.distributions, age))


class Predictor:
  """The model of one checkpoint, compiled for one batch size over all local devices."""

  def __init__(self, config: ml_collections.ConfigDict, graphdef: nnx.GraphDef,
               variables: dict, step: int, batch_size: int | None = None,
               mesh: jax.sharding.Mesh | None = None):
    self.config = config
    self.graphdef = graphdef
    self.variables = variables
    self.step = step
    self.mesh = mesh or sharding.create_mesh()
    self.batch_size = batch_size or config.eval.batch_size
    sharding.check_batch_size(self.batch_size, self.mesh, "--batch_size")
    self._jitted: dict[bool, Callable] = {}

  @classmethod
  def from_workdir(cls, workdir: str, step: int | None = None,
                   batch_size: int | None = None) -> "Predictor":
    """Restores `step` of a train.py run (default: its best, lowest validation MAE)."""
    checkpointer = checkpointing.Checkpointer(workdir, read_only=True)
    try:
      steps = checkpointer.all_steps()
      if not steps:
        raise CheckpointError(f"no finished checkpoint in {checkpointer.directory}")
      if step is None:
        step = checkpointer.best_step()
      elif step not in steps:
        raise CheckpointError(f"no checkpoint {step} in {checkpointer.directory} "
                              f"(there are: {', '.join(map(str, steps))})")
      config = configs.with_current_defaults(checkpointer.restore_config(step))
      mesh = sharding.create_mesh()
      graphdef, abstract = steps_lib.abstract_model_state(config, mesh)
      variables = checkpointer.restore_model(step, abstract.params, abstract.batch_stats)
    finally:
      checkpointer.close()
    return cls(config, graphdef, variables, step, batch_size, mesh)

  @property
  def image_size(self) -> int:
    return self.config.data.image_size

  @property
  def has_distribution(self) -> bool:
    return self.config.model.head == "dex"

  def describe(self) -> str:
    return (f"{self.config.model.name} ({self.config.model.head} head, "
            f"{self.image_size}x{self.image_size}) at step {self.step:,}")

  def _compiled(self, flip_tta: bool) -> Callable:
    if flip_tta not in self._jitted:
      fn = functools.partial(predict_outputs, graphdef=self.graphdef, flip_tta=flip_tta)
      self._jitted[flip_tta] = jax.jit(
          fn, in_shardings=(sharding.replicated(self.mesh), sharding.batch_sharding(self.mesh)),
          out_shardings=sharding.replicated(self.mesh))
    return self._jitted[flip_tta]

  def predict(self, images: np.ndarray, flip_tta: bool = False) -> Predictions:
    """Estimates for uint8 images [N, S, S, 3] (S = the run's image size), in batches."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1:] != (self.image_size, self.image_size, 3):
      raise ValueError(f"expected images [N, {self.image_size}, {self.image_size}, 3], "
                       f"got {list(images.shape)}")
    compiled = self._compiled(flip_tta)
    parts = []
    for start in range(0, len(images), self.batch_size):
      chunk = images[start:start + self.batch_size]
      padded = np.zeros((self.batch_size, *chunk.shape[1:]), chunk.dtype)
      padded[:len(chunk)] = chunk
      outputs = jax.device_get(compiled(self.variables, jnp.asarray(padded)))
      parts.append({name: value[:len(chunk)] for name, value in outputs.items()})
    if not parts:
      return Predictions(np.zeros((0,), np.float32), None)
    joined = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    return Predictions(joined["age"], joined.get("distribution"))


class Progress:
  """A progress line for long photo lists: done/total, images/s and ETA."""

  def __init__(self, total: int, every_seconds: float = 5.0):
    self.total = total
    self.every_seconds = every_seconds
    self.start = time.perf_counter()
    self._last = self.start

  def update(self, done: int) -> str | None:
    """The line to show after `done` photos, or None when the last one is recent."""
    now = time.perf_counter()
    if now - self._last < self.every_seconds and done < self.total:
      return None
    self._last = now
    rate = done / max(now - self.start, 1e-9)
    eta = (self.total - done) / rate if rate else 0.0
    return (f"{done:,}/{self.total:,} photos | {rate:.1f} img/s | "
            f"ETA {reporting.format_duration(eta)}")

  def rate(self, done: int) -> float:
    return done / max(time.perf_counter() - self.start, 1e-9)
