"""Times ageflax's train step under each speed lever, side by side, in one run.

The entry point `ageflax.cli.benchmark_levers` (its docstring and `--help` say more).
"""

from ageflax.cli import benchmark_levers as benchmark_levers_cli

if __name__ == "__main__":
  benchmark_levers_cli.run()
