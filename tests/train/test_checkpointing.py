"""Orbax round trips, the best/latest preservation policy and half-written checkpoints."""

import jax
import ml_collections
import numpy as np
import optax
import pytest

from ageflax.config import schema
from ageflax.core import sharding
from ageflax.core.errors import CheckpointError
from ageflax.train import checkpoints, steps
from configs import tiny


def _state(mesh, seed=0):
  config = tiny.get_config()
  config.seed = seed
  optimizer = optax.adam(1e-3)
  _, state = steps.create_train_state(config, optimizer, mesh, head_bias=30.0)
  return config, optimizer, state


def _at_step(state, step):
  return state.replace(step=jax.numpy.asarray(step, jax.numpy.int32))


def test_round_trip_restores_every_array(tmp_path):
  mesh = sharding.create_mesh()
  config, optimizer, state = _state(mesh)
  checkpointer = checkpoints.Checkpointer(tmp_path)
  checkpointer.save(_at_step(state, 7), config)
  checkpointer.wait()
  _, abstract = steps.abstract_train_state(config, optimizer, mesh, head_bias=0.0)
  restored = checkpointer.restore(7, abstract)
  assert int(restored.step) == 7
  for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(restored.params), strict=True):
    np.testing.assert_array_equal(a, b)
  assert jax.tree.structure(restored.opt_state) == jax.tree.structure(state.opt_state)
  assert checkpointer.restore_config(7).model.name == "_resnet_tiny"
  checkpointer.close()


def test_keeps_the_latest_two_and_the_best(tmp_path):
  mesh = sharding.create_mesh()
  config, _, state = _state(mesh)
  checkpointer = checkpoints.Checkpointer(tmp_path, keep_latest=2, keep_best=1)
  for step, mae in [(1, 9.0), (2, 5.0), (3, 7.0), (4, None), (5, 8.0)]:
    metrics = None if mae is None else {checkpoints.VALIDATION_METRIC: mae}
    checkpointer.save(_at_step(state, step), config, metrics)
  checkpointer.wait()
  checkpointer.close()
  reopened = checkpoints.Checkpointer(tmp_path, read_only=True)
  assert sorted(reopened._manager.all_steps()) == [2, 4, 5]
  assert reopened.best_step() == 2 and reopened.latest_step() == 5


def test_a_half_written_checkpoint_is_never_the_latest(tmp_path):
  mesh = sharding.create_mesh()
  config, _, state = _state(mesh)
  checkpointer = checkpoints.Checkpointer(tmp_path)
  checkpointer.save(_at_step(state, 3), config)
  checkpointer.wait()
  checkpointer.close()
  # What a process killed mid-save leaves behind: Orbax's temporary directory.
  partial = tmp_path / "checkpoints" / "9.orbax-checkpoint-tmp-1234"
  (partial / "model").mkdir(parents=True)
  (partial / "model" / "garbage").write_bytes(b"\0" * 10)
  assert checkpoints.Checkpointer(tmp_path).latest_step() == 3


def test_a_failed_save_is_named_and_leaves_earlier_checkpoints(tmp_path):
  mesh = sharding.create_mesh()
  config, _, state = _state(mesh)
  checkpointer = checkpoints.Checkpointer(tmp_path)
  checkpointer.save(_at_step(state, 1), config)
  checkpointer.wait()

  def disk_full(*args, **kwargs):
    raise OSError(28, "No space left on device")

  checkpointer._manager.save = disk_full
  with pytest.raises(CheckpointError, match=r"saving checkpoint 2 in .* failed .*No space left"):
    checkpointer.save(_at_step(state, 2), config)
  assert checkpointer.latest_step() == 1


def test_configs_saved_before_a_field_was_added_still_load():
  saved = tiny.get_config().to_dict()
  del saved["data"]["max_image_megapixels"]
  saved["model"]["retired_field"] = 1
  config = schema.with_current_defaults(ml_collections.ConfigDict(saved))
  assert config.data.max_image_megapixels == 40.0  # today's default
  assert config.model.name == "_resnet_tiny" and "retired_field" not in config.model
