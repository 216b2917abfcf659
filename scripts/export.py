"""Exports a trained run as a TensorFlow SavedModel (jax2tf) for TF Serving or any TF runtime.

The entry point `ageflax.cli.export` (its docstring and `--help` say more).
"""

from ageflax.cli import export as export_cli

if __name__ == "__main__":
  export_cli.run()
