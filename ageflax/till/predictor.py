"""A trained run as a predictor: its checkpoint restored, batches of photos in, ages out.

It runs `ageflax.model.predict`'s one pure prediction function, as evaluation and the
SavedModel export (`till.savedmodel`) do, so scripts and serving compute the same numbers. Batches are padded to one fixed size (one compilation) and sharded over the mesh.
This module never imports TensorFlow.
"""

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from ageflax.core import sharding
from ageflax.model import dex, predict
from ageflax.train import restore


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
    mesh = sharding.create_mesh()
    run = restore.restore_run(workdir, step, mesh)
    return cls(run.config, run.graphdef, run.variables, run.step, batch_size, mesh)

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
      fn = predict.make_predict_fn(self.graphdef, flip_tta)
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

