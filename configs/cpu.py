"""Trains in minutes on a 2-core CPU: ResNet18 at 64x64, the dex head, AdamW with cosine decay."""

import ml_collections

from configs import resnet50


def get_config() -> ml_collections.ConfigDict:
  """The README's local config: the study's pipeline, scaled down for a laptop."""
  config = resnet50.get_config()
  config.data.image_size = 64  # 12x fewer pixels than 224x224: the main CPU saving.
  config.model.name = "resnet18"  # Under half of ResNet50's FLOPs per image.
  config.model.conv_impl = "auto"  # XLA's CPU convolution is slow on small maps.
  config.optim.name = "adamw"  # Adam with the decoupled weight decay below.
  config.optim.learning_rate = 2e-3  # 20x the study's 1e-4, for the few epochs below.
  config.optim.schedule = "cosine"  # Decays to 0 by the last step.
  config.optim.warmup_epochs = 0.5  # Eases into the higher peak rate.
  config.optim.weight_decay = 1e-4  # On conv/dense kernels only.
  config.train.batch_size = 64  # Twice the study's 32.
  config.train.num_epochs = 6.0  # Minutes on 2 cores.
  config.train.log_every_steps = 10  # Epochs are short: log more often.
  config.eval.batch_size = 128  # No gradients to keep: a larger batch fits.
  config.checkpoint.every_steps = 200  # Mid-epoch saves, for resuming.
  return config
