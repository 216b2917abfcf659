"""The till's ID-check policy: when a cashier must ask a customer for ID before selling alcohol.

Challenge-25 style: ask when the estimated age is below the challenge age (25 by default),
a margin above the legal age (18) that absorbs the estimate's error. With the dex head the
policy can also ask whenever the model's own P(age < legal age) exceeds a set risk, which
catches the uncertain estimates a single number hides.
"""

import dataclasses

import numpy as np

from ageflax.core.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class IdCheckPolicy:
  """Ask for ID when age < `challenge_age`, or (if `max_risk` is set) P(age < legal) > it.

  `source` says where the rule comes from (e.g. the calibration file), for every output.
  """

  legal_age: float = 18.0
  challenge_age: float = 25.0
  max_risk: float | None = None
  source: str = "fixed rule"

  def __post_init__(self):
    if not 0 < self.legal_age <= self.challenge_age:
      raise ConfigError(f"the legal age ({self.legal_age:g}) must be above 0 and at most the "
                        f"challenge age ({self.challenge_age:g}): --legal_age, --challenge_age")
    if self.max_risk is not None and not 0 <= self.max_risk < 1:
      raise ConfigError(f"--max_risk must be a probability in [0, 1), not {self.max_risk:g}")

  @classmethod
  def from_config(cls, eval_config, legal_age: float | None = None,
                  challenge_age: float | None = None,
                  max_risk: float | None = None) -> "IdCheckPolicy":
    """The policy of a run's `eval` config section, with any given age laid over it."""
    return cls(eval_config.legal_age if legal_age is None else legal_age,
               eval_config.challenge_age if challenge_age is None else challenge_age, max_risk)

  def needs_id(self, age: float, p_under_legal: float | None = None) -> bool:
    """Whether to ask for ID, given the estimate and (dex head) P(age < legal age)."""
    if age < self.challenge_age:
      return True
    return self.max_risk is not None and p_under_legal is not None and (
        p_under_legal > self.max_risk)

  def asks(self, ages: np.ndarray, p_under_legal: np.ndarray | None = None) -> np.ndarray:
    """`needs_id` of many photos at once: booleans in the order of `ages`."""
    asked = np.asarray(ages) < self.challenge_age
    if self.max_risk is not None and p_under_legal is not None:
      asked |= np.asarray(p_under_legal) > self.max_risk
    return asked

  def describe(self) -> str:
    """The policy in one line, for reports, saying which policy it is."""
    rule = f"ID check when the estimate is under {self.challenge_age:g}"
    if self.max_risk is not None:
      rule += f" or P(age < {self.legal_age:g}) > {self.max_risk:g}"
    return f"{rule} (legal age {self.legal_age:g}; {self.source})"
