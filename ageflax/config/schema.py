"""The one config schema: every field's allowed values, checked in one place, and saved configs
brought up to today's fields.

`FIELDS` holds one line per field of `defaults.get_config()`: its kind and allowed values
or range (a test keeps the two in step, so a new field needs one line here). `check(config)`
runs once at the start of every entry point that takes or restores a config, before any data
is read, and raises a one-line ConfigError naming the field as the command line spells it
(`--config.data.image_size`) and what it allows. Names a field picks among come from the
code that implements them (the architecture table, the layouts, the augmentation spec), so
the schema cannot drift from it.
"""

import dataclasses
import math
from collections.abc import Callable, Iterator

import ml_collections

from ageflax.config import defaults
from ageflax.core.errors import ConfigError
from ageflax.data import augment_spec, layouts
from ageflax.model import architectures, dex, resnet

# What `train/steps.py` implements: l2, l1 and huber on the predicted age (any head but dex);
# dex, the cross-entropy over the dex head's age bins.
LOSSES = ("l2", "l1", "huber", "dex")
# Seeds reach numpy, TensorFlow and JAX; a non-negative int32 suits all three.
_MAX_SEED = 2**31 - 1


@dataclasses.dataclass(frozen=True)
class OneOf:
  """A string among `values`."""

  values: tuple[str, ...]

  @property
  def allowed(self) -> str:
    return f"one of {self.values}"

  def accepts(self, value: object) -> bool:
    return isinstance(value, str) and value in self.values


@dataclasses.dataclass(frozen=True)
class Number:
  """A finite number, whole if `whole`, within `low`..`high` (each end open, closed or absent)."""

  low: float | None = None
  high: float | None = None
  low_open: bool = False
  high_open: bool = False
  whole: bool = False
  optional: bool = False  # None too: the field is unset and another one stands in for it.

  @property
  def allowed(self) -> str:
    kind = ("None or " if self.optional else "") + ("a whole number" if self.whole
                                                    else "a finite number")
    if self.high is None:
      return f"{kind} {'>' if self.low_open else '>='} {_shown(self.low)}"
    return (f"{kind} in {'(' if self.low_open else '['}{_shown(self.low)}, "
            f"{_shown(self.high)}{')' if self.high_open else ']'}")

  def accepts(self, value: object) -> bool:
    if value is None:
      return self.optional
    if isinstance(value, bool) or not isinstance(value, (int, float)):
      return False
    if isinstance(value, float) and not (math.isfinite(value)
                                         and (value.is_integer() or not self.whole)):
      return False
    above = value > self.low if self.low_open else value >= self.low
    below = self.high is None or (value < self.high if self.high_open else value <= self.high)
    return above and below


def _shown(bound: float) -> str:
  return str(bound) if isinstance(bound, int) else f"{bound:g}"


@dataclasses.dataclass(frozen=True)
class Kind:
  """Any value of one Python type (a path, a column name, a switch)."""

  type: type

  @property
  def allowed(self) -> str:
    return {bool: "True or False", str: "a string"}[self.type]

  def accepts(self, value: object) -> bool:
    return isinstance(value, self.type)


_TEXT = Kind(str)
_SWITCH = Kind(bool)
_SEED = Number(0, _MAX_SEED, whole=True)
_COUNT = Number(1, whole=True)  # sizes, counts and intervals in steps
_COUNT_OR_ZERO = Number(0, whole=True)
_POSITIVE = Number(0.0, low_open=True)  # rates, lengths in epochs, thresholds
_NON_NEGATIVE = Number(0.0)
_FRACTION = Number(0.0, 1.0, high_open=True)  # a share of something, less than all of it
_UP_TO_ONE = Number(0.0, 1.0)

FIELDS: dict[str, OneOf | Number | Kind] = {
    "seed": _SEED,
    "data.dir": _TEXT,
    "data.format": OneOf(("auto", *layouts.FORMATS)),
    "data.source": OneOf(("folder", "tfds")),
    "data.image_size": _COUNT,
    "data.validation_fraction": _FRACTION,
    "data.test_fraction": _FRACTION,
    "data.split_seed": _SEED,
    "data.split_by": OneOf(("file_name", "content")),
    "data.max_age": _POSITIVE,
    "data.max_image_megapixels": _POSITIVE,
    "data.extra_image_root": _TEXT,
    "data.bad_rows": OneOf(("skip", "error")),
    "data.max_bad_fraction": _UP_TO_ONE,
    "data.verify_images": _SWITCH,
    "data.cache": OneOf(("auto", "memory", "none")),
    "data.cache_max_gb": _NON_NEGATIVE,
    "data.num_threads": _COUNT_OR_ZERO,  # 0: one per CPU core
    "data.prefetch_batches": _COUNT_OR_ZERO,
    "data.group_columns": _TEXT,  # comma-separated column names
    "data.group_from_file_names": OneOf(tuple(layouts.FILE_NAME_GROUPS)),
    "data.csv.path": _TEXT,
    "data.csv.image_root": _TEXT,
    "data.csv.file_column": _TEXT,
    "data.csv.age_column": _TEXT,
    "data.appa_real.target": OneOf(tuple(layouts.APPA_TARGETS)),
    "data.appa_real.face_crops": _SWITCH,
    "data.face_framing.mode": OneOf(("none", "align")),
    "data.face_framing.min_face_fraction": _FRACTION,
    "data.face_framing.min_score": _FRACTION,
    "data.augment.flip": _SWITCH,
    "data.augment.rotation_degrees": Number(0.0, 180.0),
    "data.augment.shift_fraction": _FRACTION,
    "data.augment.zoom_fraction": _FRACTION,  # the zoom factor 1 - z stays above 0
    "data.augment.brightness": _UP_TO_ONE,
    "data.augment.contrast": _UP_TO_ONE,
    "data.augment.colour_cast": _FRACTION,  # a gain of 1 - c stays above 0
    "data.augment.gamma": Number(0.0, 4.0),
    "data.augment.blur_sigma_max": Number(0.0, 10.0),
    "data.augment.low_res_probability": _UP_TO_ONE,
    "data.augment.low_res_side": _COUNT,
    "data.augment.jpeg_quality_min": Number(0, augment_spec.JPEG_QUALITY_MAX, whole=True),
    "data.augment.fill_mode": OneOf(augment_spec.FILL_MODES),
    "data.augment.placement": OneOf(augment_spec.PLACEMENTS),
    "model.name": OneOf(tuple(architectures.ARCHITECTURES)),
    "model.head": OneOf(resnet.HEADS),
    "model.dex_max_age": Number(1, 1000, whole=True),
    "model.dex_readout": OneOf(dex.READOUTS),
    "model.input_normalization": OneOf(resnet.NORMALIZATION_NAMES),
    "model.dtype": OneOf(("float32", "bfloat16")),
    "model.conv_impl": OneOf(resnet.CONV_IMPLS),
    "model.bn_momentum": _FRACTION,
    "model.bn_epsilon": Number(0.0, 1.0, low_open=True),
    "model.zero_init_residual": _SWITCH,
    "model.block_style": OneOf(resnet.BLOCK_STYLES),
    "model.init_from": _TEXT,
    "optim.name": OneOf(("adam", "adamw")),
    "optim.learning_rate": _POSITIVE,  # a diverging rate stops the run (non-finite loss)
    "optim.schedule": OneOf(("constant", "cosine")),
    "optim.final_learning_rate_fraction": _UP_TO_ONE,
    "optim.warmup_steps": Number(0, whole=True, optional=True),
    "optim.warmup_epochs": Number(0.0, optional=True),
    "optim.b1": _FRACTION,
    "optim.b2": _FRACTION,
    "optim.eps": Number(0.0, 1.0, low_open=True),
    "optim.weight_decay": _NON_NEGATIVE,
    "optim.grad_clip_norm": _NON_NEGATIVE,  # 0: off
    "optim.backbone_learning_rate_multiplier": _NON_NEGATIVE,
    "optim.freeze_backbone_steps": _COUNT_OR_ZERO,
    "train.batch_size": _COUNT,
    "train.num_epochs": Number(0.0, low_open=True, optional=True),
    "train.num_steps": Number(1, whole=True, optional=True),
    "train.loss": OneOf(LOSSES),
    "train.label_sigma": Number(0.0, 100.0),
    "train.huber_delta": Number(0.0, 1000.0, low_open=True),
    "train.age_balance": Number(0.0, 1.0),
    "train.ema_decay": Number(0.0, 1.0, high_open=True),
    "train.mixup_alpha": Number(0.0),
    "train.log_every_steps": _COUNT,
    "eval.batch_size": _COUNT,
    "eval.every_epochs": _POSITIVE,
    "eval.legal_age": _POSITIVE,
    "eval.challenge_age": _POSITIVE,
    "eval.min_group_photos": _COUNT,
    "till.min_photo_side": _COUNT,
    "till.min_face_side": _COUNT,
    "till.min_sharpness": _NON_NEGATIVE,
    "till.max_noise_ratio": _POSITIVE,
    "till.max_spread": _POSITIVE,
    "checkpoint.every_steps": _COUNT,
    "checkpoint.keep_latest": _COUNT,
    "checkpoint.keep_best": _COUNT,
}


def check(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError, naming the first field at fault, unless every field and every
  combination of fields in `config` is allowed."""
  values = dict(_flatten(config.to_dict()))
  unknown = sorted(values.keys() - FIELDS.keys())
  if unknown:
    raise ConfigError(f"--config.{unknown[0]} is not a config field (see "
                      "ageflax/config/defaults.py)")
  for name, rule in FIELDS.items():
    if name not in values:
      raise ConfigError(f"--config.{name} is missing: experiment files override the fields "
                        "of ageflax/config/defaults.py, never delete them")
    if not rule.accepts(values[name]):
      raise ConfigError(f"--config.{name} must be {rule.allowed}, not {values[name]!r}")
  for combination in _COMBINATIONS:
    problem = combination(config)
    if problem:
      raise ConfigError(problem)


def _head_and_loss(config: ml_collections.ConfigDict) -> str | None:
  head, loss, label_sigma = config.model.head, config.train.loss, config.train.label_sigma
  if head == "dex" and loss != "dex":
    return (f"--config.model.head='dex' trains with --config.train.loss='dex' (cross-entropy "
            f"over its age bins), not {loss!r}")
  if loss == "dex" and head != "dex":
    return f"--config.train.loss='dex' needs --config.model.head='dex', not {head!r}"
  if label_sigma and loss != "dex":
    return (f"--config.train.label_sigma={label_sigma!r} smooths the labels of "
            f"--config.train.loss='dex' only; set it to 0 with --config.train.loss={loss!r}")
  return None


def _durations(config: ml_collections.ConfigDict) -> str | None:
  for section, name in (("train", "num"), ("optim", "warmup")):
    if config[section][f"{name}_steps"] is None and config[section][f"{name}_epochs"] is None:
      return f"set --config.{section}.{name}_steps or --config.{section}.{name}_epochs"
  return None


def _held_out(config: ml_collections.ConfigDict) -> str | None:
  validation, test = config.data.validation_fraction, config.data.test_fraction
  if validation + test >= 1:
    return (f"--config.data.validation_fraction ({validation:g}) and --config.data."
            f"test_fraction ({test:g}) must sum to less than 1: nothing would be left to train")
  return None


def _id_check_ages(config: ml_collections.ConfigDict) -> str | None:
  legal, challenge = config.eval.legal_age, config.eval.challenge_age
  if legal > challenge:
    return (f"--config.eval.legal_age ({legal:g}) must be at most --config.eval.challenge_age "
            f"({challenge:g})")
  return None


def _group_fields(config: ml_collections.ConfigDict) -> str | None:
  columns = layouts.group_columns(config.data.group_columns)
  named = [*columns, *layouts.FILE_NAME_GROUPS[config.data.group_from_file_names]]
  twice = sorted({name for name in named if named.count(name) > 1})
  if twice:
    return (f"group field {twice[0]!r} is named twice by --config.data.group_columns="
            f"{config.data.group_columns!r} and --config.data.group_from_file_names="
            f"{config.data.group_from_file_names!r}")
  if named and config.data.source == "tfds":
    return ("group fields (--config.data.group_columns, --config.data.group_from_file_names) "
            "are read from a photo folder, not from prepared records (data.source='tfds')")
  return None


def _host_only_augmentation(config: ml_collections.ConfigDict) -> str | None:
  augment = config.data.augment
  if augment.placement != "device":
    return None
  for field in augment_spec.HOST_ONLY:
    if augment[field]:
      return (f"--config.data.augment.{field}={augment[field]!r} is done by tf.data only: set "
              "--config.data.augment.placement='host' or set it to 0")
  return None


_COMBINATIONS: tuple[Callable[[ml_collections.ConfigDict], str | None], ...] = (
    _head_and_loss, _durations, _held_out, _id_check_ages, _group_fields,
    _host_only_augmentation)


def with_current_defaults(saved: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The saved config laid over today's defaults, so older runs gain fields added since."""
  config = defaults.get_config()
  for name, value in _flatten(saved.to_dict()):
    *parents, key = name.split(".")
    section = config
    for part in parents:
      section = section.get(part, {})
    if key in section:  # fields removed since the run was saved are dropped
      section[key] = value
  return config


def _flatten(tree: dict, prefix: str = "") -> Iterator[tuple[str, object]]:
  for key, value in tree.items():
    if isinstance(value, dict):
      yield from _flatten(value, f"{prefix}{key}.")
    else:
      yield f"{prefix}{key}", value
