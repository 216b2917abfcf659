"""Faces in till photos: OpenCV's Haar cascade finds them, and each is cropped the way the
training photos were cropped.

The detector's model ships inside the `opencv-python-headless` 4.x wheel
(`cv2.data.haarcascades`), so nothing is downloaded. A Haar box is tighter than an aligned
training photo and sits a little higher on the face; `crop_scale` (crop side / box side)
and `crop_shift` (the crop centre's offset below the box centre, in box heights) map one to
the other, and `calibrate` measures both on a folder of training photos (README). The
photo is padded with its edge pixels before detection, so a face that already fills the
picture (an aligned crop) is still found.
"""

import dataclasses
import os
from collections.abc import Iterable

import cv2
import numpy as np

from ageflax.errors import ConfigError

CASCADE_FILE = "haarcascade_frontalface_default.xml"
# Measured by scripts/calibrate_face_crop.py on ../shared/data/faces (README).
DEFAULT_CROP_SCALE = 0.97
DEFAULT_CROP_SHIFT = 0.08


@dataclasses.dataclass(frozen=True)
class FaceBox:
  """A detected face, in pixels of the upright photo: top-left corner, width and height."""

  x: int
  y: int
  width: int
  height: int

  def __str__(self) -> str:
    return f"{self.x},{self.y},{self.width}x{self.height}"


class FaceDetector:
  """Finds frontal faces (largest first) and crops them like the training photos."""

  def __init__(self, crop_scale: float = DEFAULT_CROP_SCALE,
               crop_shift: float = DEFAULT_CROP_SHIFT, min_face_fraction: float = 0.1,
               border_fraction: float = 0.5, min_neighbors: int = 5):
    """
    Args:
      crop_scale: the crop's side over the detected box's side.
      crop_shift: how far below the box centre the crop is centred, in box heights.
      min_face_fraction: smallest face searched for, as a share of the photo's shorter side.
      border_fraction: edge padding added on each side before detection, as a share of
        the shorter side.
      min_neighbors: the cascade's overlapping detections needed to keep a face (higher:
        fewer false faces, more missed ones).
    """
    if not crop_scale > 0:
      raise ConfigError(f"--face_crop_scale must be > 0, not {crop_scale:g}")
    path = os.path.join(cv2.data.haarcascades, CASCADE_FILE)
    self._cascade = cv2.CascadeClassifier(path)
    if self._cascade.empty():
      raise ConfigError(f"cannot load the face detector {path}: install opencv-python-headless "
                        "4.x (the 5.0 wheels no longer ship the Haar cascades)")
    self.crop_scale = crop_scale
    self.crop_shift = crop_shift
    self.min_face_fraction = min_face_fraction
    self.border_fraction = border_fraction
    self.min_neighbors = min_neighbors

  def detect(self, image: np.ndarray) -> list[FaceBox]:
    """The faces in an upright uint8 RGB photo [H, W, 3], largest first."""
    gray = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    shorter = min(gray.shape)
    border = round(shorter * self.border_fraction)
    padded = cv2.copyMakeBorder(gray, border, border, border, border, cv2.BORDER_REPLICATE)
    smallest = max(int(shorter * self.min_face_fraction), 24)
    found = self._cascade.detectMultiScale(padded, scaleFactor=1.1,
                                           minNeighbors=self.min_neighbors,
                                           minSize=(smallest, smallest))
    boxes = [FaceBox(int(x) - border, int(y) - border, int(w), int(h)) for x, y, w, h in found]
    return sorted(boxes, key=lambda b: (-b.width * b.height, b.x, b.y))

  def crop(self, image: np.ndarray, box: FaceBox) -> np.ndarray:
    """The square crop around `box` that frames the face like a training photo; parts
    outside the photo repeat its edge pixels, as in detection."""
    side = max(round(max(box.width, box.height) * self.crop_scale), 1)
    centre_x = box.x + box.width / 2
    centre_y = box.y + box.height / 2 + self.crop_shift * box.height
    left, top = round(centre_x - side / 2), round(centre_y - side / 2)
    height, width = image.shape[:2]
    pad = max(0, -left, -top, left + side - width, top + side - height)
    if pad:
      image = cv2.copyMakeBorder(np.ascontiguousarray(image), pad, pad, pad, pad,
                                 cv2.BORDER_REPLICATE)
    return image[top + pad:top + pad + side, left + pad:left + pad + side]


def calibrate(detector: FaceDetector, photos: Iterable[np.ndarray]) -> dict[str, float]:
  """Measures `crop_scale` and `crop_shift` on aligned training photos (square, upright).

  For each photo where a face is found, the photo itself is the crop the detector's box
  should map to: scale = photo side / box side, shift = (photo centre - box centre) / box
  height. Returns the medians and how many photos had a face.
  """
  scales, shifts, seen = [], [], 0
  for image in photos:
    seen += 1
    boxes = detector.detect(image)
    if not boxes:
      continue
    box = boxes[0]
    scales.append(image.shape[1] / box.width)
    shifts.append((image.shape[0] / 2 - (box.y + box.height / 2)) / box.height)
  if not scales:
    raise ConfigError(f"no face found in any of the {seen} photos: cannot calibrate")
  return {"crop_scale": float(np.median(scales)), "crop_shift": float(np.median(shifts)),
          "photos": seen, "with_face": len(scales)}
