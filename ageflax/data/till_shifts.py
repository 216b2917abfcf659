"""The till-camera shifts: decoded photos changed as a till's camera and light would change them.

Each shift is a small function of an upright uint8 RGB photo [H, W, 3] at its own size and a
numpy generator, returning a photo of the same shape; `SHIFTS` names them. `scripts/eval.py
--robustness` applies each to every photo of a split before the face normaliser (or before
the resize when photos are not framed) and reports each as its own row. What a shift draws
is a function of (seed, photo index, shift) only (`apply`), so a rerun shows the same
photos. NumPy and OpenCV only: no TensorFlow, no JAX.
"""

from collections.abc import Callable

import cv2
import numpy as np

from ageflax.core.errors import ConfigError

ROTATION_DEGREES = 8.0  # rotate_offset: a rotation uniform in [-8, 8] degrees ...
OFFSET_FRACTION = 0.06  # ... and an offset uniform in [-6%, 6%] of the side, on each axis.
JPEG_QUALITY = 30
BLUR_SIGMA_AT_200 = 1.5  # blur: sigma in pixels of a 200-pixel photo, scaled with its size.
LOW_RES_SIDE = 32  # low_res: the shorter side the photo is brought down to and back from.
DIM_GAIN, DIM_NOISE = 0.35, 3.0  # dim: pixels x 0.35, plus Gaussian noise of this std.
HARSH_CONTRAST, HARSH_GAMMA = 1.6, 1.4  # harsh: contrast around the mean, then this gamma.
WARM_GAINS, COOL_GAINS = (1.15, 1.0, 0.8), (0.8, 1.0, 1.15)  # colour_cast: RGB gains.


def rotate_offset(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """The photo rotated about its centre and moved, as a customer off the camera's axis;
  the edge pixels are repeated into what moves into view."""
  height, width = image.shape[:2]
  angle = rng.uniform(-ROTATION_DEGREES, ROTATION_DEGREES)
  offset = rng.uniform(-OFFSET_FRACTION, OFFSET_FRACTION, 2) * (width, height)
  matrix = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), angle, 1.0)
  matrix[:, 2] += offset
  return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)


def jpeg_q30(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """The photo encoded as a JPEG of quality 30 and decoded again."""
  del rng  # the codec is deterministic
  bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
  _, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
  return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """An out-of-focus photo: a Gaussian blur of sigma 1.5 pixels per 200 of the shorter side."""
  del rng
  sigma = BLUR_SIGMA_AT_200 * min(image.shape[:2]) / 200
  return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma,
                          borderType=cv2.BORDER_REFLECT_101)


def low_res(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """A far or cheap camera: brought down to 32 pixels on the shorter side and back up."""
  del rng
  height, width = image.shape[:2]
  scale = LOW_RES_SIDE / min(height, width)
  if scale >= 1:
    return image
  small = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))),
                     interpolation=cv2.INTER_AREA)
  return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def dim(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """A dim till: pixels at 35% with a little sensor noise."""
  pixels = image.astype(np.float32) * DIM_GAIN + rng.normal(0.0, DIM_NOISE, image.shape)
  return _to_uint8(pixels)


def harsh(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """Harsh light: contrast x1.6 around the photo's mean, then a gamma that deepens shadows;
  highlights and shadows clip."""
  del rng
  pixels = image.astype(np.float32)
  mean = pixels.mean()
  pixels = np.clip((pixels - mean) * HARSH_CONTRAST + mean, 0.0, 255.0)
  return _to_uint8(255.0 * (pixels / 255.0) ** HARSH_GAMMA)


def colour_cast(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """A warm (tungsten) or cool (fluorescent) light, each half of the photos: RGB gains."""
  gains = WARM_GAINS if rng.random() < 0.5 else COOL_GAINS
  return _to_uint8(image.astype(np.float32) * np.array(gains, np.float32))


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
  return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


Shift = Callable[[np.ndarray, np.random.Generator], np.ndarray]
SHIFTS: dict[str, Shift] = {"rotate_offset": rotate_offset, "jpeg_q30": jpeg_q30,
                            "blur": blur, "low_res": low_res, "dim": dim, "harsh": harsh,
                            "colour_cast": colour_cast}


def apply(name: str, seed: int, image: np.ndarray, index: int) -> np.ndarray:
  """Shift `name` of photo number `index`, its draws a function of (seed, index, shift);
  `functools.partial(apply, name, seed)` is an `image_store.PhotoShift`."""
  rng = np.random.default_rng([seed, index, list(SHIFTS).index(name)])
  return SHIFTS[name](np.ascontiguousarray(image), rng)


def parse_names(text: str) -> tuple[str, ...]:
  """'all' or comma-separated shift names -> the names, in `SHIFTS`' order; a one-line
  ConfigError names an unknown one."""
  if text.strip() == "all":
    return tuple(SHIFTS)
  names = [name.strip() for name in text.split(",") if name.strip()]
  unknown = [name for name in names if name not in SHIFTS]
  if unknown or not names:
    raise ConfigError(f"--shifts: unknown shift {unknown[0] if unknown else text!r}; 'all' or "
                      f"some of {', '.join(SHIFTS)}")
  return tuple(name for name in SHIFTS if name in names)
