"""Procedurally drawn face pictures whose look depends on age.

This module owns the synthetic stand-in for a face-age data set: the age
distribution (`sample_ages`), the drawing of one face for a given age
(`draw_face`) and the writing of a folder in the study's layout
(`write_synthetic_faces`: ``labels.csv`` plus ``final_files/*.jpg``).

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

import dataclasses
import math
import os
import pathlib

import numpy as np
from PIL import Image, ImageDraw

Colour = tuple[int, int, int]

_SUPERSAMPLE = 2
_LABELS_NAME = "labels.csv"
_LABELS_HEADER = "file_name,real_age"
_IMAGES_DIR = "final_files"
_JPEG_QUALITY = (85, 95)

_SKIN_TONES: tuple[Colour, ...] = (
  (255, 226, 200),
  (244, 203, 170),
  (230, 180, 140),
  (205, 150, 110),
  (170, 115, 80),
  (120, 80, 55),
)
_HAIR_COLOURS: tuple[Colour, ...] = (
  (22, 18, 16),
  (52, 36, 26),
  (95, 62, 36),
  (190, 150, 90),
  (145, 65, 30),
)
_EYE_COLOURS: tuple[Colour, ...] = (
  (70, 45, 25),
  (110, 75, 40),
  (60, 100, 150),
  (75, 110, 70),
)
_GREY: Colour = (140, 138, 136)
_WHITE: Colour = (238, 237, 233)
_EYE_WHITE: Colour = (245, 243, 238)
_HAIR_STYLES = ("short", "curly", "long", "bob")
# Weights of children, young adults, older adults and a uniform floor over 1-100.
_AGE_MIXTURE = (0.10, 0.62, 0.25, 0.03)


@dataclasses.dataclass(frozen=True)
class _AgeLook:
  """Shape and texture parameters; each a smooth function of age."""

  child: float  # 1 for a newborn, 0 from 20 on
  aspect: float  # head half-height over half-width
  eye_drop: float  # eye line below head centre, in half-heights
  eye_radius: float  # in half-widths
  nose_length: float  # in half-heights
  ear_size: float  # in half-widths
  lip: float  # lip thickness, in half-widths
  lid_droop: float  # share of the eye covered by the upper lid
  grey: float
  white: float
  recession: float
  wrinkles: float
  hollows: float  # shadows under the cheekbones
  dullness: float  # loss of skin saturation
  crows_feet: float
  bags: float
  folds: float
  spots: float
  sag: float
  mouth_lines: float


@dataclasses.dataclass(frozen=True)
class _Style:
  """Age-independent nuisance choices for one face."""

  male: bool
  skin: Colour
  hair: Colour
  hair_style: str
  eye_colour: Colour
  shirt: Colour
  background: tuple[Colour, Colour]
  beard: str  # "none", "stubble" or "full"
  glasses: bool
  recession_scale: float
  brow_weight: float
  smile: float


@dataclasses.dataclass(frozen=True)
class _Canvas:
  """Drawing surface in head coordinates: u in half-widths, v in half-heights."""

  draw: ImageDraw.ImageDraw
  cx: float
  cy: float
  w: float
  h: float
  line: int

  def at(self, u: float, v: float) -> tuple[float, float]:
    """Returns the pixel position of head coordinates (u, v)."""
    return (self.cx + u * self.w, self.cy + v * self.h)

  def box(self, u: float, v: float, ru: float, rv: float) -> tuple[float, ...]:
    """Returns the bounding box of an ellipse with radii in half-widths."""
    x, y = self.at(u, v)
    return (x - ru * self.w, y - rv * self.w, x + ru * self.w, y + rv * self.w)

  def stroke(self, strength: float) -> int:
    """Returns a line width that thickens with an age sign's strength."""
    return self.line + round(self.line * strength)

  def head_box(self, grow: float = 1.0) -> tuple[float, ...]:
    """Returns the bounding box of the head outline, optionally grown."""
    return (
      self.cx - grow * self.w,
      self.cy - grow * self.h,
      self.cx + grow * self.w,
      self.cy + grow * self.h,
    )


def _ramp(lo: float, hi: float, x: float) -> float:
  return float(min(max((x - lo) / (hi - lo), 0.0), 1.0))


def _smoothstep(lo: float, hi: float, x: float) -> float:
  t = _ramp(lo, hi, x)
  return t * t * (3.0 - 2.0 * t)


def _mix(a: Colour, b: Colour, t: float) -> Colour:
  t = min(max(t, 0.0), 1.0)
  return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def _shade(colour: Colour, factor: float) -> Colour:
  return tuple(int(min(255, round(c * factor))) for c in colour)  # type: ignore[return-value]


def _chord(
  draw: ImageDraw.ImageDraw, box: tuple[float, ...], start: float, end: float, fill: Colour
) -> None:
  # Pillow fills a band across the whole image for some fractional angles.
  draw.chord(box, round(start), round(end), fill=fill)


def _top_chord(
  draw: ImageDraw.ImageDraw, box: tuple[float, ...], level: float, fill: Colour
) -> None:
  """Fills the part of an ellipse above `level` (-1 top, 0 centre, 1 bottom)."""
  angle = math.degrees(math.asin(min(max(level, -1.0), 1.0)))
  _chord(draw, box, 180 - angle, 360 + angle, fill)


def sample_ages(num_faces: int, rng: np.random.Generator) -> np.ndarray:
  """Draws ages skewed like face-age data sets.

  A mixture of children, a young-adult bulk (18-45), an older tail and a
  thin uniform floor so that every age from 1 to 100 can occur. The mean is
  about 33.

  Args:
    num_faces: How many ages to draw.
    rng: Source of randomness.

  Returns:
    Integer array of shape ``(num_faces,)`` with values in [1, 100].
  """
  component = rng.choice(len(_AGE_MIXTURE), size=num_faces, p=_AGE_MIXTURE)
  candidates = np.stack(
    [
      rng.uniform(0.5, 17.5, num_faces),
      rng.lognormal(math.log(27.0), 0.2, num_faces),
      rng.normal(56.0, 15.0, num_faces),
      rng.uniform(0.5, 100.5, num_faces),
    ]
  )
  ages = candidates[component, np.arange(num_faces)]
  return np.clip(np.rint(ages), 1, 100).astype(np.int64)


def _age_look(age: float, onset_shift: float) -> _AgeLook:
  """Maps an age to look parameters; `onset_shift` models ageing pace."""
  a = age + onset_shift
  child = 1.0 - _ramp(0.0, 20.0, age)
  return _AgeLook(
    child=child,
    aspect=1.30 - 0.30 * child - 0.08 * _ramp(25.0, 75.0, a),
    eye_drop=0.22 * child,
    eye_radius=0.13 + 0.10 * child,
    nose_length=0.30 + 0.10 * _ramp(0.0, 90.0, age) - 0.08 * child,
    ear_size=0.16 + 0.06 * _ramp(0.0, 90.0, age),
    lip=0.075 - 0.04 * _ramp(30.0, 90.0, a),
    lid_droop=0.12 + 0.4 * _ramp(25.0, 90.0, a),
    grey=_ramp(24.0, 65.0, a),
    white=_ramp(55.0, 88.0, a),
    recession=_ramp(35.0, 75.0, a),
    wrinkles=_ramp(18.0, 80.0, a),
    hollows=_ramp(18.0, 85.0, a),
    dullness=_ramp(18.0, 85.0, a),
    crows_feet=_ramp(25.0, 75.0, a),
    bags=_ramp(25.0, 85.0, a),
    folds=_ramp(28.0, 80.0, a),
    spots=_ramp(58.0, 95.0, a),
    sag=_ramp(50.0, 95.0, a),
    mouth_lines=_ramp(45.0, 85.0, a),
  )


def _sample_style(age: int, rng: np.random.Generator) -> _Style:
  """Draws the nuisance choices; beards only for adults."""
  male = bool(rng.random() < 0.5)
  beard = "none"
  if male and age >= 18:
    beard = str(rng.choice(["none", "stubble", "full"], p=[0.55, 0.25, 0.2]))
  styles = (0.45, 0.35, 0.1, 0.1) if male else (0.05, 0.15, 0.45, 0.35)
  background = tuple(tuple(int(c) for c in rng.integers(30, 235, 3)) for _ in range(2))
  return _Style(
    male=male,
    skin=_jitter(_SKIN_TONES[rng.integers(len(_SKIN_TONES))], rng, 10),
    hair=_jitter(_HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))], rng, 12),
    hair_style=str(rng.choice(_HAIR_STYLES, p=styles)),
    eye_colour=_EYE_COLOURS[rng.integers(len(_EYE_COLOURS))],
    shirt=tuple(int(c) for c in rng.integers(20, 235, 3)),
    background=background,
    beard=beard,
    glasses=bool(rng.random() < 0.08 + 0.3 * _ramp(40.0, 75.0, age)),
    recession_scale=float(rng.uniform(0.6, 1.1) if male else rng.uniform(0.0, 0.25)),
    brow_weight=float(rng.uniform(0.7, 1.3) * (1.2 if male else 0.9)),
    smile=float(rng.uniform(-0.3, 1.0)),
  )


def _jitter(colour: Colour, rng: np.random.Generator, amount: int) -> Colour:
  noisy = np.asarray(colour) + rng.integers(-amount, amount + 1, 3)
  return tuple(int(c) for c in np.clip(noisy, 0, 255))  # type: ignore[return-value]


def _hair_colour(style: _Style, look: _AgeLook) -> Colour:
  return _mix(_mix(style.hair, _GREY, look.grey), _WHITE, look.white)


def _skin_colour(style: _Style, look: _AgeLook) -> Colour:
  # Skin is vivid in childhood and loses saturation through adulthood (a large-area cue
  # that survives 64x64), then turns paler in old age, independently of the base tone.
  grey = round(sum(style.skin) / 3)
  vivid = tuple(min(255, max(0, round(c + 0.4 * look.child * (c - grey)))) for c in style.skin)
  dull = _mix(vivid, (grey, grey, grey), 0.65 * look.dullness)  # type: ignore[arg-type]
  return _mix(dull, _shade((grey, grey, grey), 1.15), 0.3 * look.spots)


def _draw_body(canvas: _Canvas, look: _AgeLook, style: _Style, skin: Colour) -> None:
  """Shoulders and neck; children have narrower shoulders and necks."""
  d, w = canvas.draw, canvas.w
  shoulder = w * (1.35 + 0.55 * (1.0 - look.child))
  top = canvas.cy + canvas.h + 0.2 * w
  d.ellipse((canvas.cx - shoulder, top, canvas.cx + shoulder, top + 2.5 * w), fill=style.shirt)
  neck = 0.42 - 0.08 * look.child
  x0, y0 = canvas.at(-neck, 0.5)
  x1, _ = canvas.at(neck, 1.0)
  d.rectangle((x0, y0, x1, top + 0.35 * w), fill=_shade(skin, 0.85))
  d.ellipse((x0, top + 0.1 * w, x1, top + 0.6 * w), fill=_shade(skin, 0.85))


def _draw_hair_back(
  canvas: _Canvas, style: _Style, hair: Colour, thin: float, skin: Colour
) -> None:
  """Hair volume behind the head; long styles fall to the shoulders."""
  d = canvas.draw
  top = _mix(hair, skin, thin)
  _chord(d, canvas.head_box(1.09), 165, 375, top)
  if style.hair_style in ("long", "bob"):
    drop = 1.45 if style.hair_style == "long" else 0.85
    x0, y0 = canvas.at(-1.12, -0.2)
    x1, y1 = canvas.at(1.12, drop)
    d.rounded_rectangle((x0, y0, x1, y1), radius=0.3 * canvas.w, fill=hair)
  elif style.hair_style == "curly":
    for angle in np.linspace(150, 390, 16):
      rad = math.radians(angle)
      u, v = 1.02 * math.cos(rad), 1.0 * math.sin(rad)
      d.ellipse(canvas.box(u, v, 0.2, 0.2), fill=top)


def _draw_head(canvas: _Canvas, look: _AgeLook, skin: Colour) -> None:
  """Ears, then the head outline, cheeks and a double chin when old."""
  d = canvas.draw
  ear_v = look.eye_drop + 0.12
  for side in (-1, 1):
    d.ellipse(
      canvas.box(side * 0.97, ear_v, look.ear_size * 0.75, look.ear_size * 1.4),
      fill=_shade(skin, 0.92),
    )
  d.ellipse(canvas.head_box(), fill=skin)
  if look.sag > 0:
    jaw = 0.8 + 0.08 * look.sag
    x0, y0 = canvas.at(-jaw, 0.35)
    x1, y1 = canvas.at(jaw, 1.0 + 0.03 * look.sag)
    d.ellipse((x0, y0, x1, y1), fill=skin)
    line = _mix(skin, _shade(skin, 0.6), look.sag)
    d.arc(canvas.box(0.0, 0.83, 0.32, 0.16), 20, 160, fill=line, width=canvas.stroke(look.sag))
  if look.hollows > 0:
    hollow = _mix(skin, _shade(skin, 0.72), 0.5 * look.hollows)
    for side in (-1, 1):
      d.ellipse(canvas.box(side * 0.58, look.eye_drop + 0.45, 0.15, 0.22), fill=hollow)
  if look.child > 0.05:
    blush = _mix(skin, (235, 120, 120), 0.5 * look.child)
    for side in (-1, 1):
      d.ellipse(canvas.box(side * 0.5, look.eye_drop + 0.33, 0.16, 0.11), fill=blush)


def _draw_spots(canvas: _Canvas, look: _AgeLook, skin: Colour, rng: np.random.Generator) -> None:
  """Age spots on the forehead and cheeks in old age."""
  count = round(10 * look.spots)
  spot = _shade(skin, 0.72)
  for _ in range(count):
    u, v = rng.uniform(-0.65, 0.65), rng.uniform(-0.7, 0.5)
    r = rng.uniform(0.025, 0.05)
    canvas.draw.ellipse(canvas.box(u, v, r, r * 0.8), fill=spot)


def _draw_forehead_lines(canvas: _Canvas, look: _AgeLook, skin: Colour) -> None:
  """Forehead wrinkles appear one by one and darken with age."""
  dark = _shade(skin, 0.5)
  brow_v = look.eye_drop - 0.22
  for i in range(4):
    strength = min(max(look.wrinkles * 4.5 - i, 0.0), 1.0)
    if strength <= 0:
      break
    v = brow_v - 0.1 - 0.085 * i
    half = 0.42 - 0.04 * i
    x0, y0 = canvas.at(-half, v - 0.05)
    x1, y1 = canvas.at(half, v + 0.05)
    colour = _mix(skin, dark, 0.25 + 0.6 * strength * look.wrinkles**0.3)
    canvas.draw.arc((x0, y0, x1, y1), 195, 345, fill=colour, width=canvas.stroke(look.wrinkles))


def _draw_hair_front(
  canvas: _Canvas, look: _AgeLook, style: _Style, hair: Colour, skin: Colour
) -> None:
  """Front hair down to the hairline, which recedes with age in an M shape."""
  recession = look.recession * style.recession_scale
  thin = _smoothstep(0.45, 1.0, recession)
  front = _mix(hair, skin, 0.9 * thin)
  hairline = -(0.5 + 0.38 * recession) if style.hair_style in ("short", "curly") else -0.45
  grow = 1.04
  _top_chord(canvas.draw, canvas.head_box(grow), hairline / grow, front)
  if style.hair_style in ("long", "bob"):
    tip = canvas.at(-0.95, 0.1)
    canvas.draw.polygon(
      [canvas.at(-0.2, -0.75), canvas.at(-0.8, -0.45), tip, canvas.at(-1.05, -0.5)], fill=hair
    )
  notch = 0.25 * recession * (1.0 - thin)
  if notch > 0.02:
    for side in (-1, 1):
      canvas.draw.ellipse(canvas.box(side * 0.5, hairline - 0.05, notch, notch * 1.1), fill=skin)
  if style.hair_style in ("short", "curly"):
    # Hair at the sides stays when the top thins, as in male-pattern baldness.
    width = max(1, round(0.13 * canvas.w))
    canvas.draw.arc(canvas.head_box(1.05), 178, 232, fill=hair, width=width)
    canvas.draw.arc(canvas.head_box(1.05), 308, 362, fill=hair, width=width)


def _draw_eye(canvas: _Canvas, look: _AgeLook, style: _Style, side: int, skin: Colour) -> None:
  """One eye: white, iris, pupil, a drooping lid and a highlight."""
  d, r = canvas.draw, look.eye_radius
  u, v = side * 0.38, look.eye_drop
  openness = 0.6 + 0.15 * look.child
  eye_box = canvas.box(u, v, r, r * openness)
  d.ellipse(eye_box, fill=_EYE_WHITE, outline=_shade(skin, 0.55), width=canvas.line)
  iris = 0.62 * r * (1.0 + 0.2 * look.child)
  d.ellipse(canvas.box(u, v, iris * 0.85, iris * 0.85), fill=style.eye_colour)
  d.ellipse(canvas.box(u, v, iris * 0.42, iris * 0.42), fill=(15, 12, 12))
  d.ellipse(
    canvas.box(u + 0.2 * iris, v - 0.25 * iris, iris * 0.18, iris * 0.18), fill=(255, 255, 255)
  )
  lid_box = canvas.box(u, v, r * 1.1, r * openness * 1.1)
  _top_chord(d, lid_box, (2.0 * look.lid_droop - 1.0) / 1.1, skin)
  lid_line = canvas.box(
    u, v - 0.02 * look.lid_droop, r * 1.02, r * openness * (1.1 - look.lid_droop)
  )
  d.arc(lid_line, 200, 340, fill=_shade(skin, 0.45), width=canvas.line)


def _draw_eye_ageing(canvas: _Canvas, look: _AgeLook, side: int, skin: Colour) -> None:
  """Crow's feet at the outer corner and bags below the eye."""
  d, r = canvas.draw, look.eye_radius
  u, v = side * 0.38, look.eye_drop
  dark = _shade(skin, 0.55)
  if look.crows_feet > 0:
    colour = _mix(skin, dark, 0.3 + 0.7 * look.crows_feet)
    n_lines = 1 + int(look.crows_feet * 2.99)
    for i in range(n_lines):
      spread = (i - (n_lines - 1) / 2) * 0.07
      x0, y0 = canvas.at(u + side * (r + 0.05), v + spread * 0.5)
      x1, y1 = canvas.at(u + side * (r + 0.05 + 0.1 + 0.08 * look.crows_feet), v + spread * 1.6)
      d.line((x0, y0, x1, y1), fill=colour, width=canvas.stroke(look.crows_feet))
  if look.bags > 0:
    below = v + 0.6 * r * canvas.w / canvas.h
    shadow = canvas.box(u, below, r * 0.95, r * (0.35 + 0.35 * look.bags))
    _chord(d, shadow, 0, 180, _mix(skin, dark, 0.35 * look.bags))
    bag = canvas.box(u, below, r * 0.9, r * (0.4 + 0.3 * look.bags))
    d.arc(
      bag, 15, 165, fill=_mix(skin, dark, 0.3 + 0.6 * look.bags), width=canvas.stroke(look.bags)
    )


def _draw_brows(canvas: _Canvas, look: _AgeLook, style: _Style, hair: Colour) -> None:
  """Eyebrows follow the hair colour, lagging slightly in greying."""
  colour = _shade(_mix(hair, _mix(style.hair, hair, 0.7), 0.5), 0.8)
  width = max(1, round(canvas.w * 0.05 * style.brow_weight * (1.0 - 0.4 * look.child)))
  v = look.eye_drop - look.eye_radius * canvas.w / canvas.h - 0.1
  for side in (-1, 1):
    box = canvas.box(side * 0.38, v + 0.06, 0.2, 0.08)
    canvas.draw.arc(box, 200, 340, fill=colour, width=width)


def _draw_nose(canvas: _Canvas, look: _AgeLook, skin: Colour) -> float:
  """Draws the nose and returns the v coordinate of its bottom."""
  d = canvas.draw
  bottom = look.eye_drop + look.nose_length
  half = 0.13 + 0.03 * (1.0 - look.child)
  shadow = _shade(skin, 0.72)
  d.line(
    (*canvas.at(0.06, look.eye_drop + 0.1), *canvas.at(half * 0.7, bottom - 0.06)),
    fill=shadow,
    width=canvas.line,
  )
  d.arc(
    canvas.box(0.0, bottom - 0.06, half, 0.07), 20, 160, fill=_shade(skin, 0.6), width=canvas.line
  )
  for side in (-1, 1):
    d.ellipse(canvas.box(side * half * 0.5, bottom - 0.03, 0.035, 0.022), fill=_shade(skin, 0.45))
  return bottom


def _draw_folds(canvas: _Canvas, look: _AgeLook, skin: Colour, nose_bottom: float) -> None:
  """Nasolabial folds from the nose wings towards the mouth corners."""
  if look.folds <= 0:
    return
  colour = _mix(skin, _shade(skin, 0.55), 0.25 + 0.65 * look.folds)
  length = 0.22 + 0.12 * look.folds
  for side in (-1, 1):
    start = canvas.at(side * 0.2, nose_bottom - 0.05)
    mid = canvas.at(side * 0.32, nose_bottom + 0.5 * length)
    end = canvas.at(side * 0.3, nose_bottom + length)
    canvas.draw.line(
      (*start, *mid, *end), fill=colour, width=canvas.stroke(look.folds), joint="curve"
    )


def _draw_beard(canvas: _Canvas, style: _Style, hair: Colour, skin: Colour, mouth_v: float) -> None:
  """Stubble or a full beard with moustache on the lower face."""
  if style.beard == "none":
    return
  colour = hair if style.beard == "full" else _mix(skin, _shade(hair, 0.9), 0.4)
  v_top = mouth_v - 0.12
  angle = math.degrees(math.asin(min(1.0, max(0.0, v_top))))
  _chord(canvas.draw, canvas.head_box(1.01), angle, 180 - angle, colour)
  canvas.draw.ellipse(canvas.box(0.0, mouth_v - 0.06, 0.32, 0.09), fill=colour)


def _draw_mouth(
  canvas: _Canvas, look: _AgeLook, style: _Style, skin: Colour, mouth_v: float
) -> None:
  """Lips thin with age; mouth-corner lines deepen after middle age."""
  d = canvas.draw
  half = 0.26 + 0.06 * (1.0 - look.child)
  lip_colour = _mix(skin, (190, 70, 75), 0.45 + 0.15 * look.child - 0.15 * look.sag)
  lip = look.lip
  _chord(d, canvas.box(0.0, mouth_v, half, lip * 1.2), 180, 360, lip_colour)
  _chord(d, canvas.box(0.0, mouth_v, half * 0.9, lip * 1.6), 0, 180, lip_colour)
  curve = style.smile * 0.06
  d.line(
    (
      *canvas.at(-half, mouth_v - curve),
      *canvas.at(0.0, mouth_v + 0.01),
      *canvas.at(half, mouth_v - curve),
    ),
    fill=_shade(lip_colour, 0.5),
    width=canvas.line,
    joint="curve",
  )
  corners = look.mouth_lines
  if corners > 0:
    colour = _mix(skin, _shade(skin, 0.55), 0.3 + 0.6 * corners)
    for side in (-1, 1):
      d.line(
        (
          *canvas.at(side * (half + 0.02), mouth_v + 0.01),
          *canvas.at(side * (half + 0.06), mouth_v + 0.06 + 0.08 * corners),
        ),
        fill=colour,
        width=canvas.line,
      )


def _draw_glasses(canvas: _Canvas, look: _AgeLook) -> None:
  frame = (30, 30, 35)
  r = look.eye_radius * 1.55
  for side in (-1, 1):
    canvas.draw.ellipse(
      canvas.box(side * 0.38, look.eye_drop, r, r * 0.8), outline=frame, width=canvas.line + 1
    )
  canvas.draw.line(
    (*canvas.at(-0.38 + r, look.eye_drop), *canvas.at(0.38 - r, look.eye_drop)),
    fill=frame,
    width=canvas.line + 1,
  )


def _place_head(
  draw: ImageDraw.ImageDraw, look: _AgeLook, size: int, rng: np.random.Generator
) -> _Canvas:
  """Chooses head position and scale with small jitter."""
  w = size * 0.25 * float(rng.uniform(0.9, 1.1))
  cx = size * (0.5 + float(rng.normal(0.0, 0.025)))
  cy = size * (0.45 + float(rng.normal(0.0, 0.02)))
  return _Canvas(draw=draw, cx=cx, cy=cy, w=w, h=w * look.aspect, line=max(1, round(w / 22)))


def _draw_portrait(
  canvas: _Canvas, look: _AgeLook, style: _Style, rng: np.random.Generator
) -> None:
  """Draws body and face back to front."""
  skin = _skin_colour(style, look)
  hair = _hair_colour(style, look)
  thin = _smoothstep(0.45, 1.0, look.recession * style.recession_scale)
  _draw_body(canvas, look, style, skin)
  _draw_hair_back(canvas, style, hair, thin, skin)
  _draw_head(canvas, look, skin)
  _draw_spots(canvas, look, skin, rng)
  _draw_forehead_lines(canvas, look, skin)
  _draw_hair_front(canvas, look, style, hair, skin)
  _draw_brows(canvas, look, style, hair)
  for side in (-1, 1):
    _draw_eye(canvas, look, style, side, skin)
    _draw_eye_ageing(canvas, look, side, skin)
  nose_bottom = _draw_nose(canvas, look, skin)
  _draw_folds(canvas, look, skin, nose_bottom)
  mouth_v = nose_bottom + 0.19 - 0.03 * look.child
  _draw_beard(canvas, style, hair, skin, mouth_v)
  _draw_mouth(canvas, look, style, skin, mouth_v)
  if style.glasses:
    _draw_glasses(canvas, look)


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
  look = _age_look(float(age), float(rng.normal(0.0, 1.0)))
  style = _sample_style(age, rng)
  layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
  canvas = _place_head(ImageDraw.Draw(layer), look, size, rng)
  _draw_portrait(canvas, look, style, rng)
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
