"""The face normaliser measured on a folder: photos/s on one thread, faces found, doubles.

What `scripts/benchmark_faces.py` prints: for evenly spaced photos of a data folder, the
detector's rate on one thread (after a warm-up photo), the share of photos with at least
one usable face and with more than one, and how far the main face's landmarks sit from the
canonical frame as the photos are (a share of the side; small for photos already framed).
"""

import dataclasses
import time
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageOps

from ageflax.data import face_frame, faces
from ageflax.data.label_rows import Record


@dataclasses.dataclass(frozen=True)
class FaceFigures:
  """What the normaliser did on a sample of photos."""

  photos: int
  photos_per_second: float
  with_face: int
  with_several: int
  median_distance_to_frame: float

  def describe(self) -> str:
    return (f"{self.photos:,} photos: {self.photos_per_second:.1f} photos/s on one thread; "
            f"a usable face in {self.with_face:,} ({self.with_face / self.photos:.1%}), "
            f"more than one in {self.with_several:,} ({self.with_several / self.photos:.1%}); "
            f"main face's landmarks {self.median_distance_to_frame:.3f} of the side from the "
            "canonical frame (median, as the photos are)")


def load_upright(path: str) -> np.ndarray:
  """A photo as upright uint8 RGB (EXIF orientation applied)."""
  with Image.open(path) as image:
    return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def measure(records: Sequence[Record], normaliser: faces.FaceNormaliser) -> FaceFigures:
  """Runs the normaliser's detector once per photo, on this thread, and sums up."""
  images = [load_upright(r.path) for r in records]
  normaliser.detect(images[0])  # loads the nets
  started = time.perf_counter()
  found = [normaliser.detect(image) for image in images]
  seconds = time.perf_counter() - started
  distances = [np.linalg.norm(f[0].landmarks / [image.shape[1], image.shape[0]]
                              - face_frame.CANONICAL_LANDMARKS, axis=1).mean()
               for f, image in zip(found, images, strict=True) if f]
  return FaceFigures(len(images), len(images) / seconds, sum(bool(f) for f in found),
                     sum(len(f) > 1 for f in found),
                     float(np.median(distances)) if distances else float("nan"))
