"""Reports a trained run's errors on a data folder (any layout) or on prepared records.

The entry point `ageflax.cli.eval` (its docstring and `--help` say more).
"""

from ageflax.cli import eval as eval_cli

if __name__ == "__main__":
  eval_cli.run()
