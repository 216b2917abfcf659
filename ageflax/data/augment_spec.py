"""The augmentation's one specification, read by its TF (`tf_augment`) and JAX (`jax_augment`) code.

`AugmentSpec` is `data.augment` checked and frozen: which parts are on, where they run, and
how each uniform draw in [-1, 1) becomes a rotation, zoom, shift, flip, contrast factor,
brightness offset, or one of the till-like camera shifts (colour cast, gamma, blur, low
resolution, JPEG quality). Both implementations draw one stream per quantity, numbered here, and
build their warp from `warp_coefficients`, so the two differ only in where the draws come
from. The arithmetic is written with operators and an array namespace (`tf` or `jnp`), so
this module imports neither TensorFlow nor JAX.
"""

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import ml_collections

PLACEMENTS = ("host", "device")
FILL_MODES = ("reflect", "nearest", "wrap", "constant")
# The random streams, one per quantity, in the tf.data path's order. Every example draws
# all of them, whatever is switched on, so switching one on leaves the others' values be.
ANGLE, ZOOM, SHIFT_X, SHIFT_Y, FLIP, CONTRAST, BRIGHTNESS = range(7)
NUM_DRAWS = 7
# The till-like parts' streams, numbered after the first seven so that adding them left the
# first seven's draws, and older runs' pictures, as they were.
GAMMA, CAST_RED, CAST_GREEN, CAST_BLUE, JPEG_QUALITY, BLUR, LOW_RES = range(NUM_DRAWS, 14)
NUM_ALL_DRAWS = 14
# The till-like parts that only the tf.data path implements: they are not per-pixel ops
# (a JPEG codec, a convolution, a resize), so `data.augment.placement='device'` refuses them.
HOST_ONLY = ("jpeg_quality_min", "blur_sigma_max", "low_res_probability")
JPEG_QUALITY_MAX = 95  # The best quality a recompressed training photo is drawn with.
# What each switch is called in a one-line description of the augmentation.
_PART_NAMES = {"flip": "flip", "rotation_degrees": "rotate", "shift_fraction": "shift",
               "zoom_fraction": "zoom", "brightness": "brightness", "contrast": "contrast",
               "colour_cast": "cast", "gamma": "gamma", "blur_sigma_max": "blur",
               "low_res_probability": "lowres", "jpeg_quality_min": "jpeg"}


@dataclasses.dataclass(frozen=True)
class AugmentSpec:
  """`data.augment`, checked: the parts switched on, their ranges, fill mode and placement."""

  flip: bool = False  # Random horizontal flip.
  rotation_degrees: float = 0.0  # Uniform rotation in [-r, r] degrees.
  shift_fraction: float = 0.0  # Uniform shift in [-s, s] of the width/height.
  zoom_fraction: float = 0.0  # Uniform zoom factor in [1 - z, 1 + z].
  brightness: float = 0.0  # Add uniform [-b, b] x 255 to every pixel.
  contrast: float = 0.0  # Scale contrast by a uniform factor in [1 - c, 1 + c].
  colour_cast: float = 0.0  # Each channel's gain uniform in [1 - c, 1 + c].
  gamma: float = 0.0  # Pixels x/255 raised to (1 + g)^u, u uniform in [-1, 1].
  blur_sigma_max: float = 0.0  # Gaussian blur, sigma uniform in [0, s] pixels.
  low_res_probability: float = 0.0  # Share of photos resized down to low_res_side and back.
  low_res_side: int = 32  # The side those photos are resized down to.
  jpeg_quality_min: int = 0  # Recompress as JPEG at a quality in [q, 95] (0: off).
  fill_mode: str = "reflect"  # Pixels warped in from outside the picture.
  placement: str = "host"  # 'host' (tf.data) or 'device' (JAX, in the train step).

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict) -> "AugmentSpec":
    """The spec of a `data.augment` section (which `ageflax.config.schema` checks)."""
    return cls(**{field.name: config[field.name] for field in dataclasses.fields(cls)})

  @property
  def has_warp(self) -> bool:
    """Whether it flips, rotates, shifts or zooms (the warp's parts)."""
    return bool(self.flip or self.rotation_degrees or self.shift_fraction or self.zoom_fraction)

  @property
  def has_photometric(self) -> bool:
    """Whether it changes pixels one by one: brightness, contrast, colour cast or gamma."""
    return bool(self.brightness or self.contrast or self.colour_cast or self.gamma)

  @property
  def has_camera(self) -> bool:
    """Whether it blurs, lowers the resolution or recompresses (`HOST_ONLY`'s parts)."""
    return any(getattr(self, field) for field in HOST_ONLY)

  @property
  def is_on(self) -> bool:
    """Whether anything is switched on; with nothing on, augmenting is the identity."""
    return self.has_warp or self.has_photometric or self.has_camera

  @property
  def on_device(self) -> bool:
    """Whether the train step augments (placement 'device') rather than tf.data."""
    return self.placement == "device"

  def describe(self) -> str:
    """The parts switched on, e.g. 'flip/rotate/shift/zoom', or 'no aug'."""
    parts = [name for field, name in _PART_NAMES.items() if getattr(self, field)]
    return "/".join(parts) or "no aug"

  def contrast_factor(self, uniform: Any) -> Any:
    """The contrast factor, in [1 - c, 1 + c], of draws of the CONTRAST stream."""
    return 1.0 + uniform * self.contrast

  def brightness_offset(self, uniform: Any) -> Any:
    """The pixel offset, in [-b, b] x 255, of draws of the BRIGHTNESS stream."""
    return uniform * self.brightness * 255.0

  def channel_gains(self, draw: Callable[[int], Any], xp: Any) -> Any:
    """Per-example [B, 3] gains of the red, green and blue channels, in [1 - c, 1 + c]."""
    return 1.0 + xp.stack([draw(CAST_RED), draw(CAST_GREEN), draw(CAST_BLUE)], 1) * (
        self.colour_cast)

  def gamma_exponent(self, uniform: Any) -> Any:
    """The exponent, in [1 / (1 + g), 1 + g], of draws of the GAMMA stream."""
    return (1.0 + self.gamma) ** uniform

  def blur_sigma(self, uniform: Any) -> Any:
    """The blur's standard deviation in pixels, in [0, s], of draws of the BLUR stream."""
    return (uniform + 1.0) * 0.5 * self.blur_sigma_max

  def jpeg_quality(self, uniform: Any) -> Any:
    """The JPEG quality (float; round it), in [q, 95], of draws of the JPEG_QUALITY stream."""
    span = JPEG_QUALITY_MAX - self.jpeg_quality_min
    return self.jpeg_quality_min + (uniform + 1.0) * 0.5 * span

  def is_low_res(self, uniform: Any) -> Any:
    """Whether each example is resized down and back, of draws of the LOW_RES stream."""
    return (uniform + 1.0) * 0.5 < self.low_res_probability

  def warp_coefficients(self, draw: Callable[[int], Any], height: int, width: int,
                        xp: Any) -> tuple[Any, ...]:
    """Per-example (a0, a1, a2, b0, b1, b2): output pixel (x, y) comes from input
    (a0 x + a1 y + a2, b0 x + b1 y + b2).

    That is input center + R(-angle) / zoom * (p - center - shift), x mirrored when flipped.

    Args:
      draw: stream number -> that stream's uniform draws in [-1, 1), one per example.
      height: image height in pixels.
      width: image width in pixels.
      xp: the array namespace of the draws (`tf` or `jnp`): cos, sin, where, ones_like.
    """
    angle = draw(ANGLE) * self.rotation_degrees * (math.pi / 180.0)
    zoom = 1.0 + draw(ZOOM) * self.zoom_fraction
    shift_x = draw(SHIFT_X) * self.shift_fraction * width
    shift_y = draw(SHIFT_Y) * self.shift_fraction * height
    mirror = xp.where(draw(FLIP) < 0.0, -1.0, 1.0) if self.flip else xp.ones_like(zoom)
    cos, sin = xp.cos(angle) / zoom, xp.sin(angle) / zoom
    center_x, center_y = (width - 1) / 2.0, (height - 1) / 2.0
    a0, a1 = mirror * cos, sin
    b0, b1 = -mirror * sin, cos
    a2 = center_x - a0 * (center_x + shift_x) - a1 * (center_y + shift_y)
    b2 = center_y - b0 * (center_x + shift_x) - b1 * (center_y + shift_y)
    return a0, a1, a2, b0, b1, b2

