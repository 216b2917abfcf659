"""Till-like training augmentation: colour cast and gamma on either placement, blur, low
resolution and JPEG recompression in tf.data; each off when its field is 0 (the schema
refuses the tf.data-only parts on the device: tests/config/test_schema.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf

from ageflax.data import augment_spec, jax_augment, tf_augment
from ageflax.data.augment_spec import AugmentSpec
from configs import tiny

_OFF = dict(flip=False, rotation_degrees=0.0, shift_fraction=0.0, zoom_fraction=0.0)


def _spec(**values) -> AugmentSpec:
  config = tiny.get_config().data.augment
  config.update(dict(_OFF, **values))
  return AugmentSpec.from_config(config)


def _tf_augment(images: np.ndarray, spec: AugmentSpec, step: int = 3) -> np.ndarray:
  augment = tf.function(lambda batch: tf_augment.augment_batch(
      batch, tf.constant([0, step], tf.int64), len(images), 0, spec))
  return augment(tf.constant(images)).numpy()


def _checks(count=4, size=16) -> np.ndarray:
  """Sharp 60/180 checkerboards: blur and low resolution pull them to the mean."""
  rows, cols = np.mgrid[0:size, 0:size]
  board = np.where((rows + cols) % 2, 180, 60).astype(np.uint8)
  return np.broadcast_to(board[None, :, :, None], (count, size, size, 3)).copy()


def test_the_till_parts_are_off_by_default_and_leave_the_old_draws_as_they_were():
  spec = _spec()
  assert not spec.has_camera and not spec.is_on and spec.describe() == "no aug"
  images = _checks()
  np.testing.assert_array_equal(_tf_augment(images, spec), images)
  # The device path's first seven streams are the draws it made before the till streams.
  step_key = jax.random.fold_in(jax.random.key(5), 2)
  before = jax.random.uniform(jax.random.fold_in(step_key, 1), (augment_spec.NUM_DRAWS,),
                              minval=-1.0, maxval=1.0)
  now = jax_augment.draws(5, 2, jnp.arange(2))
  assert now.shape == (2, augment_spec.NUM_ALL_DRAWS)
  np.testing.assert_array_equal(now[1, :augment_spec.NUM_DRAWS], before)


@pytest.mark.parametrize("placement", ["host", "device"])
def test_colour_cast_and_gamma_stay_in_their_ranges_on_either_placement(placement):
  grey = np.full((64, 4, 4, 3), 128, np.uint8)
  cast = _spec(colour_cast=0.2, placement=placement)
  gamma = _spec(gamma=0.5, placement=placement)
  if placement == "host":
    cast_out, gamma_out = _tf_augment(grey, cast), _tf_augment(grey, gamma)
  else:
    cast_out, gamma_out = (np.asarray(jax_augment.augment_batch(jnp.asarray(grey), 0, 3, spec))
                           for spec in (cast, gamma))
  gains = cast_out[:, 0, 0, :] / 128.0
  assert gains.min() >= 0.8 - 0.01 and gains.max() <= 1.2 + 0.01
  assert gains.std(axis=0).min() > 0.05  # each channel has its own gain
  pixels = gamma_out[:, 0, 0, 0].astype(np.float64)
  low, high = 255 * (128 / 255) ** 1.5, 255 * (128 / 255) ** (1 / 1.5)
  assert pixels.min() >= low - 1 and pixels.max() <= high + 1 and pixels.std() > 5
  assert (gamma_out == gamma_out[:, :1, :1, :1]).all()  # one exponent per picture


def test_blur_smooths_each_picture_by_its_own_sigma_and_zero_keeps_it():
  images = _checks()
  blurred = tf_augment.gaussian_blur(tf.constant(images), tf.constant([0.0, 0.5, 1.0, 2.0]),
                                     sigma_max=2.0).numpy().astype(np.float64)
  np.testing.assert_array_equal(blurred[0], images[0])
  spreads = blurred.std(axis=(1, 2, 3))
  assert spreads[0] > spreads[1] > spreads[2] > spreads[3]
  assert blurred.mean() == pytest.approx(120, abs=1)  # the kernel sums to one
  spec = _spec(blur_sigma_max=1.5)
  assert spec.has_camera and _tf_augment(images, spec).std() < images.std()


def test_low_resolution_changes_only_the_chosen_pictures():
  images = _checks(size=32)
  lowered = tf_augment.low_resolution(tf.constant(images), tf.constant([True, False, True, False]),
                                      side=8).numpy()
  np.testing.assert_array_equal(lowered[1::2], images[1::2])
  assert lowered[0::2].std() < 0.2 * images.std()
  every = _tf_augment(images, _spec(low_res_probability=1.0, low_res_side=8))
  assert every.std() < 0.2 * images.std()


def test_jpeg_recompression_costs_more_at_lower_quality():
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (2, 32, 32, 3), np.uint8)
  recompressed = tf_augment.recompress(tf.constant(images), tf.constant([95.0, 10.0])).numpy()
  errors = np.abs(recompressed.astype(np.float64) - images).mean(axis=(1, 2, 3))
  assert 0 < errors[0] < errors[1]
  spec = _spec(jpeg_quality_min=30)
  assert float(spec.jpeg_quality(-1.0)) >= 30 and float(spec.jpeg_quality(1.0)) <= 95
  assert not np.array_equal(_tf_augment(images, spec), images)

