"""Compares the convolution algorithms of `model.conv_impl` on this machine.

The entry point `ageflax.cli.benchmark_conv` (its docstring and `--help` say more).
"""

from ageflax.cli import benchmark_conv as benchmark_conv_cli

if __name__ == "__main__":
  benchmark_conv_cli.run()
