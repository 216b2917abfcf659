"""The study's setup: ResNet50 + global average pool, Adam, 224x224 (the package's defaults,
with the dex head read as its median).

  python train.py --config=configs/resnet50.py --config.data.dir=DATA --workdir=runs/r50
"""

import ml_collections

from ageflax.config import defaults


def get_config() -> ml_collections.ConfigDict:
  """The defaults with the dex head read as its median, which won on the real faces."""
  config = defaults.get_config()
  # Validation MAE 5.61 against the mean's 5.76 on the 45-minute run, test 5.94 against
  # 6.01 (README, "Accuracy levers"); the defaults keep the mean, so older runs keep theirs.
  config.model.dex_readout = "median"
  return config
