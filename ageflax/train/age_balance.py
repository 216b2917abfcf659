"""Loss weights that balance the training ages: rare ages count more, common ages less.

Most training faces are 20-40; the young and the old are few, so a model trained on the
plain mean loss pulls their estimates towards the middle (children too old, the old too
young). `train.age_balance` = a > 0 weights each photo by the smoothed density of its age
to the power -a (label distribution smoothing: Yang et al., "Delving into Deep Imbalanced
Regression", ICML 2021): a = 0.5 is the inverse square root, 1 the full inverse.
The weights are a table over whole years, normalised to mean 1 over the training photos,
so the loss keeps its scale and the learning rate its meaning.
"""

import numpy as np

SMOOTHING_YEARS = 2.0  # std of the Gaussian that smooths the per-year counts
MAX_WEIGHT = 10.0  # times the mean weight: a handful of photos never dominates a batch


def age_weight_table(train_ages: np.ndarray, strength: float) -> np.ndarray:
  """float32 [max age + 1]: the weight of a photo of each whole age (ages round to a year)."""
  years = np.clip(np.rint(train_ages), 0, None).astype(np.int64)
  counts = np.bincount(years).astype(np.float64)
  offsets = np.arange(-int(4 * SMOOTHING_YEARS), int(4 * SMOOTHING_YEARS) + 1)
  kernel = np.exp(-0.5 * np.square(offsets / SMOOTHING_YEARS))
  density = np.convolve(counts, kernel / kernel.sum(), mode="same")
  weights = np.power(np.maximum(density, 1e-3), -strength)
  weights = np.minimum(weights / weights[years].mean(), MAX_WEIGHT)
  return (weights / weights[years].mean()).astype(np.float32)
