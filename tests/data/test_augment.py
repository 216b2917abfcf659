"""Augmentation on the device: the tf.data path's warp and draws, in JAX, inside the train step."""

import functools
import json
from collections.abc import Callable

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
import scipy.ndimage
from conftest import run_entry_point, tiny_train_args, write_face_folder

from ageflax.core import sharding
from ageflax.data import augment_spec, jax_augment
from ageflax.data.augment_spec import AugmentSpec
from ageflax.train import steps
from configs import tiny

_ALL_ON = dict(flip=True, rotation_degrees=20.0, shift_fraction=0.2, zoom_fraction=0.2,
               brightness=0.2, contrast=0.3)


def _config(**values) -> ml_collections.ConfigDict:
  config = tiny.get_config().data.augment
  config.update(dict(flip=False, rotation_degrees=0.0, shift_fraction=0.0, zoom_fraction=0.0,
                     brightness=0.0, contrast=0.0, placement="device"))
  config.update(values)
  return config


@functools.cache
def _jitted(config_items: tuple) -> Callable:
  config = ml_collections.ConfigDict(dict(config_items))
  spec = AugmentSpec.from_config(config)
  return jax.jit(lambda images, seed, step, first_row: jax_augment.augment_batch(
      images, seed, step, spec, first_row))


def _augment(images, seed, step, config, first_row=0) -> np.ndarray:
  """`jax_augment.augment_batch`, compiled once per config (eager dispatch is slower)."""
  return np.asarray(_jitted(tuple(sorted(config.items())))(images, seed, step, first_row))


def _random_images(count=8, size=12, seed=0) -> np.ndarray:
  return np.random.default_rng(seed).integers(0, 256, (count, size, size, 3), np.uint8)


def _smooth_image(size=33) -> np.ndarray:
  """A bright blob off centre over two ramps: rotations are easy to see and interpolate."""
  rows, cols = np.mgrid[0:size, 0:size].astype(np.float32)
  blob = 255 * np.exp(-((cols - 22) ** 2 + (rows - 10) ** 2) / 30)
  return np.stack([blob, cols * 7, rows * 7], -1).astype(np.uint8)


def test_no_augmentation_is_the_identity():
  images = _random_images()
  np.testing.assert_array_equal(_augment(images, 0, 5, _config()), images)


def test_flip_alone_mirrors_exactly_the_examples_drawn():
  images = _random_images(count=32)
  out = _augment(images, 3, 7, _config(flip=True))
  flipped = np.asarray(jax_augment.draws(3, 7, jnp.arange(32)))[:, augment_spec.FLIP] < 0
  expected = np.where(flipped[:, None, None, None], images[:, :, ::-1], images)
  np.testing.assert_array_equal(out, expected)
  assert 4 < flipped.sum() < 28


def test_each_row_is_a_function_of_seed_step_and_its_row_only():
  config = _config(**_ALL_ON)
  images = _random_images()
  whole = _augment(images, 5, 7, config)
  np.testing.assert_array_equal(_augment(images, 5, 7, config), whole)
  halves = [_augment(images[:3], 5, 7, config),
            _augment(images[3:], 5, 7, config, first_row=3)]
  np.testing.assert_array_equal(np.concatenate(halves), whole)
  for other_seed, other_step in ((5, 8), (6, 7)):
    other = _augment(images, other_seed, other_step, config)
    assert all(not np.array_equal(a, b) for a, b in zip(other, whole, strict=True))


_ON_FOUR_DEVICES = """
import jax, jax.numpy as jnp, ml_collections, numpy as np
from ageflax.core import sharding
from ageflax.data import jax_augment
from ageflax.data.augment_spec import AugmentSpec
config = AugmentSpec.from_config(ml_collections.ConfigDict({config!r}))
images = np.load({images!r})
mesh = sharding.create_mesh()
batch = sharding.global_batch({{"image": images}}, mesh, len(images))["image"]
augmented = jax.jit(lambda x, step: jax_augment.augment_batch(x, 5, step, config),
                    out_shardings=sharding.batch_sharding(mesh))(batch, jnp.int32(7))
assert len(augmented.sharding.device_set) == 4
np.save({output!r}, np.asarray(augmented))
"""


def test_a_batch_sharded_over_four_devices_is_augmented_the_same(tmp_path):
  config, images = _config(**_ALL_ON), _random_images()
  np.save(tmp_path / "images.npy", images)
  script = _ON_FOUR_DEVICES.format(config=config.to_dict(), images=str(tmp_path / "images.npy"),
                                   output=str(tmp_path / "four.npy"))
  result = run_entry_point(["-c", script], devices=4, timeout=120)
  assert result.returncode == 0, result.stderr[-3000:]
  np.testing.assert_array_equal(np.load(tmp_path / "four.npy"), _augment(images, 5, 7, config))


def test_draws_have_the_configured_distributions():
  config = _config(flip=True, rotation_degrees=15.0, zoom_fraction=0.1)
  uniform = jax_augment.draws(0, 1, jnp.arange(4096))
  matrices = np.asarray(jax_augment.affine_matrices(uniform, AugmentSpec.from_config(config),
                                                    16, 16))
  mirror = np.sign(matrices[:, 0, 0] * matrices[:, 1, 1] - matrices[:, 0, 1] * matrices[:, 1, 0])
  angles = np.degrees(np.arctan2(matrices[:, 0, 1], matrices[:, 1, 1]))
  zooms = 1 / np.hypot(matrices[:, 0, 1], matrices[:, 1, 1])
  assert abs(np.mean(mirror < 0) - 0.5) < 0.03
  for values, low, high in ((angles, -15, 15), (zooms, 0.9, 1.1)):
    assert low <= values.min() and values.max() <= high
    deciles = np.percentile(values, np.arange(10, 100, 10))
    np.testing.assert_allclose(deciles, np.linspace(low, high, 11)[1:-1], atol=0.03 * (high - low))


def test_rotation_by_the_drawn_angle_matches_scipy():
  image = _smooth_image()
  batch = np.repeat(image[None], 4, 0)
  config = _config(rotation_degrees=30.0, fill_mode="nearest")
  out = _augment(batch, 0, 0, config)
  angles = np.asarray(jax_augment.draws(0, 0, jnp.arange(4)))[:, augment_spec.ANGLE] * 30.0
  for augmented, angle in zip(out, angles, strict=True):
    # A positive angle turns the picture clockwise as displayed, as on the tf.data path.
    reference = scipy.ndimage.rotate(image.astype(np.float32), -angle, reshape=False, order=1,
                                     mode="nearest")
    assert np.abs(augmented - reference).max() <= 1.0, angle
    assert np.abs(augmented.astype(np.float32) - image).max() > 20, angle  # it did turn


@pytest.mark.parametrize("fill_mode", ["reflect", "nearest", "constant"])
def test_the_warp_is_tensorflows_projective_transform(fill_mode):
  tf = pytest.importorskip("tensorflow")
  images = _random_images(size=20)
  matrices = np.asarray(jax_augment.affine_matrices(
      jax_augment.draws(1, 2, jnp.arange(8)), AugmentSpec.from_config(_config(**_ALL_ON)), 20,
      20))
  transforms = np.concatenate([matrices.reshape(8, 6), np.zeros((8, 2))], 1).astype(np.float32)
  expected = tf.raw_ops.ImageProjectiveTransformV3(
      images=tf.constant(images, tf.float32), transforms=transforms, output_shape=[20, 20],
      fill_value=0.0, interpolation="BILINEAR", fill_mode=fill_mode.upper()).numpy()
  np.testing.assert_allclose(np.asarray(jax_augment.warp(images, matrices, fill_mode)), expected,
                             atol=1e-3)


def test_outputs_are_uint8_clipped_not_wrapped_around():
  gray = np.full((16, 8, 8, 3), 128, np.uint8)
  out = _augment(gray, 0, 0, _config(brightness=0.8))
  shift = np.asarray(jax_augment.draws(0, 0, jnp.arange(16)))[:, augment_spec.BRIGHTNESS] * 0.8 * 255
  assert out.dtype == np.uint8
  np.testing.assert_array_equal(out[:, 0, 0, 0], np.clip(np.round(128 + shift), 0, 255))
  assert out.min() == 0 and out.max() == 255
  warped = _augment(gray, 0, 0, _config(**dict(_ALL_ON, brightness=0.0, contrast=0.0)))
  np.testing.assert_array_equal(warped, gray)  # weights sum to one: a flat picture stays flat


def test_the_train_step_augments_with_its_step_and_compiles_once():
  config = tiny.get_config()
  config.data.augment.placement = "device"
  mesh, optimizer = sharding.create_mesh(), optax.adam(0.01)
  graphdef, state = steps.create_train_state(config, optimizer, mesh, head_bias=40.0)
  counted = chex.assert_max_traces(n=1)(
      lambda s, b: steps.train_step(s, b, graphdef=graphdef, optimizer=optimizer, loss="l2",
                                    huber_delta=1.0,
                                    augment=AugmentSpec.from_config(config.data.augment),
                                    seed=3))
  train_step = jax.jit(counted)
  plain_step = jax.jit(lambda s, b: steps.train_step(s, b, graphdef=graphdef,
                                                     optimizer=optimizer, loss="l2",
                                                     huber_delta=1.0))
  ages = np.linspace(10, 80, 8).astype(np.float32)
  for seed in range(3):
    images = _random_images(size=32, seed=seed)
    batch = sharding.global_batch({"image": images, "age": ages}, mesh, 8)
    augmented = _augment(images, 3, int(state.step), config.data.augment)
    by_hand = sharding.global_batch({"image": augmented, "age": ages}, mesh, 8)
    _, expected = plain_step(state, by_hand)
    _, unaugmented = plain_step(state, batch)
    state, metrics = train_step(state, batch)
    # A fresh affine head predicts 40 whatever the picture: the gradients tell them apart.
    np.testing.assert_allclose(float(metrics["grad_norm"]), float(expected["grad_norm"]),
                               rtol=1e-5)
    assert float(metrics["grad_norm"]) != float(unaugmented["grad_norm"])
  assert int(state.step) == 3


def test_train_py_with_device_augmentation_runs_end_to_end(tmp_path):
  data = write_face_folder(tmp_path / "faces", 40)
  workdir = tmp_path / "run"
  result = run_entry_point(tiny_train_args(data, workdir, "--config.data.augment.placement=device",
                                           "--config.train.num_steps=4"))
  assert result.returncode == 0, result.stderr[-3000:]
  assert "step 4/4" in result.stderr and "validation MAE" in result.stderr
  saved = json.loads((workdir / "config.json").read_text())
  assert saved["data"]["augment"]["placement"] == "device"
