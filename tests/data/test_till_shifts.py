"""The till-camera shifts of `scripts/eval.py --robustness`: each changes a photo as it says,
the same way for the same (seed, photo), and `--shifts` names them or is refused in one line."""

import numpy as np
import pytest

from ageflax.core.errors import ConfigError
from ageflax.data import till_shifts


def _photo(size=200) -> np.ndarray:
  """A mid-grey photo with a sharp checkerboard in its middle, which blur and low resolution
  wash out."""
  rows, cols = np.mgrid[0:size, 0:size]
  checks = ((rows // 2 + cols // 2) % 2) * 120 + 60
  image = np.full((size, size, 3), 128, np.uint8)
  middle = slice(size // 4, 3 * size // 4)
  image[middle, middle] = checks[middle, middle, None]
  return image


def _sharpness(image: np.ndarray) -> float:
  grey = image.astype(np.float64).mean(axis=2)
  return float(np.var(np.diff(grey, axis=1)))


def test_every_shift_keeps_the_shape_and_is_a_function_of_seed_and_photo():
  photo = _photo()
  for name in till_shifts.SHIFTS:
    shifted = till_shifts.apply(name, 0, photo, 7)
    assert shifted.shape == photo.shape and shifted.dtype == np.uint8, name
    assert not np.array_equal(shifted, photo), name
    np.testing.assert_array_equal(shifted, till_shifts.apply(name, 0, photo, 7))
  moved = [till_shifts.apply("rotate_offset", 0, photo, index) for index in range(2)]
  assert not np.array_equal(*moved)


def test_the_photometric_shifts_change_the_light_as_specified():
  photo = _photo()
  dimmed = till_shifts.apply("dim", 0, photo, 0).astype(np.float64)
  assert dimmed.mean() == pytest.approx(0.35 * photo.mean(), rel=0.02)
  harsh = till_shifts.apply("harsh", 0, photo, 0).astype(np.float64)
  assert harsh.std() > 1.3 * photo.std()
  cast = till_shifts.apply("colour_cast", 0, photo, 0).astype(np.float64).mean(axis=(0, 1))
  gains = cast / photo.mean(axis=(0, 1))
  assert tuple(np.round(gains, 2)) in (till_shifts.WARM_GAINS, till_shifts.COOL_GAINS)


def test_blur_and_low_resolution_wash_out_detail_and_jpeg_stays_close():
  photo = _photo()
  for name in ("blur", "low_res"):
    assert _sharpness(till_shifts.apply(name, 0, photo, 0)) < 0.5 * _sharpness(photo), name
  # A photo already 32 pixels on its shorter side is at the low resolution.
  tiny = _photo(32)
  np.testing.assert_array_equal(till_shifts.apply("low_res", 0, tiny, 0), tiny)
  recompressed = till_shifts.apply("jpeg_q30", 0, photo, 0).astype(np.float64)
  assert 1 < np.abs(recompressed - photo).mean() < 30
  assert recompressed.mean() == pytest.approx(photo.mean(), abs=2)


def test_shift_names_are_parsed_in_table_order_and_unknown_ones_refused():
  assert till_shifts.parse_names("all") == tuple(till_shifts.SHIFTS)
  assert till_shifts.parse_names("dim, blur") == ("blur", "dim")
  with pytest.raises(ConfigError, match=r"^--shifts: unknown shift 'fog'; 'all' or some of"):
    till_shifts.parse_names("blur,fog")
