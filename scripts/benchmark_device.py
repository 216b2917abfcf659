"""Accelerator figures of the train step in one run: images/s, MFU and torchvision's beside.

The entry point `ageflax.cli.benchmark_device` (its docstring and `--help` say more).
"""

from ageflax.cli import benchmark_device as benchmark_device_cli

if __name__ == "__main__":
  benchmark_device_cli.run()
