"""The canonical face frame: where five landmarks sit in every framed photo, and the warp there.

A face is framed by the similarity transform (rotation, uniform scale, shift; no shear, no
reflection) that moves its five landmarks (eye centres, nose tip, mouth corners) closest,
in least squares, to `CANONICAL_LANDMARKS` scaled to the output size: eyes level, the same
face size and position in every output. The template was measured on the real faces
(`../shared/data/faces`, UTKFace's aligned crops) as the landmarks' mean positions, so
those photos map nearly to themselves and runs trained before framing keep their meaning
(README, "Face framing"). Numpy and OpenCV only: no TensorFlow, no JAX.
"""

import cv2
import numpy as np

# (x, y) as fractions of the photo's side: the eye on the photo's left, the other eye, nose
# tip, the mouth corner on the photo's left, the other corner. The detector's mean landmarks
# on 493 of 500 real faces (scripts/calibrate_face_frame.py, README "Face framing").
CANONICAL_LANDMARKS = np.array([
    [0.2949, 0.2869],
    [0.6892, 0.2872],
    [0.4894, 0.5190],
    [0.3172, 0.6923],
    [0.6635, 0.6919],
], np.float64)


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
  """The 2x3 similarity matrix that maps `source` points [N, 2] closest to `target` [N, 2].

  Umeyama's least-squares solution, with reflections excluded.
  """
  source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
  source_centred, target_centred = source - source_mean, target - target_mean
  covariance = target_centred.T @ source_centred / len(source)
  u, singular, vt = np.linalg.svd(covariance)
  sign = np.eye(2)
  if np.linalg.det(u) * np.linalg.det(vt) < 0:
    sign[1, 1] = -1
  rotation = u @ sign @ vt
  variance = (source_centred ** 2).sum() / len(source)
  scale = np.trace(np.diag(singular) @ sign) / variance if variance > 0 else 1.0
  shift = target_mean - scale * rotation @ source_mean
  return np.hstack([scale * rotation, shift[:, None]])


def frame_matrix(landmarks: np.ndarray, size: int) -> np.ndarray:
  """The warp that puts `landmarks` [5, 2] (pixels) onto the canonical frame of side `size`."""
  return similarity_transform(np.asarray(landmarks, np.float64), CANONICAL_LANDMARKS * size)


def warp(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
  """`image` [H, W, 3] uint8 warped by the 2x3 `matrix` into a [size, size, 3] uint8 frame.

  Shrinking is done in two steps (area resize, then the warp) so that a large photo is
  antialiased like the pipeline's resize; parts outside the photo repeat its edge pixels.
  """
  scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
  if scale < 0.5:
    factor = 2 * scale
    height, width = image.shape[:2]
    shrunk = (max(round(width * factor), 1), max(round(height * factor), 1))
    image = cv2.resize(np.ascontiguousarray(image), shrunk, interpolation=cv2.INTER_AREA)
    matrix = matrix.copy()
    matrix[:, :2] /= factor
  return cv2.warpAffine(np.ascontiguousarray(image), matrix, (size, size),
                        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
  """Points [N, 2] moved by the 2x3 `matrix`."""
  return points @ matrix[:, :2].T + matrix[:, 2]
