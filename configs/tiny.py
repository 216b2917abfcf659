"""Smoke-test size: a one-block-per-stage ResNet at 32x32, seconds per run (used by tests)."""

import ml_collections

from configs import cpu


def get_config() -> ml_collections.ConfigDict:
  """cpu.py shrunk until a whole run takes seconds; not meant to learn much."""
  config = cpu.get_config()
  config.data.image_size = 32  # The smallest the tests' synthetic photos need.
  config.data.num_threads = 2  # The tests run several processes side by side.
  config.model.name = "_resnet_tiny"  # One block per stage at width 8: compiles in seconds.
  # The tests' expectations (e.g. validation loss = MSE) are written for a regression head.
  config.model.head = "affine"  # A regression head ...
  config.train.loss = "l2"  # ... trained with MSE ...
  config.train.label_sigma = 0.0  # ... whose labels are not smoothed.
  config.train.batch_size = 8  # Several steps per epoch from a few dozen photos.
  config.train.num_epochs = 2.0  # Enough to see an epoch end and a resume.
  config.train.log_every_steps = 2  # Progress lines within a short run.
  config.eval.batch_size = 8  # Padded, masked batches even on tiny splits.
  config.checkpoint.every_steps = 3  # A mid-epoch save within a short run.
  return config
