"""Smoke-test size: a one-block-per-stage ResNet at 32x32, seconds per run (used by tests)."""

import ml_collections

from configs import cpu


def get_config() -> ml_collections.ConfigDict:
  """cpu.py shrunk until a whole run takes seconds; not meant to learn much."""
  config = cpu.get_config()
  config.data.image_size = 32
  config.data.num_threads = 2
  config.model.name = "_resnet_tiny"
  # The tests' expectations (e.g. validation loss = MSE) are written for a regression head.
  config.model.head = "affine"
  config.train.loss = "l2"
  config.train.label_sigma = 0.0
  config.train.batch_size = 8
  config.train.num_epochs = 2.0
  config.train.log_every_steps = 2
  config.eval.batch_size = 8
  config.checkpoint.every_steps = 3
  return config
