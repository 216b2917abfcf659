"""Calibrates a run's ID-check policy on held-out photos, with a stated guarantee.

The entry point `ageflax.cli.calibrate_policy` (its docstring and `--help` say more).
"""

from ageflax.cli import calibrate_policy

if __name__ == "__main__":
  calibrate_policy.run()
