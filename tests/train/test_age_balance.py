"""Age-balanced loss weights: the table, and the train step weighting each photo by it."""

import functools

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


def test_the_step_weights_each_photo_by_its_age():
  config = tiny.get_config()
  mesh = sharding.create_mesh()
  optimizer = optax.sgd(0.01)
  graphdef, state = steps.create_train_state(config, optimizer, mesh, head_bias=40.0)
  step = functools.partial(steps.train_step, state, learnable_batch(mesh), graphdef=graphdef,
                           optimizer=optimizer, loss="l2", huber_delta=1.0)
  weighted = jax.jit(lambda weights: step(age_weights=weights))
  plain_state, plain = jax.jit(step)()
  ones_state, ones = weighted(np.ones(121, np.float32))
  skewed_state, skewed = weighted(np.where(np.arange(121) < 30, 5.0, 0.2).astype(np.float32))
  assert np.isclose(ones["loss"], plain["loss"], rtol=1e-6)
  for a, b in zip(jax.tree.leaves(ones_state.params), jax.tree.leaves(plain_state.params),
                  strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  assert not np.isclose(skewed["loss"], plain["loss"], rtol=1e-3)
  assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(skewed_state.params),
                                                   jax.tree.leaves(plain_state.params),
                                                   strict=True))
