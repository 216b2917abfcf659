"""The 45-minute CPU run on real faces: cpu.py trained longer, with the dex head and a test split."""

import ml_collections

from configs import cpu


def get_config() -> ml_collections.ConfigDict:
  """cpu.py with what a 2-core, 45-minute budget affords; the test split is never trained on."""
  config = cpu.get_config()
  config.data.validation_fraction = 0.1  # 2,132 of the real faces: enough to pick a checkpoint.
  config.data.test_fraction = 0.1  # Held out from training and model selection.
  config.model.conv_impl = "matmul"  # 1.2x faster than 'auto' on this network (README).
  # The head that won the comparison on the real faces (README, scripts/compare_heads.sh),
  # spelled out so that this run stays what the README measured.
  config.model.head = "dex"
  config.train.loss = "dex"
  config.train.label_sigma = 2.0
  # Won the lever table (README, "Accuracy levers"): the same test MAE, smaller biases past 45,
  # and light, contrast and colour cast no longer move the estimate.
  config.model.input_normalization = "per_image"
  # A third of the study's rotation, shift and zoom: in this budget the network under-fits,
  # and the lighter warps won the lever table (README "Accuracy levers").
  config.data.augment.rotation_degrees = 5.0
  config.data.augment.shift_fraction = 0.03
  config.data.augment.zoom_fraction = 0.03
  # One cycle: a linear warm-up over the first 30% of the steps to a 1.5x higher peak, then
  # cosine to 0. Won the lever table (README "Accuracy levers"): validation 4.98 against 5.01.
  config.optim.warmup_epochs = 3.0
  config.optim.learning_rate = 3e-3
  config.train.num_epochs = 10.0  # 40 minutes on 2 cores at about 73 images/s.
  return config
