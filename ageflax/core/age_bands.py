"""The age bands every report groups photos by: 0-17, 18-24, 25-34, 35-44, 45-54, 55-64, 65+.

One definition for the data overview, the evaluation report and predictions. A photo falls
in the band of the floor of its age (17.9 is in 0-17); ages below 0, which only a model's
estimate can be, count as 0-17.
"""

import math
from typing import NamedTuple

import numpy as np


class AgeBand(NamedTuple):
  """A band of whole years, `first` to `last` inclusive (`last` is inf for the oldest)."""

  label: str
  first: int
  last: float


AGE_BANDS = (AgeBand("0-17", 0, 17), AgeBand("18-24", 18, 24), AgeBand("25-34", 25, 34),
             AgeBand("35-44", 35, 44), AgeBand("45-54", 45, 54), AgeBand("55-64", 55, 64),
             AgeBand("65+", 65, math.inf))
LABELS = tuple(band.label for band in AGE_BANDS)
_FIRST_YEARS = np.array([band.first for band in AGE_BANDS])


def band_index(ages: float | np.ndarray) -> np.ndarray:
  """The index into AGE_BANDS of each age (same shape as `ages`; a 0-d array for a scalar)."""
  years = np.maximum(np.floor(np.asarray(ages, np.float64)), 0)
  return np.searchsorted(_FIRST_YEARS, years, side="right") - 1


def band_of(age: float) -> str:
  """The label of the band of one age, e.g. '25-34' for 34.6."""
  return LABELS[int(band_index(age))]
