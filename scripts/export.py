"""Exports a trained run for serving: a TensorFlow SavedModel (jax2tf) or an ONNX graph.

The entry point `ageflax.cli.export` (its docstring and `--help` say more).
"""

from ageflax.cli import export as export_cli

if __name__ == "__main__":
  export_cli.run()
