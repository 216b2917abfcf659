"""Drawing one synthetic portrait: body, hair, head and every age sign, back to front.

A `Canvas` measures in head coordinates; `draw_portrait` paints a face of a given
`look.AgeLook` and `look.Style` on it with Pillow.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from PIL import ImageDraw

from ageflax.devtools.synthetic.look import (
  AgeLook,
  Colour,
  Style,
  hair_colour,
  mix,
  shade,
  skin_colour,
  smoothstep,
)

_EYE_WHITE: Colour = (245, 243, 238)


@dataclasses.dataclass(frozen=True)
class Canvas:
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


def _draw_body(canvas: Canvas, look: AgeLook, style: Style, skin: Colour) -> None:
  """Shoulders and neck; children have narrower shoulders and necks."""
  d, w = canvas.draw, canvas.w
  shoulder = w * (1.35 + 0.55 * (1.0 - look.child))
  top = canvas.cy + canvas.h + 0.2 * w
  d.ellipse((canvas.cx - shoulder, top, canvas.cx + shoulder, top + 2.5 * w), fill=style.shirt)
  neck = 0.42 - 0.08 * look.child
  x0, y0 = canvas.at(-neck, 0.5)
  x1, _ = canvas.at(neck, 1.0)
  d.rectangle((x0, y0, x1, top + 0.35 * w), fill=shade(skin, 0.85))
  d.ellipse((x0, top + 0.1 * w, x1, top + 0.6 * w), fill=shade(skin, 0.85))


def _draw_hair_back(
  canvas: Canvas, style: Style, hair: Colour, thin: float, skin: Colour
) -> None:
  """Hair volume behind the head; long styles fall to the shoulders."""
  d = canvas.draw
  top = mix(hair, skin, thin)
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


def _draw_head(canvas: Canvas, look: AgeLook, skin: Colour) -> None:
  """Ears, then the head outline, cheeks and a double chin when old."""
  d = canvas.draw
  ear_v = look.eye_drop + 0.12
  for side in (-1, 1):
    d.ellipse(
      canvas.box(side * 0.97, ear_v, look.ear_size * 0.75, look.ear_size * 1.4),
      fill=shade(skin, 0.92),
    )
  d.ellipse(canvas.head_box(), fill=skin)
  if look.sag > 0:
    jaw = 0.8 + 0.08 * look.sag
    x0, y0 = canvas.at(-jaw, 0.35)
    x1, y1 = canvas.at(jaw, 1.0 + 0.03 * look.sag)
    d.ellipse((x0, y0, x1, y1), fill=skin)
    line = mix(skin, shade(skin, 0.6), look.sag)
    d.arc(canvas.box(0.0, 0.83, 0.32, 0.16), 20, 160, fill=line, width=canvas.stroke(look.sag))
  if look.hollows > 0:
    hollow = mix(skin, shade(skin, 0.72), 0.5 * look.hollows)
    for side in (-1, 1):
      d.ellipse(canvas.box(side * 0.58, look.eye_drop + 0.45, 0.15, 0.22), fill=hollow)
  if look.child > 0.05:
    blush = mix(skin, (235, 120, 120), 0.5 * look.child)
    for side in (-1, 1):
      d.ellipse(canvas.box(side * 0.5, look.eye_drop + 0.33, 0.16, 0.11), fill=blush)


def _draw_spots(canvas: Canvas, look: AgeLook, skin: Colour, rng: np.random.Generator) -> None:
  """Age spots on the forehead and cheeks in old age."""
  count = round(10 * look.spots)
  spot = shade(skin, 0.72)
  for _ in range(count):
    u, v = rng.uniform(-0.65, 0.65), rng.uniform(-0.7, 0.5)
    r = rng.uniform(0.025, 0.05)
    canvas.draw.ellipse(canvas.box(u, v, r, r * 0.8), fill=spot)


def _draw_forehead_lines(canvas: Canvas, look: AgeLook, skin: Colour) -> None:
  """Forehead wrinkles appear one by one and darken with age."""
  dark = shade(skin, 0.5)
  brow_v = look.eye_drop - 0.22
  for i in range(4):
    strength = min(max(look.wrinkles * 4.5 - i, 0.0), 1.0)
    if strength <= 0:
      break
    v = brow_v - 0.1 - 0.085 * i
    half = 0.42 - 0.04 * i
    x0, y0 = canvas.at(-half, v - 0.05)
    x1, y1 = canvas.at(half, v + 0.05)
    colour = mix(skin, dark, 0.25 + 0.6 * strength * look.wrinkles**0.3)
    canvas.draw.arc((x0, y0, x1, y1), 195, 345, fill=colour, width=canvas.stroke(look.wrinkles))


def _draw_hair_front(
  canvas: Canvas, look: AgeLook, style: Style, hair: Colour, skin: Colour
) -> None:
  """Front hair down to the hairline, which recedes with age in an M shape."""
  recession = look.recession * style.recession_scale
  thin = smoothstep(0.45, 1.0, recession)
  front = mix(hair, skin, 0.9 * thin)
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


def _draw_eye(canvas: Canvas, look: AgeLook, style: Style, side: int, skin: Colour) -> None:
  """One eye: white, iris, pupil, a drooping lid and a highlight."""
  d, r = canvas.draw, look.eye_radius
  u, v = side * 0.38, look.eye_drop
  openness = 0.6 + 0.15 * look.child
  eye_box = canvas.box(u, v, r, r * openness)
  d.ellipse(eye_box, fill=_EYE_WHITE, outline=shade(skin, 0.55), width=canvas.line)
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
  d.arc(lid_line, 200, 340, fill=shade(skin, 0.45), width=canvas.line)


def _draw_eye_ageing(canvas: Canvas, look: AgeLook, side: int, skin: Colour) -> None:
  """Crow's feet at the outer corner and bags below the eye."""
  d, r = canvas.draw, look.eye_radius
  u, v = side * 0.38, look.eye_drop
  dark = shade(skin, 0.55)
  if look.crows_feet > 0:
    colour = mix(skin, dark, 0.3 + 0.7 * look.crows_feet)
    n_lines = 1 + int(look.crows_feet * 2.99)
    for i in range(n_lines):
      spread = (i - (n_lines - 1) / 2) * 0.07
      x0, y0 = canvas.at(u + side * (r + 0.05), v + spread * 0.5)
      x1, y1 = canvas.at(u + side * (r + 0.05 + 0.1 + 0.08 * look.crows_feet), v + spread * 1.6)
      d.line((x0, y0, x1, y1), fill=colour, width=canvas.stroke(look.crows_feet))
  if look.bags > 0:
    below = v + 0.6 * r * canvas.w / canvas.h
    shadow = canvas.box(u, below, r * 0.95, r * (0.35 + 0.35 * look.bags))
    _chord(d, shadow, 0, 180, mix(skin, dark, 0.35 * look.bags))
    bag = canvas.box(u, below, r * 0.9, r * (0.4 + 0.3 * look.bags))
    d.arc(
      bag, 15, 165, fill=mix(skin, dark, 0.3 + 0.6 * look.bags), width=canvas.stroke(look.bags)
    )


def _draw_brows(canvas: Canvas, look: AgeLook, style: Style, hair: Colour) -> None:
  """Eyebrows follow the hair colour, lagging slightly in greying."""
  colour = shade(mix(hair, mix(style.hair, hair, 0.7), 0.5), 0.8)
  width = max(1, round(canvas.w * 0.05 * style.brow_weight * (1.0 - 0.4 * look.child)))
  v = look.eye_drop - look.eye_radius * canvas.w / canvas.h - 0.1
  for side in (-1, 1):
    box = canvas.box(side * 0.38, v + 0.06, 0.2, 0.08)
    canvas.draw.arc(box, 200, 340, fill=colour, width=width)


def _draw_nose(canvas: Canvas, look: AgeLook, skin: Colour) -> float:
  """Draws the nose and returns the v coordinate of its bottom."""
  d = canvas.draw
  bottom = look.eye_drop + look.nose_length
  half = 0.13 + 0.03 * (1.0 - look.child)
  shadow = shade(skin, 0.72)
  d.line(
    (*canvas.at(0.06, look.eye_drop + 0.1), *canvas.at(half * 0.7, bottom - 0.06)),
    fill=shadow,
    width=canvas.line,
  )
  d.arc(
    canvas.box(0.0, bottom - 0.06, half, 0.07), 20, 160, fill=shade(skin, 0.6), width=canvas.line
  )
  for side in (-1, 1):
    d.ellipse(canvas.box(side * half * 0.5, bottom - 0.03, 0.035, 0.022), fill=shade(skin, 0.45))
  return bottom


def _draw_folds(canvas: Canvas, look: AgeLook, skin: Colour, nose_bottom: float) -> None:
  """Nasolabial folds from the nose wings towards the mouth corners."""
  if look.folds <= 0:
    return
  colour = mix(skin, shade(skin, 0.55), 0.25 + 0.65 * look.folds)
  length = 0.22 + 0.12 * look.folds
  for side in (-1, 1):
    start = canvas.at(side * 0.2, nose_bottom - 0.05)
    mid = canvas.at(side * 0.32, nose_bottom + 0.5 * length)
    end = canvas.at(side * 0.3, nose_bottom + length)
    canvas.draw.line(
      (*start, *mid, *end), fill=colour, width=canvas.stroke(look.folds), joint="curve"
    )


def _draw_beard(canvas: Canvas, style: Style, hair: Colour, skin: Colour, mouth_v: float) -> None:
  """Stubble or a full beard with moustache on the lower face."""
  if style.beard == "none":
    return
  colour = hair if style.beard == "full" else mix(skin, shade(hair, 0.9), 0.4)
  v_top = mouth_v - 0.12
  angle = math.degrees(math.asin(min(1.0, max(0.0, v_top))))
  _chord(canvas.draw, canvas.head_box(1.01), angle, 180 - angle, colour)
  canvas.draw.ellipse(canvas.box(0.0, mouth_v - 0.06, 0.32, 0.09), fill=colour)


def _draw_mouth(
  canvas: Canvas, look: AgeLook, style: Style, skin: Colour, mouth_v: float
) -> None:
  """Lips thin with age; mouth-corner lines deepen after middle age."""
  d = canvas.draw
  half = 0.26 + 0.06 * (1.0 - look.child)
  lip_colour = mix(skin, (190, 70, 75), 0.45 + 0.15 * look.child - 0.15 * look.sag)
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
    fill=shade(lip_colour, 0.5),
    width=canvas.line,
    joint="curve",
  )
  corners = look.mouth_lines
  if corners > 0:
    colour = mix(skin, shade(skin, 0.55), 0.3 + 0.6 * corners)
    for side in (-1, 1):
      d.line(
        (
          *canvas.at(side * (half + 0.02), mouth_v + 0.01),
          *canvas.at(side * (half + 0.06), mouth_v + 0.06 + 0.08 * corners),
        ),
        fill=colour,
        width=canvas.line,
      )


def _draw_glasses(canvas: Canvas, look: AgeLook) -> None:
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


def place_head(
  draw: ImageDraw.ImageDraw, look: AgeLook, size: int, rng: np.random.Generator
) -> Canvas:
  """Chooses head position and scale with small jitter."""
  w = size * 0.25 * float(rng.uniform(0.9, 1.1))
  cx = size * (0.5 + float(rng.normal(0.0, 0.025)))
  cy = size * (0.45 + float(rng.normal(0.0, 0.02)))
  return Canvas(draw=draw, cx=cx, cy=cy, w=w, h=w * look.aspect, line=max(1, round(w / 22)))


def draw_portrait(
  canvas: Canvas, look: AgeLook, style: Style, rng: np.random.Generator
) -> None:
  """Draws body and face back to front."""
  skin = skin_colour(style, look)
  hair = hair_colour(style, look)
  thin = smoothstep(0.45, 1.0, look.recession * style.recession_scale)
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
