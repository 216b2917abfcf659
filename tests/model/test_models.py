"""The NNX ResNet family: shapes, dtypes, parameter counts, heads and conv algorithms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ageflax.model import resnet
from configs import resnet50, tiny


def _model_config(**overrides):
  config = tiny.get_config().model
  config.update(overrides)
  return config


def _count(tree) -> int:
  return sum(leaf.size for leaf in jax.tree.leaves(tree))


def test_resnet50_has_the_reference_parameter_count():
  config = resnet50.get_config().model
  config.head = "relu"  # the study's Dense(1)
  abstract = nnx.eval_shape(lambda: resnet.create_model(config, head_bias=0.0, seed=0))
  _, params, batch_stats = nnx.split(abstract, nnx.Param, nnx.BatchStat)
  head = _count(nnx.state(abstract.head, nnx.Param))
  # torchvision's resnet50 without its fc layer: 23,508,032 trainable parameters.
  assert _count(params) - head == 23_508_032
  assert head == 2048 + 1
  assert abstract.num_features == 2048
  assert _count(batch_stats) == 2 * 26_560  # running mean and variance of every BatchNorm


@pytest.mark.parametrize("name, features", [("resnet18", 512), ("resnet34", 512),
                                            ("resnet101", 2048), ("resnet152", 2048),
                                            ("resnet18_small_input", 256)])
def test_the_family_builds(name, features):
  abstract = nnx.eval_shape(
      lambda: resnet.create_model(_model_config(name=name), head_bias=0.0, seed=0))
  assert abstract.num_features == features


def test_output_is_float32_per_image_even_in_bfloat16():
  model = resnet.create_model(_model_config(dtype="bfloat16"), head_bias=30.0, seed=0)
  images = jnp.zeros((3, 32, 32, 3), jnp.uint8)
  ages = model(images, train=False)
  assert ages.shape == (3,) and ages.dtype == jnp.float32
  params = nnx.state(model, nnx.Param)
  assert {leaf.dtype for leaf in jax.tree.leaves(params)} == {jnp.dtype("float32")}


def test_affine_head_starts_at_the_training_mean_and_relu_head_is_non_negative():
  images = jnp.asarray(np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3)), jnp.uint8)
  affine = resnet.create_model(_model_config(head="affine"), head_bias=33.5, seed=0)
  np.testing.assert_allclose(affine(images), 33.5)
  relu = resnet.create_model(_model_config(head="relu"), head_bias=33.5, seed=0)
  assert float(relu.head.bias[...][0]) == 0.0
  relu.head.bias[...] = jnp.full((1,), -100.0)
  np.testing.assert_array_equal(relu(images), 0.0)


def test_conv_algorithms_agree_and_share_parameters():
  images = jnp.asarray(np.random.default_rng(1).integers(0, 255, (2, 32, 32, 3)), jnp.uint8)
  outputs = {}
  for impl in ("xla", "matmul", "auto"):
    model = resnet.create_model(_model_config(conv_impl=impl, zero_init_residual=False),
                                head_bias=0.0, seed=0)
    outputs[impl] = (model.features(images, train=True), nnx.state(model, nnx.Param))
  for impl in ("matmul", "auto"):
    np.testing.assert_allclose(outputs[impl][0], outputs["xla"][0], rtol=1e-4, atol=1e-4)
    assert jax.tree.structure(outputs[impl][1]) == jax.tree.structure(outputs["xla"][1])


def test_strided_conv_as_matmul_matches_xla():
  x = jnp.asarray(np.random.default_rng(2).normal(size=(2, 9, 9, 5)), jnp.float32)
  for kernel_size, strides in [((3, 3), 2), ((7, 7), 2), ((1, 1), 2), ((3, 3), 1)]:
    conv = resnet.Conv(5, 4, kernel_size, strides=strides, dtype=jnp.float32, impl="xla",
                       rngs=nnx.Rngs(0))
    expected = conv(x)
    conv.impl = "matmul"
    np.testing.assert_allclose(conv(x), expected, rtol=1e-5, atol=1e-5)


def test_input_normalizations():
  white = jnp.full((1, 1, 1, 3), 255, jnp.uint8)
  np.testing.assert_allclose(resnet.normalize_images(white, "unit"), 1.0)
  caffe = resnet.normalize_images(jnp.asarray([[[[10, 20, 30]]]], jnp.uint8), "caffe")
  np.testing.assert_allclose(caffe[0, 0, 0], [30 - 103.939, 20 - 116.779, 10 - 123.68],
                             rtol=1e-6)


def test_per_image_normalization_ignores_light_level_contrast_and_colour_cast():
  photo = np.random.default_rng(0).uniform(40, 200, (2, 8, 8, 3)).astype(np.float32)
  cast = photo * np.float32([0.35, 0.5, 0.3]) + np.float32([5, 0, 12])
  standardized = resnet.normalize_images(jnp.asarray(photo), "per_image")
  np.testing.assert_allclose(resnet.normalize_images(jnp.asarray(cast), "per_image"),
                             standardized, atol=1e-4)
  np.testing.assert_allclose(jnp.mean(standardized, axis=(1, 2)), 0.0, atol=1e-5)
  np.testing.assert_allclose(jnp.std(standardized, axis=(1, 2)), 1.0, rtol=1e-4)
  flat = resnet.normalize_images(jnp.full((1, 4, 4, 3), 90.0), "per_image")
  np.testing.assert_array_equal(flat, 0.0)  # no noise blown up from a flat photo
