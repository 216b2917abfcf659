"""Load-tests a running till service: clients posting one photo, requests/s and latency.

The entry point `ageflax.cli.load_test` (its docstring and `--help` say more).
"""

from ageflax.cli import load_test as load_test_cli

if __name__ == "__main__":
  load_test_cli.run()
