"""When the till does not trust an estimate: the one set of rules that turn it into an ID check.

A photo can give an estimate that means nothing: a thumbnail, a face a few pixels wide, a
blurred or noisy picture, or one the dex head itself is unsure of. Such a photo gets
`ID check: yes` and the rule's reason, never a confident `no`. The rules and their limits
(the run config's `till` section) are:

- the photo's shorter side is below `min_photo_side` pixels;
- the detected face's shorter side is below `min_face_side` pixels;
- the model's input (the framed face, or the whole photo resized), at no more pixels than the
  photo (or face) had, is too blurred: the variance of the Laplacian of its grey image is
  below `min_sharpness`;
- it is noise, not a face: its fine detail (the Laplacian's standard deviation) is more than
  `max_noise_ratio` times its coarse contrast (the standard deviation of the means of 8x8
  pixel blocks, at 224 pixels; blocks the same share of the side at other sizes);
- dex head: the model's own standard deviation of the age is above `max_spread` years.

This module never imports TensorFlow.
"""

import dataclasses
from typing import TYPE_CHECKING

import ml_collections
import numpy as np
from PIL import Image

if TYPE_CHECKING:  # photos decodes with TensorFlow; the till service judges without it
  from ageflax.till.photos import Photo

_GREY_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601 luma
# Coarse contrast averages blocks of 8x8 pixels of a 224-pixel input, the same share of smaller
# or larger inputs: the ratio of a face then does not depend on the model's image size.
_COARSE_BLOCK_SHARE = 8 / 224


@dataclasses.dataclass(frozen=True)
class TrustRules:
  """The limits below or above which an estimate is not trusted (see the module docstring)."""

  min_photo_side: int
  min_face_side: int
  min_sharpness: float
  max_noise_ratio: float
  max_spread: float

  @classmethod
  def from_config(cls, till_config: ml_collections.ConfigDict) -> "TrustRules":
    """The rules of a run config's `till` section."""
    return cls(**{field.name: till_config[field.name] for field in dataclasses.fields(cls)})

  def distrust(self, photo: "Photo", spread: float | None = None) -> str | None:
    """Why the estimate for `photo` (whose dex spread is `spread`) is not trusted, or None."""
    if photo.size and min(photo.size) < self.min_photo_side:
      return f"photo too small to judge ({photo.size[0]}x{photo.size[1]})"
    if photo.box and min(photo.box.width, photo.box.height) < self.min_face_side:
      return f"face too small to judge ({photo.box.width}x{photo.box.height})"
    grey = native_scale(grey_image(photo.image), photo)
    detail = laplacian_variance(grey)
    if detail < self.min_sharpness:
      return f"too blurred to judge (sharpness {detail:.1f} < {self.min_sharpness:g})"
    ratio = np.sqrt(detail) / max(coarse_contrast(grey), 1e-6)
    if ratio > self.max_noise_ratio:
      return f"noise, not a face (detail {ratio:.1f}x its contrast)"
    if spread is not None and spread > self.max_spread:
      return f"model unsure (spread {spread:.1f} > {self.max_spread:g} years)"
    return None


def grey_image(image: np.ndarray) -> np.ndarray:
  """The float32 grey image [H, W] of a uint8 RGB image [H, W, 3]."""
  return np.asarray(image, np.float32) @ _GREY_WEIGHTS


def native_scale(grey: np.ndarray, photo: "Photo") -> np.ndarray:
  """`grey` shrunk to the pixels the photo (or its face) really had: an upscaled picture is
  judged at the detail it carries, so upscaled noise or a thumbnail does not look smooth."""
  native = min(photo.box.width, photo.box.height) if photo.box else min(photo.size or grey.shape)
  if native >= min(grey.shape):
    return grey
  scale = native / min(grey.shape)
  size = (max(1, round(grey.shape[1] * scale)), max(1, round(grey.shape[0] * scale)))
  return np.asarray(Image.fromarray(grey, mode="F").resize(size, Image.Resampling.BOX))


def laplacian_variance(grey: np.ndarray) -> float:
  """The variance of the 4-neighbour Laplacian of a grey image: low when it is blurred."""
  laplacian = (grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:]
               - 4 * grey[1:-1, 1:-1])
  return float(laplacian.var())


def coarse_contrast(grey: np.ndarray) -> float:
  """The standard deviation of a grey image's block means: a face keeps it, noise loses it."""
  block = max(1, round(_COARSE_BLOCK_SHARE * min(grey.shape)))
  height, width = (side - side % block for side in grey.shape)
  blocks = grey[:height, :width].reshape(height // block, block, width // block, block)
  return float(blocks.mean(axis=(1, 3)).std())
