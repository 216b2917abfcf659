"""Mixup adapted to age (`train.mixup_alpha`): each photo of the global batch blended with the
next one, and its loss with the next one's, by the same weight.

Blending the losses, not the ages, keeps mixup's meaning for a distribution over ages: the
dex head's cross-entropy is linear in its label distribution, so a photo that is 0.7 of a
20-year-old and 0.3 of a 60-year-old trains towards 0.7 of the first's labels plus 0.3 of
the second's, not towards a 32-year-old that neither face shows. For L2 it equals mixup's
blended target up to a constant; for L1 and Huber it is the blend of the two losses.

The weights are a pure function of (seed, step), drawn over the global batch, so a step
mixes the same pairs on any number of devices or hosts and again after a resume.
This module never imports TensorFlow.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

# Folded into the seed's key in place of a step: no run reaches this step, so mixup's draws
# never share a key with the augmentation's (`jax_augment.draws`).
_MIXUP_STREAM = 2**31 - 1


def blend_weights(seed: int, step: jax.Array, batch_size: int, alpha: float) -> jax.Array:
  """Each example's own share of its blend, float32 [batch_size], drawn from Beta(alpha, alpha)."""
  key = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), _MIXUP_STREAM), step)
  return jax.random.beta(key, alpha, alpha, (batch_size,), jnp.float32)


def blend_images(images: jax.Array, weights: jax.Array) -> jax.Array:
  """weight x each image + (1 - weight) x the next one of the batch (the last's next is the
  first); float32 pixels in the images' range, which the model takes as it takes uint8."""
  return _blend(images.astype(jnp.float32), weights[:, None, None, None])


def blend_losses(loss_for: Callable[[jax.Array], jax.Array], ages: jax.Array,
                 weights: jax.Array) -> jax.Array:
  """Per-example weight x the loss against its own ages + (1 - weight) x against its
  partner's; `loss_for(target ages)` gives per-example losses of the blended batch."""
  return weights * loss_for(ages) + (1.0 - weights) * loss_for(_next(ages))


def blend_ages(ages: jax.Array, weights: jax.Array) -> jax.Array:
  """The blended photos' ages, for the training MAE the progress line reports."""
  return _blend(ages, weights)


def _blend(values: jax.Array, weights: jax.Array) -> jax.Array:
  """weights x each row + (1 - weights) x the next row (`weights` broadcast over a row)."""
  return weights * values + (1.0 - weights) * _next(values)


def _next(values: jax.Array) -> jax.Array:
  return jnp.roll(values, -1, axis=0)
