"""Reading prepared TFDS records against reading the photo folder they were written from.

The entry point `ageflax.cli.benchmark_records` (its docstring and `--help` say more).
"""

from ageflax.cli import benchmark_records as benchmark_records_cli

if __name__ == "__main__":
  benchmark_records_cli.run()
