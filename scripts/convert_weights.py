"""Converts ImageNet ResNet weights from Keras or torchvision into a backbone to train from.

The entry point `ageflax.cli.convert_weights` (its docstring and `--help` say more).
"""

from ageflax.cli import convert_weights as convert_weights_cli

if __name__ == "__main__":
  convert_weights_cli.run()
