"""The weights' moving average (`train.ema_decay`): its update, and that it is what a run
validates, keeps, resumes and hands to prediction."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import learnable_batch

from ageflax.core import sharding
from ageflax.train import checkpoints, restore, steps
from configs import tiny


def _leaves(tree) -> list[np.ndarray]:
  return [np.asarray(leaf) for leaf in jax.tree.leaves(tree)]


DECAY = 0.5


def _ema_state(decay: float):
  config = tiny.get_config()
  config.train.ema_decay = decay
  optimizer = optax.sgd(0.05)
  graphdef, state = steps.create_train_state(config, optimizer, sharding.create_mesh(), 40.0)
  return config, graphdef, optimizer, state


@pytest.fixture(scope="module")
def trained():
  """(config, optimizer, the states before and after each of 3 steps), one compile."""
  config, graphdef, optimizer, state = _ema_state(DECAY)
  step = jax.jit(functools.partial(steps.train_step, graphdef=graphdef, optimizer=optimizer,
                                   loss="l2", huber_delta=1.0, ema_decay=DECAY))
  states = [state]
  for seed in range(3):
    states.append(step(states[-1], learnable_batch(sharding.create_mesh(), seed=seed))[0])
  return config, optimizer, states


def test_the_decay_ramps_up_from_the_first_step_to_its_setting():
  average, new = {"w": jnp.zeros(3)}, {"w": jnp.ones(3)}
  first = steps.moving_average(average, new, jnp.asarray(0), 0.999)
  np.testing.assert_allclose(first["w"], 0.9, rtol=1e-6)  # rate (1 + 0) / (10 + 0) = 0.1
  late = steps.moving_average(average, new, jnp.asarray(10**6), 0.999)
  np.testing.assert_allclose(late["w"], 0.001, rtol=1e-3)  # the ramp has passed 0.999


def test_each_step_moves_the_average_and_the_average_is_what_is_evaluated(trained):
  _, _, (state, after, *_) = trained
  for a, b in zip(_leaves(state.variables), _leaves(state.weights), strict=True):  # starts there
    np.testing.assert_array_equal(a, b)
  new = after.weights
  # Step 0's rate is min(DECAY, 1 / 10): the average moves 90% of the way to the new weights.
  expected = jax.tree.map(lambda old, value: 0.1 * old + 0.9 * value, state.variables, new)
  for a, b in zip(_leaves(after.variables), _leaves(expected), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert any(not np.allclose(a, b) for a, b in zip(_leaves(after.variables),
                                                   _leaves(new), strict=True))


def test_without_a_decay_there_is_no_average_and_the_weights_are_evaluated():
  _, _, _, state = _ema_state(0.0)
  assert state.ema is None
  assert state.variables == state.weights == {"params": state.params,
                                              "batch_stats": state.batch_stats}


def test_the_average_is_saved_resumed_and_restored_for_prediction(trained, tmp_path):
  config, optimizer, states = trained
  state = states[-1]
  saved_average, saved_weights = _leaves(state.ema), _leaves(state.params)
  checkpointer = checkpoints.Checkpointer(tmp_path)
  checkpointer.save(state, config, {checkpoints.VALIDATION_METRIC: 5.0})
  checkpointer.wait()
  _, abstract = steps.abstract_train_state(config, optimizer, sharding.create_mesh(), 40.0)
  resumed = checkpointer.restore(3, abstract)
  checkpointer.close()
  for a, b in zip(_leaves(resumed.ema) + _leaves(resumed.params),
                  saved_average + saved_weights, strict=True):
    np.testing.assert_array_equal(a, b)

  run = restore.restore_run(str(tmp_path))
  assert run.config.train.ema_decay == DECAY
  for a, b in zip(_leaves(run.variables), saved_average, strict=True):
    np.testing.assert_array_equal(a, b)
