"""The train step: learning, compiling once, losses, learning rates."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import learnable_batch

from ageflax.core import sharding
from ageflax.train import optimizers, steps
from configs import tiny


def _setup(loss="l2", learning_rate=0.05):
  config = tiny.get_config()
  config.train.loss = loss
  mesh = sharding.create_mesh()
  optimizer = optax.adam(learning_rate)
  graphdef, state = steps.create_train_state(config, optimizer, mesh, head_bias=40.0)
  return config, mesh, optimizer, graphdef, state


@pytest.mark.parametrize("loss", ["l2", "l1", "huber"])
def test_loss_falls_on_a_fixed_batch(loss):
  config, mesh, optimizer, graphdef, state = _setup(loss)
  train_step = steps.jit_train_step(graphdef, optimizer, config.train, mesh)
  batch = learnable_batch(mesh)
  losses = []
  for _ in range(30):
    state, metrics = train_step(state, batch)
    losses.append(float(metrics["loss"]))
  assert int(state.step) == 30
  assert losses[-1] < 0.5 * losses[0], losses


def test_train_step_compiles_once_and_updates_batch_statistics():
  _, mesh, optimizer, graphdef, state = _setup()
  counted = chex.assert_max_traces(n=1)(
      lambda s, b: steps.train_step(s, b, graphdef=graphdef, optimizer=optimizer, loss="l2",
                                    huber_delta=1.0))
  train_step = jax.jit(counted, donate_argnums=0)
  before = jax.tree.map(np.asarray, state.batch_stats)
  for seed in range(3):
    state, _ = train_step(state, learnable_batch(mesh, seed=seed))
  after = jax.tree.map(np.asarray, state.batch_stats)
  changed = jax.tree.map(lambda a, b: not np.allclose(a, b), before, after)
  assert all(jax.tree.leaves(changed))


def _products(jaxpr) -> list:
  """(input dtypes, output dtype) of every convolution and matrix product, nested ones too."""
  found = []
  for eqn in jaxpr.eqns:
    if eqn.primitive.name in ("conv_general_dilated", "dot_general"):
      found.append((tuple(str(v.aval.dtype) for v in eqn.invars), str(eqn.outvars[0].aval.dtype)))
    for param in eqn.params.values():
      inner = getattr(param, "jaxpr", None)
      if inner is not None:
        found += _products(getattr(inner, "jaxpr", inner))
  return found


@pytest.mark.parametrize("conv_impl", ["xla", "matmul"])
def test_bfloat16_steps_multiply_in_bfloat16_with_float32_parameters_and_loss(conv_impl):
  config = tiny.get_config()
  config.model.dtype, config.model.conv_impl = "bfloat16", conv_impl
  mesh = sharding.create_mesh()
  optimizer = optax.adam(1e-3)
  graphdef, state = steps.abstract_train_state(config, optimizer, mesh, head_bias=40.0)
  batch = {"image": jax.ShapeDtypeStruct((4, 32, 32, 3), jnp.uint8),
           "age": jax.ShapeDtypeStruct((4,), jnp.float32)}
  step = functools.partial(steps.train_step, graphdef=graphdef, optimizer=optimizer,
                           loss="dex", huber_delta=1.0)
  products = _products(jax.make_jaxpr(step)(state, batch).jaxpr)
  float32 = [p for p in products if p != (("bfloat16", "bfloat16"), "bfloat16")]
  # 6 convolutions x (forward, 2 gradients) but the stem's input gradient: bfloat16; the
  # head's product and its 2 gradients: float32.
  assert len(products) - len(float32) == 17 and len(float32) == 3, products
  assert all(p == (("float32", "float32"), "float32") for p in float32)
  new_state, metrics = jax.eval_shape(step, state, batch)
  assert {leaf.dtype for leaf in jax.tree.leaves(new_state.params)} == {jnp.dtype("float32")}
  assert metrics["loss"].dtype == jnp.float32


def test_per_example_losses():
  predictions, ages = jnp.array([10.0, 20.0]), jnp.array([13.0, 20.5])
  np.testing.assert_allclose(steps.per_example_loss(predictions, ages, "l2", 1.0), [9, 0.25])
  np.testing.assert_allclose(steps.per_example_loss(predictions, ages, "l1", 1.0), [3, 0.5])
  np.testing.assert_allclose(steps.per_example_loss(predictions, ages, "huber", 1.0),
                             [2.5, 0.125])


def test_learning_rate_schedules():
  config = tiny.get_config().optim
  config.update(dict(learning_rate=1.0, schedule="cosine", warmup_epochs=1.0,
                     final_learning_rate_fraction=0.0))
  schedule = optimizers.create_learning_rate_schedule(config, total_steps=30, steps_per_epoch=10)
  assert float(schedule(0)) == 0.0
  np.testing.assert_allclose(float(schedule(10)), 1.0)
  np.testing.assert_allclose(float(schedule(30)), 0.0, atol=1e-6)
  assert 0.4 < float(schedule(20)) < 0.6
  config.schedule = "constant"
  schedule = optimizers.create_learning_rate_schedule(config, total_steps=30, steps_per_epoch=10)
  np.testing.assert_allclose(float(schedule(25)), 1.0)


def test_durations_in_epochs_or_steps():
  config = tiny.get_config().train
  assert optimizers.resolve_steps(config, "num", steps_per_epoch=7) == 14
  config.num_epochs = 0.5
  assert optimizers.resolve_steps(config, "num", steps_per_epoch=7) == 4  # 3.5 rounds to even
  config.num_steps = 5
  assert optimizers.resolve_steps(config, "num", steps_per_epoch=7) == 5  # steps win
