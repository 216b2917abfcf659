"""The one restore of a trained run: its config, the checkpoint chosen, and the model in it.

Evaluation, prediction and export all start from `restore_run(workdir, step)`. Without a
step it restores the best checkpoint (lowest validation MAE) and, should that one not read
back, falls back past it to the newest readable one with the warning training gives; a
requested step is that step or a one-line error. The run directory is only read.
"""

import dataclasses

import jax
import ml_collections
from flax import nnx

from ageflax.config import schema
from ageflax.core import sharding
from ageflax.core.errors import CheckpointError, ConfigError
from ageflax.train import checkpoints
from ageflax.train import steps as steps_lib


@dataclasses.dataclass(frozen=True)
class RestoredRun:
  """A run's checkpoint: its config (with today's fields), step, graph and model state.

  `state` is a `TrainState` holding parameters and BatchNorm statistics, without the
  optimizer state; `variables` gives them as the predictor takes them.
  """

  config: ml_collections.ConfigDict
  step: int
  graphdef: nnx.GraphDef
  state: steps_lib.TrainState

  @property
  def variables(self) -> dict:
    """{'params', 'batch_stats'}: the moving average's when the run kept one."""
    return self.state.variables


def restore_run(workdir: str, step: int | None = None,
                mesh: jax.sharding.Mesh | None = None,
                dex_readout: str | None = None) -> RestoredRun:
  """Restores checkpoint `step` of the train.py run in `workdir` (default: its best).

  Args:
    workdir: the run directory.
    step: the checkpoint to restore; None: the best, or the newest readable after it.
    mesh: lays the parameters out, replicated (default: all local devices).
    dex_readout: read the dex head's estimate this way ('mean' or 'median') instead of
      as the run's `model.dex_readout` says; it changes no weight.

  Raises:
    CheckpointError: no checkpoint, no `step` (the message lists the steps there are),
      the requested step unreadable, or no checkpoint readable.
    ConfigError: the run's saved config has a field the config schema does not allow.
  """
  mesh = mesh or sharding.create_mesh()
  checkpointer = checkpoints.Checkpointer(workdir, read_only=True)
  try:
    for candidate in _candidates(checkpointer, step):
      try:
        return _restore(checkpointer, candidate, mesh, dex_readout)
      except ConfigError:
        raise  # the run's config is at fault, not this checkpoint: no other one would do
      except Exception as e:  # Orbax and TensorStore raise many types for damaged files
        if step is not None:
          raise CheckpointError(f"checkpoint {step} in {checkpointer.directory} is unreadable "
                                f"({checkpoints.describe_error(e)})") from None
        checkpointer.warn_unreadable(candidate, e)
    raise CheckpointError(f"no readable checkpoint in {checkpointer.directory} (steps "
                          f"{_listed(checkpointer.all_steps())} are all unreadable)")
  finally:
    checkpointer.close()


def _candidates(checkpointer: checkpoints.Checkpointer, step: int | None) -> list[int]:
  """The steps to try, in order: the requested one, or the best and then newest first."""
  saved = checkpointer.all_steps()
  if not saved:
    raise CheckpointError(f"no finished checkpoint in {checkpointer.directory}")
  if step is not None:
    if step not in saved:
      raise CheckpointError(f"no checkpoint {step} in {checkpointer.directory} "
                            f"(there are: {_listed(saved)})")
    return [step]
  best = checkpointer.best_step()
  return [best] + [s for s in reversed(saved) if s != best]


def _restore(checkpointer: checkpoints.Checkpointer, step: int, mesh: jax.sharding.Mesh,
             dex_readout: str | None) -> RestoredRun:
  config = schema.with_current_defaults(checkpointer.restore_config(step))
  if dex_readout is not None:
    config.model.dex_readout = dex_readout
  schema.check(config)
  graphdef, abstract_state = steps_lib.abstract_model_state(config, mesh)
  model = checkpointer.restore_model(step, abstract_state)
  return RestoredRun(config, step, graphdef, abstract_state.replace(**model))


def _listed(steps: list[int]) -> str:
  return ", ".join(map(str, steps))
