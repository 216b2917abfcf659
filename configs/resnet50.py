"""The study's setup: ResNet50 + global average pool, Adam, 224x224 (the package's defaults,
with the dex head read as its median and the split drawn by content).

  python train.py --config=configs/resnet50.py --config.data.dir=DATA --workdir=runs/r50
"""

import ml_collections

from ageflax.config import defaults


def get_config() -> ml_collections.ConfigDict:
  """The defaults with what won on the real faces and holds on any hardware."""
  config = defaults.get_config()
  # Byte-identical copies of a photo (306 groups in the real faces) stay in one split, so
  # validation never scores a photo that training saw. The study's 75/25 shares stay.
  config.data.split_by = "content"
  # Validation MAE 5.61 against the mean's 5.76 on the 45-minute run, test 5.94 against
  # 6.01 (README, "Accuracy levers"); the defaults keep the mean, so older runs keep theirs.
  config.model.dex_readout = "median"
  return config
