"""Data overview of a face-age folder, the first look before training.

The entry point `ageflax.cli.explore` (its docstring and `--help` say more).
"""

from ageflax.cli import explore as explore_cli

if __name__ == "__main__":
  explore_cli.run()
