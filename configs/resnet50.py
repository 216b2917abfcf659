"""The study's setup: ResNet50 + global average pool, Adam, 224x224 (the package's defaults).

  python train.py --config=configs/resnet50.py --config.data.dir=DATA --workdir=runs/r50
"""

import ml_collections

from ageflax.config import defaults


def get_config() -> ml_collections.ConfigDict:
  """The defaults as they are: the study's pipeline with the head that won (dex)."""
  return defaults.get_config()
