"""The till model: cpu45.py with every face framed by the face normaliser (data.face_framing).

Photos are framed the same way in training, evaluation and prediction (README, "Face
framing"), so the model also holds up on till photos that show the whole head.
"""

import ml_collections

from configs import cpu45


def get_config() -> ml_collections.ConfigDict:
  """cpu45.py with face framing, trained for 10 epochs (its 45 minutes include framing)."""
  config = cpu45.get_config()
  config.data.face_framing.mode = "align"  # Detect, then warp 5 landmarks to the canonical frame.
  config.data.max_bad_fraction = 0.05  # About 1.5% of the real faces show no usable face.
  config.train.num_epochs = 10.0  # Framing 21,320 photos takes about 10 of the 45 minutes.
  # The study's rotation, shift and zoom, not cpu45.py's third. The third won here too
  # (README "Accuracy levers"), but the policy card, framing and robustness figures were
  # measured on this model and must be measured again before it changes.
  config.data.augment.rotation_degrees = 15.0
  config.data.augment.shift_fraction = 0.1
  config.data.augment.zoom_fraction = 0.1
  # cpu45.py's schedule before its one cycle, for the same reason.
  config.optim.warmup_epochs = 0.5
  config.optim.learning_rate = 2e-3
  # The median wins on the real faces but costs 0.25 MAE on loosely framed photos (`cacd`,
  # README "Accuracy levers"), the till's framing: the till model reads the mean.
  config.model.dex_readout = "mean"
  return config
