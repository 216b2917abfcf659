"""Age-balanced loss weights: the table, and the train step weighting each photo by it."""

import jax
import numpy as np
import optax
from conftest import learnable_batch

from ageflax.core import sharding
from ageflax.train import age_balance, steps
from configs import tiny


def test_rare_ages_weigh_more_and_the_mean_weight_is_one():
  rng = np.random.default_rng(0)
  ages = np.concatenate([rng.normal(30, 5, 5000), rng.uniform(1, 10, 200), [85.0, 90.0]])
  table = age_balance.age_weight_table(ages, 0.5)
  years = np.rint(ages).astype(int)
  assert np.isclose(table[years].mean(), 1.0, atol=1e-5)
  assert table[5] > 2 * table[30] and table[88] > table[5]
  assert table.max() < 1.05 * age_balance.MAX_WEIGHT  # capped, then renormalised once
  np.testing.assert_allclose(age_balance.age_weight_table(ages, 0.0)[years], 1.0, rtol=1e-6)
  stronger = age_balance.age_weight_table(ages, 1.0)
  assert stronger[5] / stronger[30] > table[5] / table[30]


def _step_outcome(age_weights):
  config = tiny.get_config()
  config.train.loss = "l2"
  mesh = sharding.create_mesh()
  optimizer = optax.sgd(0.01)
  graphdef, state = steps.create_train_state(config, optimizer, mesh, head_bias=40.0)
  train_step = steps.jit_train_step(graphdef, optimizer, config.train, mesh,
                                    age_weights=age_weights)
  state, metrics = train_step(state, learnable_batch(mesh))
  return float(metrics["loss"]), jax.tree.leaves(state.params)


def test_the_step_weights_each_photo_by_its_age():
  plain_loss, plain_params = _step_outcome(None)
  ones_loss, ones_params = _step_outcome(np.ones(121, np.float32))
  assert np.isclose(ones_loss, plain_loss, rtol=1e-6)
  for a, b in zip(ones_params, plain_params, strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  skewed = np.where(np.arange(121) < 30, 5.0, 0.2).astype(np.float32)
  skewed_loss, skewed_params = _step_outcome(skewed)
  assert not np.isclose(skewed_loss, plain_loss, rtol=1e-3)
  assert any(not np.allclose(a, b) for a, b in zip(skewed_params, plain_params, strict=True))
