"""Ages for photos at the till: estimate, age band and the ID-check answer for each photo.

The entry point `ageflax.cli.predict` (its docstring and `--help` say more).
"""

from ageflax.cli import predict as predict_cli

if __name__ == "__main__":
  predict_cli.run()
