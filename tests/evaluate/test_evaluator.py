"""The one evaluator: masked error sums over padded batches, around a predict function."""

import functools

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ageflax.core import sharding
from ageflax.evaluate import evaluator
from ageflax.model import predict
from ageflax.train import steps
from configs import tiny


def _fake_predict(variables, images):
  """Predicts the mean brightness of each image's left half, times `variables`."""
  width = images.shape[2]
  prediction = jnp.mean(images[:, :, :width // 2].astype(jnp.float32), axis=(1, 2, 3))
  return {"age": prediction * variables}


def test_masked_rows_add_nothing_to_the_sums():
  config, mesh = tiny.get_config(), sharding.create_mesh()
  graphdef, state = steps.create_train_state(config, optax.adam(0.05), mesh, head_bias=40.0)
  batch = {"image": np.zeros((4, 32, 32, 3), np.uint8),
           "age": np.array([40, 50, 30, 99], np.float32),
           "mask": np.array([1, 1, 1, 0], np.float32),
           "index": np.array([0, 1, 2, -1], np.int32)}
  model_evaluator = evaluator.Evaluator(predict.make_predict_fn(graphdef), mesh, 4)
  sums, rows = model_evaluator.evaluate_batch(state.variables, batch)
  # A fresh affine head predicts the head bias (40) for every photo.
  assert float(sums["count"]) == 3
  np.testing.assert_allclose(float(sums["sum_abs_error"]), 0 + 10 + 10, rtol=1e-5)
  np.testing.assert_allclose(float(sums["sum_error"]), 0 - 10 + 10, atol=1e-4)
  np.testing.assert_array_equal(rows["index"], batch["index"])


def test_flip_tta_averages_the_estimates_of_the_photo_and_its_mirror_image():
  rng = np.random.default_rng(0)
  left, right = rng.uniform(0, 100, 6).round(), rng.uniform(0, 100, 6).round()
  images = np.zeros((6, 4, 4, 3), np.uint8)
  images[:, :, :2], images[:, :, 2:] = left[:, None, None, None], right[:, None, None, None]
  ages = np.array([20, 30, 40, 50, 60, 70], np.float32)
  # Two global batches of 4; the second padded with two masked rows (index -1).
  batches = [{"image": images[:4], "age": ages[:4], "mask": np.ones(4, np.float32),
              "index": np.arange(4)},
             {"image": np.concatenate([images[4:], images[:2]]),
              "age": np.concatenate([ages[4:], ages[:2]]),
              "mask": np.array([1, 1, 0, 0], np.float32), "index": np.array([4, 5, -1, -1])}]
  mesh = sharding.create_mesh()
  plain = evaluator.Evaluator(_fake_predict, mesh, 4).run(1.0, batches)
  flipped = evaluator.Evaluator(
      lambda variables, images: predict.mirror_mean(
          functools.partial(_fake_predict, variables), images), mesh, 4).run(1.0, batches)
  assert [plain.predictions[i] for i in range(6)] == pytest.approx(left)
  averaged = (left + right) / 2
  assert [flipped.predictions[i] for i in range(6)] == pytest.approx(averaged)
  assert flipped.metrics["count"] == 6
  assert flipped.metrics["mae"] == pytest.approx(np.mean(np.abs(averaged - ages)), rel=1e-5)
  assert flipped.metrics["mean_error"] == pytest.approx(np.mean(averaged - ages), rel=1e-5)
  assert flipped.metrics["rmse"] == pytest.approx(np.sqrt(np.mean((averaged - ages) ** 2)),
                                                  rel=1e-5)
  assert batches[0]["image"][0, 0, 0, 0] == left[0]  # the caller's batch is left as it was
