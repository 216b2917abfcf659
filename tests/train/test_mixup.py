"""Mixup adapted to age (`train.mixup_alpha`): the blend of photos and of their losses, its
draws, and the train step that uses it."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from conftest import learnable_batch

from ageflax.core import sharding
from ageflax.model import dex
from ageflax.train import mixup, steps
from configs import tiny


def test_each_photo_is_blended_with_the_next_one_by_its_weight():
  images = jnp.arange(3 * 2 * 2 * 3, dtype=jnp.uint8).reshape(3, 2, 2, 3)
  weights = jnp.array([1.0, 0.25, 0.5])
  blended = mixup.blend_images(images, weights)
  pixels = np.asarray(images, np.float32)
  np.testing.assert_allclose(blended[0], pixels[0])
  np.testing.assert_allclose(blended[1], 0.25 * pixels[1] + 0.75 * pixels[2])
  np.testing.assert_allclose(blended[2], 0.5 * pixels[2] + 0.5 * pixels[0])  # the last with the first
  np.testing.assert_allclose(mixup.blend_ages(jnp.array([10.0, 20.0, 60.0]), weights),
                             [10.0, 50.0, 35.0])


def test_the_blended_dex_loss_trains_towards_the_blend_of_both_label_distributions():
  logits = jax.random.normal(jax.random.key(0), (3, 101))
  ages, weights = jnp.array([4.0, 30.0, 71.0]), jnp.array([0.7, 0.2, 0.5])
  loss = mixup.blend_losses(lambda target: dex.cross_entropy(logits, target, 2.0), ages, weights)
  labels = dex.label_distribution(ages, 101, 2.0)
  blended_labels = weights[:, None] * labels + (1 - weights[:, None]) * jnp.roll(labels, -1, 0)
  expected = -jnp.sum(blended_labels * jax.nn.log_softmax(logits), axis=-1)
  np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_the_weights_are_a_function_of_seed_and_step_spread_over_the_unit_interval():
  first = mixup.blend_weights(0, jnp.asarray(5), 4096, 0.4)
  np.testing.assert_array_equal(first, mixup.blend_weights(0, jnp.asarray(5), 4096, 0.4))
  assert not np.allclose(first, mixup.blend_weights(0, jnp.asarray(6), 4096, 0.4))
  assert not np.allclose(first, mixup.blend_weights(1, jnp.asarray(5), 4096, 0.4))
  assert float(jnp.min(first)) >= 0.0 and float(jnp.max(first)) <= 1.0
  # Beta(0.4, 0.4) is symmetric with most of its mass near 0 and 1.
  assert abs(float(jnp.mean(first)) - 0.5) < 0.03
  assert float(jnp.mean((first < 0.1) | (first > 0.9))) > 0.4


def test_a_mixup_step_trains_on_the_blend_the_same_way_every_time():
  config = tiny.get_config()
  mesh = sharding.create_mesh()
  optimizer = optax.sgd(0.01)
  graphdef, state = steps.create_train_state(config, optimizer, mesh, 40.0)
  batch = learnable_batch(mesh)

  def step(alpha):
    run = jax.jit(functools.partial(steps.train_step, graphdef=graphdef, optimizer=optimizer,
                                    loss="l2", huber_delta=1.0, seed=3, mixup_alpha=alpha))
    return run(state, batch)

  (plain, plain_metrics), (mixed, mixed_metrics) = step(0.0), step(0.4)
  (again, again_metrics) = step(0.4)
  assert np.isfinite(float(mixed_metrics["loss"]))
  assert float(mixed_metrics["loss"]) != float(plain_metrics["loss"])
  assert float(mixed_metrics["loss"]) == float(again_metrics["loss"])
  for a, b in zip(jax.tree.leaves(mixed.params), jax.tree.leaves(again.params), strict=True):
    np.testing.assert_array_equal(a, b)
  assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(mixed.params),
                                                   jax.tree.leaves(plain.params), strict=True))
