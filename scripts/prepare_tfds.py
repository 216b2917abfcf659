"""Writes a data folder, in any layout, once as TFDS records for cluster jobs.

The entry point `ageflax.cli.prepare_tfds` (its docstring and `--help` say more).
"""

from ageflax.cli import prepare_tfds as prepare_tfds_cli

if __name__ == "__main__":
  prepare_tfds_cli.run()
