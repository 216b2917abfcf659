"""The age-dependent look and the nuisance style of a synthetic face.

`AgeLook` holds shape and texture parameters, each a smooth function of age (`age_look`);
`Style` the age-independent choices of one face (`sample_style`); `sample_ages` draws
ages skewed like face-age data sets. The drawing is `drawing`'s, the writing `portraits`'.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

Colour = tuple[int, int, int]

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
_HAIR_STYLES = ("short", "curly", "long", "bob")
# Weights of children, young adults, older adults and a uniform floor over 1-100.
_AGE_MIXTURE = (0.10, 0.62, 0.25, 0.03)


@dataclasses.dataclass(frozen=True)
class AgeLook:
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
class Style:
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


def ramp(lo: float, hi: float, x: float) -> float:
  """0 below `lo`, 1 above `hi`, linear between."""
  return float(min(max((x - lo) / (hi - lo), 0.0), 1.0))


def smoothstep(lo: float, hi: float, x: float) -> float:
  """`ramp` eased at both ends."""
  t = ramp(lo, hi, x)
  return t * t * (3.0 - 2.0 * t)


def mix(a: Colour, b: Colour, t: float) -> Colour:
  """The colour a share `t` (clipped to [0, 1]) of the way from `a` to `b`."""
  t = min(max(t, 0.0), 1.0)
  return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def shade(colour: Colour, factor: float) -> Colour:
  """`colour` darkened (factor < 1) or lightened, clipped at 255."""
  return tuple(int(min(255, round(c * factor))) for c in colour)  # type: ignore[return-value]


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


def age_look(age: float, onset_shift: float) -> AgeLook:
  """Maps an age to look parameters; `onset_shift` models ageing pace."""
  a = age + onset_shift
  child = 1.0 - ramp(0.0, 20.0, age)
  return AgeLook(
    child=child,
    aspect=1.30 - 0.30 * child - 0.08 * ramp(25.0, 75.0, a),
    eye_drop=0.22 * child,
    eye_radius=0.13 + 0.10 * child,
    nose_length=0.30 + 0.10 * ramp(0.0, 90.0, age) - 0.08 * child,
    ear_size=0.16 + 0.06 * ramp(0.0, 90.0, age),
    lip=0.075 - 0.04 * ramp(30.0, 90.0, a),
    lid_droop=0.12 + 0.4 * ramp(25.0, 90.0, a),
    grey=ramp(24.0, 65.0, a),
    white=ramp(55.0, 88.0, a),
    recession=ramp(35.0, 75.0, a),
    wrinkles=ramp(18.0, 80.0, a),
    hollows=ramp(18.0, 85.0, a),
    dullness=ramp(18.0, 85.0, a),
    crows_feet=ramp(25.0, 75.0, a),
    bags=ramp(25.0, 85.0, a),
    folds=ramp(28.0, 80.0, a),
    spots=ramp(58.0, 95.0, a),
    sag=ramp(50.0, 95.0, a),
    mouth_lines=ramp(45.0, 85.0, a),
  )


def sample_style(age: int, rng: np.random.Generator) -> Style:
  """Draws the nuisance choices; beards only for adults."""
  male = bool(rng.random() < 0.5)
  beard = "none"
  if male and age >= 18:
    beard = str(rng.choice(["none", "stubble", "full"], p=[0.55, 0.25, 0.2]))
  styles = (0.45, 0.35, 0.1, 0.1) if male else (0.05, 0.15, 0.45, 0.35)
  background = tuple(tuple(int(c) for c in rng.integers(30, 235, 3)) for _ in range(2))
  return Style(
    male=male,
    skin=_jitter(_SKIN_TONES[rng.integers(len(_SKIN_TONES))], rng, 10),
    hair=_jitter(_HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))], rng, 12),
    hair_style=str(rng.choice(_HAIR_STYLES, p=styles)),
    eye_colour=_EYE_COLOURS[rng.integers(len(_EYE_COLOURS))],
    shirt=tuple(int(c) for c in rng.integers(20, 235, 3)),
    background=background,
    beard=beard,
    glasses=bool(rng.random() < 0.08 + 0.3 * ramp(40.0, 75.0, age)),
    recession_scale=float(rng.uniform(0.6, 1.1) if male else rng.uniform(0.0, 0.25)),
    brow_weight=float(rng.uniform(0.7, 1.3) * (1.2 if male else 0.9)),
    smile=float(rng.uniform(-0.3, 1.0)),
  )


def _jitter(colour: Colour, rng: np.random.Generator, amount: int) -> Colour:
  noisy = np.asarray(colour) + rng.integers(-amount, amount + 1, 3)
  return tuple(int(c) for c in np.clip(noisy, 0, 255))  # type: ignore[return-value]


def hair_colour(style: Style, look: AgeLook) -> Colour:
  """The hair colour, greying and then whitening with age."""
  return mix(mix(style.hair, _GREY, look.grey), _WHITE, look.white)


def skin_colour(style: Style, look: AgeLook) -> Colour:
  """The skin colour at this age."""
  # Skin is vivid in childhood and loses saturation through adulthood (a large-area cue
  # that survives 64x64), then turns paler in old age, independently of the base tone.
  grey = round(sum(style.skin) / 3)
  vivid = tuple(min(255, max(0, round(c + 0.4 * look.child * (c - grey)))) for c in style.skin)
  dull = mix(vivid, (grey, grey, grey), 0.65 * look.dullness)  # type: ignore[arg-type]
  return mix(dull, shade((grey, grey, grey), 1.15), 0.3 * look.spots)
