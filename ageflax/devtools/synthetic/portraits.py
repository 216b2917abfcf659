"""Procedurally drawn face pictures whose look depends on age.

This module owns the synthetic stand-in for a face-age data set: the drawing of
one face for a given age (`draw_face`) and the writing of a folder in the study's
layout (`write_synthetic_faces`: ``labels.csv`` plus ``final_files/*.jpg``). The
age distribution and the look are `look`'s (`sample_ages`), the strokes `drawing`'s.

Age shows through several redundant cues, each a continuous function of age
so that the mapping is smooth: head proportions, eye size and rosy cheeks
(children), nose and ear growth, hair greying and a receding hairline, forehead
wrinkles, crow's feet, eye bags, cheek hollows, nasolabial folds, drooping
lids, thinner lips, duller skin that turns pale and spotty in old age, and
beards only for adults. A small per-face shift of when the signs set in
stands for individual ageing pace. Nuisance variation (sex, skin tone, hair
colour and style, background, clothing, glasses, pose, lighting, noise, JPEG
quality) keeps the task from being trivial.
"""

from __future__ import annotations

import math
import os
import pathlib

import numpy as np
from PIL import Image, ImageDraw

from ageflax.devtools.synthetic.drawing import draw_portrait, place_head
from ageflax.devtools.synthetic.look import Colour, age_look, sample_ages, sample_style

_SUPERSAMPLE = 2
_LABELS_NAME = "labels.csv"
_LABELS_HEADER = "file_name,real_age"
_IMAGES_DIR = "final_files"
_JPEG_QUALITY = (85, 95)


def _background(colours: tuple[Colour, Colour], size: int) -> Image.Image:
  """Vertical gradient between two colours."""
  t = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
  top, bottom = (np.asarray(c, dtype=np.float32) for c in colours)
  column = (top + (bottom - top) * t).astype(np.uint8)
  return (
    Image.fromarray(column, "RGB").convert("RGBA").resize((size, size), Image.Resampling.NEAREST)
  )


def _finish(picture: Image.Image, rng: np.random.Generator) -> Image.Image:
  """Adds a directional lighting gradient and sensor noise."""
  pixels = np.asarray(picture, dtype=np.float32)
  size = pixels.shape[0]
  coords = np.linspace(-1.0, 1.0, size, dtype=np.float32)
  direction = float(rng.uniform(0.0, 2.0 * math.pi))
  light = coords[None, :] * math.cos(direction) + coords[:, None] * math.sin(direction)
  pixels = pixels * (1.0 + float(rng.uniform(0.0, 0.15)) * light)[..., None]
  pixels += float(rng.uniform(0.0, 4.0)) * rng.standard_normal(pixels.shape, dtype=np.float32)
  return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def draw_face(age: int, rng: np.random.Generator, image_size: int = 128) -> Image.Image:
  """Draws one face-like RGB picture whose look depends on `age`.

  Args:
    age: Age in years, in [1, 100].
    rng: Source of randomness for the nuisance variation.
    image_size: Side length of the square output picture in pixels.

  Returns:
    An RGB image of size ``(image_size, image_size)``.

  Raises:
    ValueError: If `age` or `image_size` is out of range.
  """
  if not 1 <= age <= 100:
    raise ValueError(f"age must be in [1, 100], got {age}")
  if image_size < 16:
    raise ValueError(f"image_size must be at least 16, got {image_size}")
  size = image_size * _SUPERSAMPLE
  look = age_look(float(age), float(rng.normal(0.0, 1.0)))
  style = sample_style(age, rng)
  layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
  canvas = place_head(ImageDraw.Draw(layer), look, size, rng)
  draw_portrait(canvas, look, style, rng)
  angle = float(rng.uniform(-10.0, 10.0))
  # Pillow draws without antialiasing anyway; the supersampled downscale smooths.
  layer = layer.rotate(angle, resample=Image.Resampling.NEAREST, center=(canvas.cx, canvas.cy))
  picture = _background(style.background, size)
  picture.alpha_composite(layer)
  small = picture.convert("RGB").reduce(_SUPERSAMPLE)
  return _finish(small, rng)


def write_synthetic_faces(
  directory: str | os.PathLike, num_faces: int, seed: int = 0, image_size: int = 128
) -> pathlib.Path:
  """Writes synthetic faces in the study's layout.

  Creates ``directory/labels.csv`` (header ``file_name,real_age``) and
  ``directory/final_files/NNNNNN.jpg``. Each face has its own random stream
  spawned from `seed`, so the output is byte-identical for the same seed and
  face ``i`` does not depend on `num_faces`.

  Args:
    directory: Folder to write into; created if missing.
    num_faces: Number of faces, at least 1.
    seed: Seed of all randomness.
    image_size: Side length of the square pictures in pixels.

  Returns:
    Path of the written ``labels.csv``.

  Raises:
    ValueError: If `num_faces` is below 1.
  """
  if num_faces < 1:
    raise ValueError(f"num_faces must be at least 1, got {num_faces}")
  root = pathlib.Path(directory)
  images = root / _IMAGES_DIR
  images.mkdir(parents=True, exist_ok=True)
  rows = [_LABELS_HEADER]
  for index, stream in enumerate(np.random.SeedSequence(seed).spawn(num_faces)):
    rng = np.random.default_rng(stream)
    age = int(sample_ages(1, rng)[0])
    name = f"{index:06d}.jpg"
    quality = int(rng.integers(_JPEG_QUALITY[0], _JPEG_QUALITY[1], endpoint=True))
    draw_face(age, rng, image_size).save(images / name, format="JPEG", quality=quality)
    rows.append(f"{name},{age}")
  labels = root / _LABELS_NAME
  labels.write_text("\n".join(rows) + "\n")
  return labels
