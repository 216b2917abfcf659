"""Serves an ONNX export at the till over HTTP: photos in, ages and ID-check answers out.

The entry point `ageflax.cli.serve` (its docstring and `--help` say more).
"""

from ageflax.cli import serve as serve_cli

if __name__ == "__main__":
  serve_cli.run()
