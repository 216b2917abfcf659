"""The one computation of age statistics, and the training figures a run keeps."""

import math

import numpy as np

from ageflax.core import age_stats


def test_statistics_as_pandas_reports_them():
  stats = age_stats.age_statistics(np.array([20.0, 30.0, 40.0, 90.0]))
  assert stats == {"count": 4, "min": 20.0, "mean": 45.0, "median": 35.0, "max": 90.0,
                   "std": float(np.std([20, 30, 40, 90], ddof=1))}
  assert age_stats.age_statistics([7.0])["std"] == 0.0


def test_float32_ages_give_the_image_stores_mean():
  ages = np.array([1.1, 2.2, 3.3], np.float32)
  assert age_stats.age_statistics(ages)["mean"] == float(np.mean(ages))


def test_no_ages():
  stats = age_stats.age_statistics([])
  assert stats["count"] == 0 and stats["mean"] is None and stats["std"] is None
  summary = age_stats.training_summary(stats)
  assert set(summary) == {"train_mean_age", "train_median_age"}
  assert all(math.isnan(value) for value in summary.values())
