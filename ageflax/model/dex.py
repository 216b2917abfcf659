"""Age bins of the 'dex' head: expected age, spread, P(age < t), and the training labels.

The head is a softmax over one bin per year of age, 0..max age (bin k is age k); its
expected value (DEX, Rothe et al. 2015) or its median is the estimate (`point_estimate`),
its standard deviation a per-photo spread. Training targets put the true age's mass on
its bin, split linearly between the two nearest bins for a fractional age, or with
`sigma` > 0 spread as a Gaussian of that width over the bins (label-distribution
learning). Pure `jax.numpy` functions over the last axis, shared by the model, the train
step and prediction scripts; this module never imports TensorFlow.
"""

import jax
import jax.numpy as jnp

# How the estimate is read from a distribution: its mean (DEX's), or its median, which
# minimises the expected absolute error and is not pulled by one long tail (README, "Accuracy
# levers").
READOUTS = ("mean", "median")
TINY = 1e-12  # the median bin holds some mass; this only guards the division


def bin_ages(num_bins: int) -> jax.Array:
  """The age of each bin, 0..num_bins - 1 years, float32 [num_bins]."""
  return jnp.arange(num_bins, dtype=jnp.float32)


def expected_age(probabilities: jax.Array) -> jax.Array:
  """The mean age of distributions over the bins: [..., K] -> float32 [...]."""
  probabilities = jnp.asarray(probabilities, jnp.float32)
  return jnp.sum(probabilities * bin_ages(probabilities.shape[-1]), axis=-1)


def median_age(probabilities: jax.Array) -> jax.Array:
  """The median age of distributions over the bins: [..., K] -> float32 [...].

  Each bin's mass is spread evenly over its year, [k - 0.5, k + 0.5], so the median is
  continuous in the probabilities and a symmetric distribution's median is its mean.
  """
  probabilities = jnp.asarray(probabilities, jnp.float32)
  below = jnp.cumsum(probabilities, axis=-1) - probabilities  # the mass of the bins before
  # The median's bin is the last one with less than half the mass before it.
  median_bin = jnp.sum(below < 0.5, axis=-1, keepdims=True) - 1
  in_bin = bin_ages(probabilities.shape[-1]) == median_bin
  mass = jnp.sum(jnp.where(in_bin, probabilities, 0.0), axis=-1)
  before = jnp.sum(jnp.where(in_bin, below, 0.0), axis=-1)
  return median_bin[..., 0] - 0.5 + (0.5 - before) / jnp.maximum(mass, TINY)


def point_estimate(probabilities: jax.Array, readout: str) -> jax.Array:
  """The age `readout` ('mean' or 'median', see READOUTS) of distributions: [..., K] -> [...]."""
  if readout not in READOUTS:
    raise ValueError(f"a dex readout is one of {READOUTS}, not {readout!r}")
  return median_age(probabilities) if readout == "median" else expected_age(probabilities)


def age_spread(probabilities: jax.Array) -> jax.Array:
  """The standard deviation in years of distributions over the bins: [..., K] -> [...]."""
  probabilities = jnp.asarray(probabilities, jnp.float32)
  deviations = bin_ages(probabilities.shape[-1]) - expected_age(probabilities)[..., None]
  variance = jnp.sum(probabilities * jnp.square(deviations), axis=-1)
  return jnp.sqrt(jnp.maximum(variance, 0.0))  # rounding can make a point mass's negative


def probability_under(probabilities: jax.Array, threshold: float) -> jax.Array:
  """P(age < threshold): the mass of the bins whose age is below `threshold`, [..., K] -> [...].

  Bin k holds the photos of people aged k (k years and some months), so P(age < 18) is
  the mass of bins 0..17, the same test the alcohol check applies to true ages.
  """
  probabilities = jnp.asarray(probabilities, jnp.float32)
  below = bin_ages(probabilities.shape[-1]) < threshold
  return jnp.sum(jnp.where(below, probabilities, 0.0), axis=-1)


def label_distribution(ages: jax.Array, num_bins: int, sigma: float) -> jax.Array:
  """Training targets over the bins for true `ages` [...], each summing to 1: [..., K].

  Ages outside 0..num_bins - 1 are clipped to the first or last bin.

  Args:
    ages: true ages in years.
    num_bins: bins of ages 0..num_bins - 1.
    sigma: 0: all mass on the true age, split between the two nearest bins in proportion
      to the fraction of a year (so the label's mean is the age itself); > 0: a Gaussian
      of this width in years centred on the age, normalised over the bins.
  """
  ages = jnp.clip(jnp.asarray(ages, jnp.float32), 0.0, num_bins - 1.0)[..., None]
  bins = bin_ages(num_bins)
  if sigma > 0:
    return jax.nn.softmax(-jnp.square(bins - ages) / (2.0 * sigma**2), axis=-1)
  return jnp.maximum(0.0, 1.0 - jnp.abs(bins - ages))  # a triangle one bin wide each side


def cross_entropy(logits: jax.Array, ages: jax.Array, sigma: float) -> jax.Array:
  """Per-example cross-entropy of the bins' logits [B, K] against `label_distribution`, [B]."""
  labels = label_distribution(ages, logits.shape[-1], sigma)
  return -jnp.sum(labels * jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1), axis=-1)
