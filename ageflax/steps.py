"""The training state and the pure, jitted train and eval steps.

The NNX model is split once into a static graph definition and array state; each step
merges them inside `jax.jit`, so the step is a pure function of (state, batch). Batches
are sharded over the mesh's data axis and the state is replicated and donated, so
BatchNorm statistics and gradients come out over the global batch.
This module never imports TensorFlow.
"""

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx, struct

from ageflax import augment as augment_lib
from ageflax import convert, dex, models, sharding
from ageflax.errors import ConfigError

REGRESSION_LOSSES = ("l2", "l1", "huber")  # on the predicted age, for any head but 'dex'
LOSSES = (*REGRESSION_LOSSES, "dex")  # 'dex': cross-entropy over the dex head's age bins


@struct.dataclass
class TrainState:
  """Everything that changes during training; `step` counts finished train steps."""

  step: jax.Array
  params: nnx.State
  batch_stats: nnx.State
  opt_state: optax.OptState


def per_example_loss(predictions: jax.Array, ages: jax.Array, loss: str, huber_delta: float):
  """L2 (squared error, the study's), L1 or Huber loss per example, on predicted ages."""
  if loss == "l2":
    return jnp.square(predictions - ages)
  if loss == "l1":
    return jnp.abs(predictions - ages)
  if loss == "huber":
    return optax.huber_loss(predictions, ages, delta=huber_delta)
  raise ConfigError(f"train.loss must be one of the regression losses {REGRESSION_LOSSES} "
                    f"here, not {loss!r}")


def check_loss(head: str, loss: str, label_sigma: float) -> None:
  """Raises ConfigError unless `train.loss` (and its `label_sigma`) can train `model.head`."""
  if loss not in LOSSES:
    raise ConfigError(f"train.loss must be one of {LOSSES}, not {loss!r}")
  if head == "dex" and loss != "dex":
    raise ConfigError(f"model.head='dex' trains with train.loss='dex' (cross-entropy over its "
                      f"age bins), not {loss!r}")
  if loss == "dex" and head != "dex":
    raise ConfigError(f"train.loss='dex' needs model.head='dex', not {head!r}")
  if not label_sigma >= 0:
    raise ConfigError(f"train.label_sigma must be >= 0 years, not {label_sigma!r}")
  if label_sigma and loss != "dex":
    raise ConfigError(f"train.label_sigma={label_sigma!r} smooths the labels of "
                      f"train.loss='dex' only; set it to 0 with train.loss={loss!r}")


def create_train_state(
    config: ml_collections.ConfigDict,
    optimizer: optax.GradientTransformation,
    mesh: jax.sharding.Mesh,
    head_bias: float,
) -> tuple[nnx.GraphDef, TrainState]:
  """Initialises the model and optimizer directly into replicated device memory.

  With `model.init_from` set, the backbone starts from those converted weights and only
  the head is freshly initialised.
  """
  backbone = convert.load_backbone(config.model) if config.model.init_from else None
  graphdef, _ = nnx.eval_shape(lambda: _init(config, optimizer, head_bias))
  replicated = sharding.replicated(mesh)
  state = jax.jit(lambda weights: _init(config, optimizer, head_bias, weights)[1],
                  in_shardings=replicated, out_shardings=replicated)(backbone)
  return graphdef, state


def abstract_train_state(
    config: ml_collections.ConfigDict,
    optimizer: optax.GradientTransformation,
    mesh: jax.sharding.Mesh,
    head_bias: float,
) -> tuple[nnx.GraphDef, TrainState]:
  """Shapes, dtypes and shardings of the state, without allocating it (for restoring)."""
  replicated = sharding.replicated(mesh)
  graphdef, state = nnx.eval_shape(lambda: _init(config, optimizer, head_bias))
  state = jax.tree.map(
      lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=replicated), state)
  return graphdef, state


def abstract_model_state(
    config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh
) -> tuple[nnx.GraphDef, TrainState]:
  """An abstract state with parameters and BatchNorm statistics only (for prediction)."""
  graphdef, state = abstract_train_state(config, optax.identity(), mesh, head_bias=0.0)
  return graphdef, state.replace(opt_state=None)


def _init(config, optimizer, head_bias, backbone=None) -> tuple[nnx.GraphDef, TrainState]:
  model = models.create_model(config.model, head_bias=head_bias, seed=config.seed)
  graphdef, params, batch_stats = nnx.split(model, nnx.Param, nnx.BatchStat)
  if backbone is not None:  # pretrained weights everywhere but the head
    nnx.replace_by_pure_dict(params, backbone["params"])
    nnx.replace_by_pure_dict(batch_stats, backbone["batch_stats"])
  return graphdef, TrainState(jnp.zeros((), jnp.int32), params, batch_stats,
                              optimizer.init(params))


def train_step(
    state: TrainState,
    batch: dict[str, jax.Array],
    *,
    graphdef: nnx.GraphDef,
    optimizer: optax.GradientTransformation,
    loss: str,
    huber_delta: float,
    augment: ml_collections.ConfigDict | None = None,
    seed: int = 0,
    label_sigma: float = 0.0,
) -> tuple[TrainState, dict[str, jax.Array]]:
  """One optimizer step on a global batch; returns the new state and batch metrics.

  `loss` is a regression loss on the predicted ages, or 'dex': the cross-entropy of the
  dex head's bins against the true ages' labels (Gaussian of width `label_sigma`, if > 0).

  With `augment` (the `data.augment` section), the uint8 images are augmented first, each
  with randomness drawn from (seed, state.step, its row in the global batch).
  """
  images = batch["image"]
  if augment is not None:
    images = augment_lib.augment_batch(images, seed, state.step, augment)

  def loss_fn(params, batch_stats):
    model = nnx.merge(graphdef, params, batch_stats, copy=True)
    check_loss(model.head_kind, loss, label_sigma)  # at trace time
    outputs = model.head_outputs(images, train=True)
    predictions = model.ages_from_outputs(outputs)
    if loss == "dex":
      losses = dex.cross_entropy(outputs, batch["age"], label_sigma)
    else:
      losses = per_example_loss(predictions, batch["age"], loss, huber_delta)
    return jnp.mean(losses), (predictions, nnx.state(model, nnx.BatchStat))

  (loss_value, (predictions, batch_stats)), grads = jax.value_and_grad(
      loss_fn, has_aux=True)(state.params, state.batch_stats)
  updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  metrics = {
      "loss": loss_value,
      "mae": jnp.mean(jnp.abs(predictions - batch["age"])),
      "grad_norm": optax.global_norm(grads),
  }
  return TrainState(state.step + 1, params, batch_stats, opt_state), metrics


def eval_step(
    state: TrainState, batch: dict[str, jax.Array], *, graphdef: nnx.GraphDef
) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
  """Masked error sums over a global batch, and each row's (index, prediction).

  Padding rows (mask 0, index -1) add nothing to the sums; their predictions are dropped
  by the caller.
  """
  model = nnx.merge(graphdef, state.params, state.batch_stats)
  predictions = model(batch["image"], train=False)
  errors = (predictions - batch["age"]) * batch["mask"]
  sums = {
      "sum_abs_error": jnp.sum(jnp.abs(errors)),
      "sum_squared_error": jnp.sum(jnp.square(errors)),
      "sum_error": jnp.sum(errors),
      "count": jnp.sum(batch["mask"]),
  }
  return sums, {"index": batch["index"], "prediction": predictions}


def jit_train_step(
    graphdef: nnx.GraphDef,
    optimizer: optax.GradientTransformation,
    train_config: ml_collections.ConfigDict,
    mesh: jax.sharding.Mesh,
    augment_config: ml_collections.ConfigDict | None = None,
    seed: int = 0,
) -> Callable:
  """`train_step` compiled for the mesh: batch sharded, state replicated and donated.

  The step augments its batch when `augment_config` (`data.augment`) has placement
  'device'; `seed` is the training seed its randomness starts from.
  """
  if train_config.loss not in LOSSES:
    raise ConfigError(f"train.loss must be one of {LOSSES}, not {train_config.loss!r}")
  on_device = augment_config is not None and augment_lib.on_device(augment_config)
  step = functools.partial(train_step, graphdef=graphdef, optimizer=optimizer,
                           loss=train_config.loss, huber_delta=train_config.huber_delta,
                           augment=augment_config if on_device else None, seed=seed,
                           label_sigma=train_config.label_sigma)
  replicated = sharding.replicated(mesh)
  return jax.jit(step, in_shardings=(replicated, sharding.batch_sharding(mesh)),
                 out_shardings=(replicated, replicated), donate_argnums=0)


def jit_eval_step(graphdef: nnx.GraphDef, mesh: jax.sharding.Mesh) -> Callable:
  """`eval_step` compiled for the mesh; predictions come back whole on every process."""
  replicated = sharding.replicated(mesh)
  return jax.jit(functools.partial(eval_step, graphdef=graphdef),
                 in_shardings=(replicated, sharding.batch_sharding(mesh)),
                 out_shardings=(replicated, replicated))
