"""Orbax checkpoints of a run: periodic saves, the best by validation MAE, and resume.

Each checkpoint holds three items: `model` (parameters and BatchNorm statistics, all an
evaluation needs), `trainer` (step and optimizer state) and `config` (JSON). Orbax
writes into a temporary directory and renames it when complete, so a half-written
checkpoint is never listed; the latest `keep_latest` and the best `keep_best` by
validation MAE are preserved.
"""

import os
from typing import Any

import jax
import ml_collections
import orbax.checkpoint as ocp
from absl import logging
from jax.experimental import multihost_utils
from orbax.checkpoint import checkpoint_managers

from ageflax.core import run_files
from ageflax.core.errors import CheckpointError

VALIDATION_METRIC = "validation_mae"


def _validation_mae(metrics: dict[str, float]) -> float:
  return metrics[VALIDATION_METRIC]


def describe_error(error: Exception) -> str:
  """'TypeName: the first line of its message', for one-line reports of a failed restore."""
  reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
  return f"{type(error).__name__}: {reason}"


class Checkpointer:
  """Saves and restores `TrainState`s under `workdir/checkpoints`."""

  def __init__(self, workdir: str | os.PathLike, keep_latest: int = 2, keep_best: int = 1,
               read_only: bool = False):
    self.directory = run_files.checkpoints_dir(workdir)
    if read_only and not os.path.isdir(self.directory):
      raise CheckpointError(f"no checkpoints in {workdir} ({self.directory} does not exist)")
    policy = checkpoint_managers.AnyPreservationPolicy([
        checkpoint_managers.LatestN(keep_latest),
        checkpoint_managers.BestN(get_metric_fn=_validation_mae, reverse=True, n=keep_best,
                                  keep_checkpoints_without_metrics=False),
    ])
    # best_fn also makes Orbax write each step's metrics, so the best survives a restart.
    options = ocp.CheckpointManagerOptions(preservation_policy=policy, best_fn=_validation_mae,
                                           best_mode="min", read_only=read_only,
                                           create=not read_only)
    self._manager = ocp.CheckpointManager(
        self.directory, options=options, item_names=("model", "trainer", "config"))

  def save(self, state, config: ml_collections.ConfigDict,
           metrics: dict[str, float] | None = None) -> None:
    """Starts an asynchronous save of `state` at its step (waits for the previous save)."""
    step = int(state.step)
    args = ocp.args.Composite(
        model=ocp.args.StandardSave(_model_item(state)),
        trainer=ocp.args.StandardSave({"step": state.step, "opt_state": state.opt_state}),
        config=ocp.args.JsonSave(config.to_dict()),
    )
    try:
      self._manager.save(step, args=args, metrics=metrics, force=True)
    except Exception as e:
      raise CheckpointError(f"saving checkpoint {step} in {self.directory} failed ({e}); "
                            "the earlier checkpoints are intact") from e

  def wait(self) -> None:
    """Blocks until every started save is committed to disk."""
    try:
      self._manager.wait_until_finished()
    except Exception as e:
      raise CheckpointError(f"a checkpoint save in {self.directory} failed ({e}); the "
                            "earlier checkpoints are intact") from e

  def reached_preemption(self, step: int) -> bool:
    """Whether the job's processes agreed to stop at `step` (multi-process preemption)."""
    return self._manager.reached_preemption(step)

  def all_steps(self) -> list[int]:
    """The steps of every finished checkpoint, oldest first."""
    return sorted(self._manager.all_steps())

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def best_step(self) -> int | None:
    """The step with the lowest validation MAE, or the latest if none has metrics."""
    best = self._manager.best_step()
    return self.latest_step() if best is None else best

  def restore(self, step: int, abstract_state):
    """Restores a full `TrainState` (laid out like `abstract_state`) from `step`."""
    restored = self._manager.restore(step, args=ocp.args.Composite(
        model=ocp.args.StandardRestore(_model_item(abstract_state)),
        trainer=ocp.args.StandardRestore({"step": abstract_state.step,
                                          "opt_state": abstract_state.opt_state}),
    ))
    return abstract_state.replace(step=restored.trainer["step"],
                                  opt_state=restored.trainer["opt_state"],
                                  **restored.model)

  def restore_latest_readable(self, abstract_state):
    """Restores the newest checkpoint that reads back whole, setting unreadable ones aside.

    Returns:
      (step, state), or (None, None) when no checkpoint is readable.
    """
    for step in reversed(self.all_steps()):
      try:
        return step, self.restore(step, abstract_state)
      except Exception as e:
        self.warn_unreadable(step, e)
        self._set_aside(step)
    return None, None

  def warn_unreadable(self, step: int, error: Exception) -> None:
    """The warning for a checkpoint that does not read back, before falling back past it."""
    logging.warning("checkpoint %d in %s is unreadable (%s); falling back to the previous one",
                    step, self.directory, describe_error(error))

  def _set_aside(self, step: int) -> None:
    """Renames an unreadable step to `unreadable_STEP`, which Orbax no longer lists."""
    if jax.process_index() == 0:
      path = os.path.join(self.directory, str(step))
      os.replace(path, os.path.join(self.directory, f"{run_files.UNREADABLE_PREFIX}{step}"))
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices(f"set aside checkpoint {step}")
    self._manager.reload()

  def restore_model(self, step: int, abstract_state) -> dict[str, Any]:
    """Restores only what prediction needs: {'params', 'batch_stats'} and any 'ema'."""
    restored = self._manager.restore(step, args=ocp.args.Composite(
        model=ocp.args.StandardRestore(_model_item(abstract_state))))
    return restored.model

  def restore_config(self, step: int) -> ml_collections.ConfigDict:
    """The config the run was trained with, as saved beside `step`."""
    restored = self._manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))
    return ml_collections.ConfigDict(restored.config)

  def close(self) -> None:
    self._manager.close()


def _model_item(state) -> dict[str, Any]:
  """The checkpoint's 'model' item: the weights, BatchNorm statistics and any moving average
  of both (without one, the layout of runs saved before `train.ema_decay` existed)."""
  if state.ema is None:
    return state.weights
  return {**state.weights, "ema": state.ema}
