"""The ID-check calibration keeps its promise: over many calibration draws of a synthetic
population, the chosen rule's true pass rate exceeds the target in no more than 1 - confidence
of them; and its bounds, counts and bad-input messages."""

import numpy as np
import pytest
from scipy import special

from ageflax.core.errors import ConfigError
from ageflax.evaluate import policy_calibration as calibration

TARGET, CONFIDENCE, DRAWS, CALIBRATION_SIZE = 0.05, 0.9, 2000, 4000


def _population(size: int = 200_000, seed: int = 0) -> dict[str, np.ndarray]:
  """Ages 10-70 with estimates off by a noisy 5 years and a model's P(age < 18) around them."""
  rng = np.random.default_rng(seed)
  ages = rng.uniform(10, 70, size)
  estimates = ages + rng.normal(1.0, 5.0, size)
  p_under = special.ndtr((18 - estimates) / 5 + rng.normal(0, 0.5, size))
  return {"ages": ages, "estimates": estimates, "p_under": p_under,
          "protected": calibration.in_range(ages, (13, 17)), "adults": ages >= 18}


def _families(data: dict, index=slice(None)) -> list[calibration.Family]:
  estimates, p_under = data["estimates"][index], data["p_under"][index]
  return [calibration.age_family(estimates, 18), calibration.probability_family(
      estimates, p_under, 18), calibration.combined_family(estimates, p_under, 18, 0.3)]


def _true_pass_rates(family: calibration.Family, protected: np.ndarray) -> np.ndarray:
  scores = np.sort(family.scores[protected])
  return 1 - np.searchsorted(scores, family.thresholds, side="left") / len(scores)


@pytest.mark.parametrize("kinds", [("age",), ("probability",), ("age", "probability",
                                                                "combined")])
def test_the_guarantee_holds_over_many_calibration_draws(kinds):
  population = _population()
  families = [f for f in _families(population) if f.kind in kinds]
  true_rates = {f.kind: _true_pass_rates(f, population["protected"]) for f in families}
  rng = np.random.default_rng(1)
  exceeded = naive_exceeded = 0
  for _ in range(DRAWS):
    index = rng.choice(len(population["ages"]), CALIBRATION_SIZE, replace=False)
    drawn = [f for f in _families(population, index) if f.kind in kinds]
    scans, best = calibration.choose(drawn, population["protected"][index],
                                     population["adults"][index], TARGET, CONFIDENCE)
    assert best is not None
    exceeded += true_rates[best[0].family.kind][best[1]] > TARGET
    # The point estimate as the rule: the most lenient threshold whose observed rate is on target.
    observed = scans[0].passed / scans[0].protected
    naive = int(np.flatnonzero(observed > TARGET)[0]) - 1
    naive_exceeded += true_rates[scans[0].family.kind][naive] > TARGET
  allowed = 1 - CONFIDENCE
  monte_carlo_error = 3 * np.sqrt(allowed * (1 - allowed) / DRAWS)
  assert exceeded / DRAWS <= allowed + monte_carlo_error
  assert naive_exceeded / DRAWS > 0.3  # the test can tell a method that breaks its promise


def test_clopper_pearson_bounds_and_photos_needed():
  assert calibration.upper_bound(0, 70, 0.95) == pytest.approx(1 - 0.05 ** (1 / 70))
  assert calibration.upper_bound(0, 70, 0.95) == pytest.approx(0.0419, abs=1e-4)
  assert calibration.upper_bound(5, 5, 0.95) == 1.0
  assert calibration.photos_needed(0.01, 0.95) == 299
  assert calibration.upper_bound(0, 299, 0.95) <= 0.01 < calibration.upper_bound(0, 298, 0.95)
  lower, upper = calibration.interval(3, 100)
  assert lower == pytest.approx(0.00622, abs=1e-4) and upper == pytest.approx(0.0852, abs=1e-4)
  assert calibration.interval(0, 10) == (0.0, pytest.approx(0.3085, abs=1e-4))


def test_too_few_protected_photos_is_one_honest_line():
  population = _population(size=2_000)
  teens = np.flatnonzero(population["protected"])[:70]
  keep = np.concatenate([teens, np.flatnonzero(population["adults"])])
  family = [calibration.age_family(population["estimates"][keep], 18)]
  scans, best = calibration.choose(family, population["protected"][keep],
                                   population["adults"][keep], 0.01, 0.95)
  assert best is None
  line = calibration.shortfall(scans, 0.01, 0.95)
  assert "\n" not in line
  assert line.startswith("70 protected photos cannot support at most 1% passing at 95%")
  assert "4.19%" in line and "299 protected photos" in line


def test_bad_inputs_name_the_flag():
  with pytest.raises(ConfigError, match="--protected_ages='teens' does not parse"):
    calibration.parse_age_range("teens", 18)
  with pytest.raises(ConfigError, match=r"--protected_ages=13-19: .* below the legal age"):
    calibration.parse_age_range("13-19", 18)
  assert calibration.parse_age_range("0-17", 18) == (0, 17)
  for value in (0, 1, 1.5, -0.1):
    with pytest.raises(ConfigError, match="--max_pass_rate must lie strictly between 0 and 1"):
      calibration.check_probability(value, "--max_pass_rate")
  ages = np.array([30.0, 40.0])
  with pytest.raises(ConfigError, match=r"no protected customers .*--protected_ages"):
    calibration.choose([calibration.age_family(ages, 18)], np.zeros(2, bool), np.ones(2, bool),
                       0.01, 0.95)


def test_realized_rates_count_each_group():
  ages = np.array([14, 16, 17.5, 19, 23, 30, 50])
  asked = np.array([True, False, True, True, False, False, True])
  rates = calibration.realized_rates(asked, ages, 18, (13, 17))
  assert rates["protected_passed"]["count"] == 1 and rates["protected_passed"]["of"] == 3
  assert rates["young_adults_asked"]["share"] == 0.5
  assert rates["adults_25_plus_asked"]["count"] == 1
  assert rates["adults_asked"]["of"] == 4
  assert rates["protected_passed"]["interval"][0] < 1 / 3 < rates["protected_passed"]["interval"][1]
