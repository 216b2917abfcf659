"""Trains an age regressor: python train.py --config=configs/resnet50.py --workdir=runs/r50.
"""

from ageflax.cli import train as train_cli

if __name__ == "__main__":
  train_cli.run()
