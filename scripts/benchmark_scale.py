"""What a training run costs as the records grow: memory, start-up time and images/s.

The entry point `ageflax.cli.benchmark_scale` (its docstring and `--help` say more).
"""

from ageflax.cli import benchmark_scale as benchmark_scale_cli

if __name__ == "__main__":
  benchmark_scale_cli.run()
