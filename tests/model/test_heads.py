"""The dex head, its labels, loss, spread and P(age < t); backbone learning rates and freezing."""

import csv
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import learnable_batch, run_entry_point, tiny_train_args, write_face_folder
from flax import nnx

from ageflax.core import sharding
from ageflax.core.errors import ConfigError
from ageflax.model import dex, predict, resnet
from ageflax.train import optimizers, steps
from configs import tiny

IMAGES = jnp.asarray(np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3)), jnp.uint8)


def _model_config(**overrides):
  config = tiny.get_config().model
  config.update(overrides)
  return config


def test_dex_head_predicts_the_expected_age_of_its_distribution():
  model = resnet.create_model(_model_config(head="dex", dex_max_age=100, dex_readout="mean"),
                              head_bias=33.0, seed=0)
  probabilities = model.age_distribution(IMAGES)
  assert probabilities.shape == (4, 101) and probabilities.dtype == jnp.float32
  np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)
  ages = model(IMAGES)
  assert ages.shape == (4,) and ages.dtype == jnp.float32
  np.testing.assert_allclose(ages, (probabilities * np.arange(101)).sum(axis=-1), rtol=1e-5)
  # A fresh head is the same broad Gaussian for every photo, centred on the training mean.
  np.testing.assert_allclose(ages, 33.0, atol=1.0)
  np.testing.assert_allclose(dex.age_spread(probabilities), resnet.DEX_INIT_SIGMA, rtol=0.1)


def test_regression_heads_keep_one_output_and_have_no_distribution():
  for head in ("relu", "affine"):
    model = resnet.create_model(_model_config(head=head), head_bias=33.0, seed=0)
    assert model.head.kernel.shape == (model.num_features, 1)
    assert model.head.bias.shape == (1,)
    with pytest.raises(ConfigError, match=r"needs model\.head='dex'"):
      model.age_distribution(IMAGES)


@pytest.mark.parametrize("sigma", [0.0, 2.0])
def test_labels_sum_to_one_and_peak_at_the_true_age(sigma):
  ages = jnp.array([0.0, 17.0, 17.3, 42.0, 99.6, 100.0, 130.0])
  labels = np.asarray(dex.label_distribution(ages, 101, sigma))
  assert labels.shape == (7, 101) and (labels >= 0).all()
  np.testing.assert_allclose(labels.sum(axis=-1), 1.0, rtol=1e-6)
  assert list(labels.argmax(axis=-1)) == [0, 17, 17, 42, 100, 100, 100]  # 130 is clipped


def test_one_hot_labels_interpolate_and_gaussian_labels_spread_by_sigma():
  one_hot = np.asarray(dex.label_distribution(jnp.array([17.25, 30.0]), 101, 0.0))
  assert one_hot[0, 17] == pytest.approx(0.75) and one_hot[0, 18] == pytest.approx(0.25)
  assert np.count_nonzero(one_hot, axis=-1).tolist() == [2, 1]
  np.testing.assert_allclose(dex.expected_age(one_hot), [17.25, 30.0], rtol=1e-6)
  gaussian = dex.label_distribution(jnp.array([50.0]), 101, 3.0)
  np.testing.assert_allclose(dex.expected_age(gaussian), [50.0], rtol=1e-5)
  np.testing.assert_allclose(dex.age_spread(gaussian), [3.0], rtol=1e-3)


def test_spread_and_probability_under_a_threshold():
  probabilities = np.zeros((3, 101), np.float32)
  probabilities[0, 20] = 1.0  # surely 20
  probabilities[1, [16, 17, 18, 19]] = 0.25  # 16 to 19, equally likely
  probabilities[2, [10, 30]] = 0.5  # 10 or 30
  np.testing.assert_allclose(dex.expected_age(probabilities), [20, 17.5, 20], rtol=1e-6)
  np.testing.assert_allclose(dex.age_spread(probabilities), [0, np.sqrt(1.25), 10], atol=1e-5)
  np.testing.assert_allclose(dex.probability_under(probabilities, 18), [0, 0.5, 0.5])
  np.testing.assert_allclose(dex.probability_under(probabilities, 25), [1, 1, 0.5])
  np.testing.assert_allclose(dex.probability_under(probabilities, 0), [0, 0, 0])
  np.testing.assert_allclose(dex.probability_under(probabilities, 101), [1, 1, 1])


def test_the_median_readout_is_the_middle_of_the_mass_and_ignores_a_long_tail():
  probabilities = np.zeros((4, 101), np.float32)
  probabilities[0, 20] = 1.0  # surely 20: its mass spans 19.5-20.5
  probabilities[1, [16, 17, 18, 19]] = 0.25  # symmetric: the median is the mean
  probabilities[2, [15, 60]] = 0.6, 0.4  # a teen, with a long tail toward 60
  probabilities[3] = dex.label_distribution(jnp.array([42.0]), 101, 3.0)
  medians = [20, 17.5, 14.5 + 0.5 / 0.6, 42]
  np.testing.assert_allclose(dex.median_age(probabilities), medians, atol=1e-4)
  np.testing.assert_allclose(dex.expected_age(probabilities)[2], 33.0, rtol=1e-6)
  np.testing.assert_allclose(dex.point_estimate(probabilities, "median"), medians, atol=1e-4)
  np.testing.assert_allclose(dex.point_estimate(probabilities, "mean"),
                             dex.expected_age(probabilities))


def test_a_median_readout_model_reads_the_flip_averaged_distribution():
  model = resnet.create_model(_model_config(head="dex", dex_readout="median"), head_bias=33.0,
                              seed=0)
  model.head.kernel[...] = jax.random.normal(jax.random.key(0), model.head.kernel.shape)
  distribution = model.age_distribution(IMAGES)
  ages = model(IMAGES)
  np.testing.assert_allclose(ages, dex.median_age(distribution), rtol=1e-6)
  assert np.abs(ages - dex.expected_age(distribution)).max() > 1.0  # skewed, not symmetric
  graphdef, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)
  outputs = predict.make_predict_fn(graphdef, flip_tta=True)(
      {"params": params, "batch_stats": stats}, IMAGES)
  averaged = (distribution + model.age_distribution(IMAGES[:, :, ::-1])) / 2
  np.testing.assert_allclose(outputs["distribution"], averaged, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(outputs["age"], dex.median_age(averaged), rtol=1e-5)


@pytest.mark.parametrize("label_sigma", [0.0, 3.0])
def test_dex_loss_falls_on_a_fixed_batch(label_sigma):
  config = tiny.get_config()
  config.model.head, config.train.loss, config.train.label_sigma = "dex", "dex", label_sigma
  mesh = sharding.create_mesh()
  optimizer = optax.adam(0.05)
  graphdef, state = steps.create_train_state(config, optimizer, mesh, head_bias=40.0)
  train_step = steps.jit_train_step(graphdef, optimizer, config.train, mesh)
  batch = learnable_batch(mesh)
  # The cross-entropy cannot fall below the labels' entropy; what lies above it must halve.
  labels = dex.label_distribution(batch["age"], 101, label_sigma)
  floor = float(jnp.mean(-jnp.sum(jax.scipy.special.xlogy(labels, labels), axis=-1)))
  losses, maes = [], []
  for _ in range(30):
    state, metrics = train_step(state, batch)
    losses.append(float(metrics["loss"]))
    maes.append(float(metrics["mae"]))
  assert losses[-1] - floor < 0.5 * (losses[0] - floor), (floor, losses)
  assert maes[-1] < 0.5 * maes[0], maes


def _fine_tuning_config(**optim):
  config = tiny.get_config()
  config.model.head = "affine"
  config.optim.update(dict(name="adam", learning_rate=0.01, schedule="constant",
                           warmup_steps=0, weight_decay=0.0), **optim)
  return config


def _fine_tuning_setup(**optim):
  """Adam on the affine head, its kernel 0.1 rather than 0 so the backbone has gradients."""
  config = _fine_tuning_config(**optim)
  schedule = optimizers.create_learning_rate_schedule(config.optim, 100, 10)
  optimizer = optimizers.create_optimizer(config.optim, schedule)
  mesh = sharding.create_mesh()
  graphdef, state = steps.create_train_state(config, optimizer, mesh, head_bias=0.0)
  params = jax.tree_util.tree_map_with_path(
      lambda path, x: jnp.full_like(x, 0.1) if _in_head(path) and path[1].key == "kernel" else x,
      state.params)
  train_step = steps.jit_train_step(graphdef, optimizer, config.train, mesh)
  return train_step, state.replace(params=params), learnable_batch(mesh)


def _in_head(path) -> bool:
  return path[0].key == "head"


def _largest_moves(before, after) -> dict[str, float]:
  """The largest |change| of any head parameter and of any backbone parameter."""
  moves = {"head": 0.0, "backbone": 0.0}
  for (path, old), new in zip(jax.tree_util.tree_leaves_with_path(before),
                              jax.tree.leaves(after), strict=True):
    part = "head" if _in_head(path) else "backbone"
    moves[part] = max(moves[part], float(np.max(np.abs(np.asarray(new) - np.asarray(old)))))
  return moves


def _is_split(opt_state) -> bool:
  is_split = lambda x: isinstance(x, optax.MultiTransformState)  # noqa: E731
  return any(is_split(x) for x in jax.tree.leaves(opt_state, is_leaf=is_split))


@pytest.mark.parametrize("optim, split", [
    ({}, False), ({"grad_clip_norm": 1.0}, False), ({"freeze_backbone_steps": 1}, True),
    ({"backbone_learning_rate_multiplier": 0.5}, True)])
def test_only_the_fine_tuning_controls_split_the_optimizer(optim, split):
  # Default controls keep the optimizer state's layout, so older runs still resume.
  config = _fine_tuning_config(**optim)
  params = nnx.state(resnet.create_model(config.model, head_bias=0.0, seed=0), nnx.Param)
  opt_state = optimizers.create_optimizer(config.optim, lambda _: 1e-3).init(params)
  assert _is_split(opt_state) == split


def test_backbone_learning_rate_multiplier():
  train_step, state, batch = _fine_tuning_setup(backbone_learning_rate_multiplier=0.1)
  before = jax.tree.map(np.asarray, state.params)
  state, _ = train_step(state, batch)
  moves = _largest_moves(before, state.params)
  # Adam's first step is sign-SGD: each parameter moves by its learning rate (or less).
  assert moves["head"] == pytest.approx(0.01, rel=1e-3)
  assert moves["backbone"] == pytest.approx(0.1 * 0.01, rel=1e-3)


def test_frozen_backbone_is_untouched_for_its_steps_then_trains():
  train_step, state, batch = _fine_tuning_setup(name="adamw", weight_decay=0.1,
                                                freeze_backbone_steps=2)
  before = jax.tree.map(np.asarray, state.params)
  for _ in range(2):
    state, _ = train_step(state, batch)
  after_two = jax.tree.map(np.asarray, state.params)
  moves = _largest_moves(before, after_two)
  assert moves["backbone"] == 0.0 and moves["head"] > 0.0
  for (path, old), new in zip(jax.tree_util.tree_leaves_with_path(before),
                              jax.tree.leaves(after_two), strict=True):
    if not _in_head(path):
      np.testing.assert_array_equal(new, old)  # bit-identical, weight decay included
  state, _ = train_step(state, batch)
  assert _largest_moves(after_two, state.params)["backbone"] > 0.0


def test_dex_run_end_to_end_and_its_evaluation(tmp_path):
  faces = write_face_folder(tmp_path / "faces", 60)
  workdir, out = tmp_path / "run", tmp_path / "eval"
  trained = run_entry_point(tiny_train_args(
      faces, workdir, "--config.model.head=dex", "--config.train.loss=dex",
      "--config.train.label_sigma=2.0", "--config.train.num_steps=4"))
  assert trained.returncode == 0, trained.stderr[-3000:]
  record = json.loads((workdir / "history.json").read_text())[-1]
  assert record["step"] == 4 and np.isfinite(record["train_loss"])
  # No validation cross-entropy: evaluation keeps predicted ages, not the bins.
  assert "validation_loss" not in record and record["validation_mae"] > 0
  result = run_entry_point(["scripts/eval.py", f"--workdir={workdir}", f"--output_dir={out}"])
  assert result.returncode == 0, result.stderr[-3000:]
  metrics = json.loads((out / "eval_metrics.json").read_text())
  assert metrics["count"] == 15 and metrics["mae"] == pytest.approx(record["validation_mae"],
                                                                    abs=1e-3)
  with open(out / "predictions.csv") as f:
    predictions = [float(row["predicted_age"]) for row in csv.DictReader(f)]
  assert len(predictions) == 15 and all(0 <= p <= 100 for p in predictions)
  # The run's readout (the configs' median), or another asked for at evaluation.
  assert metrics["dex_readout"] == "median" and "| dex median" in result.stdout
  mean = run_entry_point(["scripts/eval.py", f"--workdir={workdir}", f"--output_dir={out}",
                          "--dex_readout=mean"])
  assert mean.returncode == 0, mean.stderr[-3000:]
  assert json.loads((out / "eval_metrics.json").read_text())["dex_readout"] == "mean"
  assert "| dex mean" in mean.stdout
