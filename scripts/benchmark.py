"""Measures ageflax stage by stage, beside Keras and PyTorch, in one run.

The entry point `ageflax.cli.benchmark` (its docstring and `--help` say more).
"""

from ageflax.cli import benchmark as benchmark_cli

if __name__ == "__main__":
  benchmark_cli.run()
