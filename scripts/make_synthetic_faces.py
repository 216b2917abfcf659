"""Writes a folder of synthetic, age-labelled face pictures.

The entry point `ageflax.cli.make_synthetic_faces` (its docstring and `--help` say more).
"""

from ageflax.cli import make_synthetic_faces as make_synthetic_faces_cli

if __name__ == "__main__":
  make_synthetic_faces_cli.run()
