"""Measures the face normaliser on a data folder: photos/s per core, faces found, doubles.

The entry point `ageflax.cli.benchmark_faces` (its docstring and `--help` say more).
"""

from ageflax.cli import benchmark_faces as benchmark_faces_cli

if __name__ == "__main__":
  benchmark_faces_cli.run()
