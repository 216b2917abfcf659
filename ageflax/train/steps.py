"""The training state and the pure, jitted train step (evaluation is `evaluate.evaluator`'s).

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
import numpy as np
import optax
from flax import nnx, struct

from ageflax.core import sharding
from ageflax.data import jax_augment
from ageflax.data.augment_spec import AugmentSpec
from ageflax.model import dex, pretrained, resnet
from ageflax.train import mixup

# On the predicted age, for any head but 'dex' (which trains with `dex.cross_entropy`); the
# config schema lists them with 'dex' as `train.loss`'s values.
REGRESSION_LOSSES = ("l2", "l1", "huber")


@struct.dataclass
class TrainState:
  """Everything that changes during training; `step` counts finished train steps."""

  step: jax.Array
  params: nnx.State
  batch_stats: nnx.State
  opt_state: optax.OptState
  # With `train.ema_decay` on: the moving average of {'params', 'batch_stats'}.
  ema: dict[str, nnx.State] | None = None

  @property
  def weights(self) -> dict[str, nnx.State]:
    """The trained {'params', 'batch_stats'}, as the optimizer left them."""
    return {"params": self.params, "batch_stats": self.batch_stats}

  @property
  def variables(self) -> dict[str, nnx.State]:
    """The model's {'params', 'batch_stats'} that are validated, kept and exported (what
    `ageflax.model.predict` takes): the moving average with `train.ema_decay` on."""
    return self.weights if self.ema is None else self.ema


def per_example_loss(predictions: jax.Array, ages: jax.Array, loss: str, huber_delta: float):
  """L2 (squared error, the study's), L1 or Huber loss per example, on predicted ages."""
  per_error = {"l2": jnp.square, "l1": jnp.abs,
               "huber": functools.partial(optax.huber_loss, delta=huber_delta)}[loss]
  return per_error(predictions - ages)


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
  backbone = pretrained.load_backbone(config.model) if config.model.init_from else None
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
  model = resnet.create_model(config.model, head_bias=head_bias, seed=config.seed)
  graphdef, params, batch_stats = nnx.split(model, nnx.Param, nnx.BatchStat)
  if backbone is not None:  # pretrained weights everywhere but the head
    nnx.replace_by_pure_dict(params, backbone["params"])
    nnx.replace_by_pure_dict(batch_stats, backbone["batch_stats"])
  state = TrainState(jnp.zeros((), jnp.int32), params, batch_stats, optimizer.init(params))
  return graphdef, state.replace(ema=state.weights) if config.train.ema_decay else state


def train_step(
    state: TrainState,
    batch: dict[str, jax.Array],
    *,
    graphdef: nnx.GraphDef,
    optimizer: optax.GradientTransformation,
    loss: str,
    huber_delta: float,
    augment: AugmentSpec | None = None,
    seed: int = 0,
    label_sigma: float = 0.0,
    age_weights: jax.Array | None = None,
    ema_decay: float = 0.0,
    mixup_alpha: float = 0.0,
) -> tuple[TrainState, dict[str, jax.Array]]:
  """One optimizer step on a global batch; returns the new state and batch metrics.

  `loss` is a regression loss on the predicted ages, or 'dex': the cross-entropy of the
  dex head's bins against the true ages' labels (Gaussian of width `label_sigma`, if > 0).
  With `age_weights` (`age_balance.age_weight_table`) each photo's loss is weighted by
  its whole age's entry (ages past the table take its last). A state with a moving average
  (`state.ema`) moves it towards the new weights (see `moving_average`).

  With `augment` (the spec of `data.augment`), the uint8 images are augmented first, each
  with randomness drawn from (seed, state.step, its row in the global batch). With
  `mixup_alpha` > 0 they are then blended in pairs, and so are their losses (`mixup`); the
  MAE reported is then against the blended ages.
  """
  images, ages = batch["image"], batch["age"]
  if augment is not None:
    images = jax_augment.augment_batch(images, seed, state.step, augment)
  blend = None
  if mixup_alpha:
    blend = mixup.blend_weights(seed, state.step, images.shape[0], mixup_alpha)
    images = mixup.blend_images(images, blend)

  loss_fn = functools.partial(_mean_loss, images=images, ages=ages, graphdef=graphdef,
                              loss=loss, huber_delta=huber_delta, label_sigma=label_sigma,
                              age_weights=age_weights, blend=blend)
  (loss_value, (predictions, batch_stats)), grads = jax.value_and_grad(
      loss_fn, has_aux=True)(state.params, state.batch_stats)
  updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  metrics = {
      "loss": loss_value,
      "mae": jnp.mean(jnp.abs(predictions - (
          ages if blend is None else mixup.blend_ages(ages, blend)))),
      "grad_norm": optax.global_norm(grads),
  }
  trained = TrainState(state.step + 1, params, batch_stats, opt_state)
  if state.ema is None:
    return trained, metrics
  ema = moving_average(state.ema, trained.weights, state.step, ema_decay)
  return trained.replace(ema=ema), metrics


def moving_average(average, new, step: jax.Array, decay: float):
  """`average` moved towards `new` after train step `step` (counted from 0).

  The decay ramps up as (1 + step) / (10 + step) until it reaches `decay`, as in
  `tf.train.ExponentialMovingAverage`: a full decay from the first step would keep the
  random initial weights in the average for thousands of steps.
  """
  rate = jnp.minimum(decay, (1.0 + step) / (10.0 + step))
  return jax.tree.map(lambda old, value: rate * old + (1.0 - rate) * value, average, new)


def _mean_loss(params, batch_stats, *, images, ages, graphdef, loss, huber_delta, label_sigma,
               age_weights, blend):
  """The batch's mean (age-weighted, with `blend` blended) training loss, and (predicted
  ages, updated BatchNorm statistics)."""
  model = nnx.merge(graphdef, params, batch_stats, copy=True)
  outputs = model.head_outputs(images, train=True)
  predictions = model.ages_from_outputs(outputs)

  def losses_against(target_ages):
    if loss == "dex":
      losses = dex.cross_entropy(outputs, target_ages, label_sigma)
    else:
      losses = per_example_loss(predictions, target_ages, loss, huber_delta)
    if age_weights is None:
      return losses
    years = jnp.clip(jnp.round(target_ages).astype(jnp.int32), 0, age_weights.shape[0] - 1)
    return losses * age_weights[years]

  losses = (losses_against(ages) if blend is None
            else mixup.blend_losses(losses_against, ages, blend))
  return jnp.mean(losses), (predictions, nnx.state(model, nnx.BatchStat))


def jit_train_step(
    graphdef: nnx.GraphDef,
    optimizer: optax.GradientTransformation,
    train_config: ml_collections.ConfigDict,
    mesh: jax.sharding.Mesh,
    augment_config: ml_collections.ConfigDict | None = None,
    seed: int = 0,
    age_weights: np.ndarray | None = None,
) -> Callable:
  """`train_step` compiled for the mesh: batch sharded, state replicated and donated.

  The step augments its batch when `augment_config` (`data.augment`) has placement
  'device'; `seed` is the training seed its randomness starts from; `age_weights` weight
  the loss (see `train_step`); `train.ema_decay` is the moving average's and
  `train.mixup_alpha` mixup's.
  """
  augment = None if augment_config is None else AugmentSpec.from_config(augment_config)
  step = functools.partial(train_step, graphdef=graphdef, optimizer=optimizer,
                           loss=train_config.loss, huber_delta=train_config.huber_delta,
                           augment=augment if augment and augment.on_device else None, seed=seed,
                           label_sigma=train_config.label_sigma,
                           age_weights=None if age_weights is None else jnp.asarray(age_weights),
                           ema_decay=train_config.ema_decay,
                           mixup_alpha=train_config.mixup_alpha)
  replicated = sharding.replicated(mesh)
  return jax.jit(step, in_shardings=(replicated, sharding.batch_sharding(mesh)),
                 out_shardings=(replicated, replicated), donate_argnums=0)
