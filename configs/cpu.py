"""Trains in minutes on a 2-core CPU: ResNet18 at 64x64, the dex head, AdamW with cosine decay."""

import ml_collections

from configs import resnet50


def get_config() -> ml_collections.ConfigDict:
  """The README's local config: the study's pipeline, scaled down for a laptop."""
  config = resnet50.get_config()
  config.data.image_size = 64
  config.model.name = "resnet18"
  config.model.conv_impl = "auto"  # XLA's CPU convolution is slow on small maps.
  config.optim.name = "adamw"
  config.optim.learning_rate = 2e-3
  config.optim.schedule = "cosine"
  config.optim.warmup_epochs = 0.5
  config.optim.weight_decay = 1e-4
  config.train.batch_size = 64
  config.train.num_epochs = 6.0
  config.train.log_every_steps = 10
  config.eval.batch_size = 128
  config.checkpoint.every_steps = 200
  return config
