"""Learning-rate schedules, optimizers and the resolution of durations given in epochs or steps."""

import jax
import jax.numpy as jnp
import ml_collections
import optax


def resolve_steps(section: ml_collections.ConfigDict, name: str, steps_per_epoch: int) -> int:
  """Resolves a duration written as `{name}_steps` or `{name}_epochs`.

  `{name}_steps` wins when set (configs leave it unset), so that `--config.x_steps=N`
  works from the command line; epochs may be fractional and are rounded to whole steps.
  """
  steps = section.get(f"{name}_steps")
  if steps is not None:
    return int(steps)
  return round(section.get(f"{name}_epochs") * steps_per_epoch)


def create_learning_rate_schedule(
    config: ml_collections.ConfigDict, total_steps: int, steps_per_epoch: int
) -> optax.Schedule:
  """Linear warm-up from 0, then `optim.schedule`: 'cosine' (to 0 at the end) or 'constant'."""
  warmup = min(resolve_steps(config, "warmup", steps_per_epoch), total_steps)
  peak = config.learning_rate
  if config.schedule == "cosine":
    decay = optax.cosine_decay_schedule(peak, max(total_steps - warmup, 1),
                                        alpha=config.final_learning_rate_fraction)
  else:  # 'constant'
    decay = optax.constant_schedule(peak)
  warmup_schedule = optax.linear_schedule(0.0, peak, warmup)
  return optax.join_schedules([warmup_schedule, decay], [warmup])


def create_optimizer(
    config: ml_collections.ConfigDict, schedule: optax.Schedule
) -> optax.GradientTransformation:
  """`optim.name` 'adam' or 'adamw' (decay on conv/dense kernels only), optional clipping.

  With `optim.backbone_learning_rate_multiplier` != 1 or `optim.freeze_backbone_steps` > 0,
  the head and the backbone each get their own optimizer (`optax.multi_transform`): the
  head follows `schedule`, the backbone the multiplier times it, and 0 (no update at all)
  during its first `freeze_backbone_steps` steps. Otherwise the optimizer state keeps the
  single optimizer's layout, so runs saved before these fields existed still resume.
  """
  multiplier = float(config.backbone_learning_rate_multiplier)
  frozen_steps = int(config.freeze_backbone_steps)
  if multiplier == 1.0 and frozen_steps == 0:
    optimizer = _optimizer(config, schedule)
  else:
    def backbone_schedule(count):
      return jnp.where(count < frozen_steps, 0.0, multiplier * schedule(count))

    optimizer = optax.multi_transform(
        {"head": _optimizer(config, schedule),
         "backbone": _optimizer(config, backbone_schedule)}, _head_or_backbone)
  if config.grad_clip_norm:  # over all parameters together, as without the split
    optimizer = optax.chain(optax.clip_by_global_norm(config.grad_clip_norm), optimizer)
  return optimizer


def _head_or_backbone(params):
  """'head' for the head's parameters (the model's `head` attribute), else 'backbone'."""
  return jax.tree_util.tree_map_with_path(
      lambda path, _: "head" if path[0].key == "head" else "backbone", params)


def _optimizer(config: ml_collections.ConfigDict, schedule) -> optax.GradientTransformation:
  if config.name == "adamw":
    return optax.adamw(schedule, b1=config.b1, b2=config.b2, eps=config.eps,
                       weight_decay=config.weight_decay, mask=_kernels_only)
  return optax.adam(schedule, b1=config.b1, b2=config.b2, eps=config.eps)


def _kernels_only(params):
  # BatchNorm scales and biases are not decayed: decaying them only fights the normalisation.
  return jax.tree.map(lambda p: p.ndim > 1, params)
