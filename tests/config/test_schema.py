"""The config schema: every field has one rule, and every bad value is one line naming it."""

import importlib
import math

import pytest
from conftest import REPO, learnable_batch, set_fields
from hypothesis import given, settings
from hypothesis import strategies as st

from ageflax.config import defaults, schema
from ageflax.core import sharding
from ageflax.core.errors import ConfigError
from ageflax.model import architectures
from ageflax.train import optimizers, steps
from configs import tiny

_EXPERIMENT_FILES = sorted(p.stem for p in (REPO / "configs").glob("*.py") if p.stem != "__init__")


def _fields(config) -> dict:
  return dict(schema._flatten(config.to_dict()))


def _error(**fields) -> str:
  with pytest.raises(ConfigError) as error:
    schema.check(set_fields(tiny.get_config(), **fields))
  message = str(error.value)
  assert "\n" not in message
  return message


def test_every_default_field_has_one_rule():
  assert sorted(_fields(defaults.get_config())) == sorted(schema.FIELDS)


@pytest.mark.parametrize("name", _EXPERIMENT_FILES)
def test_the_defaults_and_every_experiment_file_pass(name):
  schema.check(defaults.get_config())
  schema.check(importlib.import_module(f"configs.{name}").get_config())


def test_allowed_names_are_the_ones_the_code_implements():
  assert schema.FIELDS["model.name"].values == tuple(architectures.ARCHITECTURES)
  assert (*steps.REGRESSION_LOSSES, "dex") == schema.LOSSES
  config = tiny.get_config().optim
  for name in schema.FIELDS["optim.name"].values:
    for schedule in schema.FIELDS["optim.schedule"].values:
      config.update(dict(name=name, schedule=schedule))
      optimizers.create_optimizer(
          config, optimizers.create_learning_rate_schedule(config, 10, 5))


@pytest.mark.parametrize("fields, message", [
    # The cases: sizes and counts positive, rates positive and finite, ...
    (dict(data__image_size=-4), "--config.data.image_size must be a whole number >= 1, not -4"),
    (dict(data__image_size=0), "--config.data.image_size must be a whole number >= 1, not 0"),
    (dict(train__num_epochs=0.0), "--config.train.num_epochs must be None or a finite number > 0"),
    (dict(train__num_epochs=-1.0), "--config.train.num_epochs must be None or a finite number > 0"),
    (dict(train__num_steps=0), "--config.train.num_steps must be None or a whole number >= 1"),
    (dict(optim__learning_rate=-1.0),
     "--config.optim.learning_rate must be a finite number > 0, not -1.0"),
    (dict(optim__learning_rate=math.inf), "--config.optim.learning_rate must be a finite number"),
    (dict(optim__b1=math.nan), "--config.optim.b1 must be a finite number in [0, 1), not nan"),
    (dict(model__bn_momentum=1.0), "--config.model.bn_momentum must be a finite number in [0, 1)"),
    (dict(data__validation_fraction=1.0), "--config.data.validation_fraction must be a finite "
                                          "number in [0, 1), not 1.0"),
    (dict(data__validation_fraction=0.7, data__test_fraction=0.3),
     "--config.data.validation_fraction (0.7) and --config.data.test_fraction (0.3) must sum to "
     "less than 1"),
    (dict(train__batch_size=0), "--config.train.batch_size must be a whole number >= 1, not 0"),
    (dict(eval__batch_size=-8), "--config.eval.batch_size must be a whole number >= 1, not -8"),
    (dict(checkpoint__every_steps=0), "--config.checkpoint.every_steps must be a whole number"),
    (dict(seed=-1), "--config.seed must be a whole number in [0, 2147483647], not -1"),
    (dict(train__num_steps=None, train__num_epochs=None),
     "set --config.train.num_steps or --config.train.num_epochs"),
    (dict(optim__warmup_steps=None, optim__warmup_epochs=None),
     "set --config.optim.warmup_steps or --config.optim.warmup_epochs"),
    (dict(eval__legal_age=21.0, eval__challenge_age=18.0),
     "--config.eval.legal_age (21) must be at most --config.eval.challenge_age (18)"),
    # Checks that were scattered over the package, with their key content kept.
    (dict(data__format="imdb"), "--config.data.format must be one of ('auto', 'labels_csv', "),
    (dict(data__appa_real__target="mean_age"), "--config.data.appa_real.target must be one of"),
    (dict(data__split_by="size"),
     "--config.data.split_by must be one of ('file_name', 'content'), not 'size'"),
    (dict(data__source="gcs"), "--config.data.source must be one of ('folder', 'tfds'), not 'gcs'"),
    (dict(data__bad_rows="warn"), "--config.data.bad_rows must be one of ('skip', 'error')"),
    (dict(data__cache="disk"), "--config.data.cache must be one of ('auto', 'memory', 'none')"),
    (dict(data__augment__placement="gpu"),
     "--config.data.augment.placement must be one of ('host', 'device'), not 'gpu'"),
    (dict(data__augment__fill_mode="mirror"), "--config.data.augment.fill_mode must be one of"),
    (dict(data__augment__placement="device", data__augment__jpeg_quality_min=30),
     "--config.data.augment.jpeg_quality_min=30 is done by tf.data only: set "
     "--config.data.augment.placement='host' or set it to 0"),
    (dict(model__name="resnet9"), "--config.model.name must be one of ('resnet18', "),
    (dict(model__head="softplus"), "--config.model.head must be one of"),
    (dict(model__input_normalization="zscore"), "--config.model.input_normalization must be"),
    (dict(model__conv_impl="fft"), "--config.model.conv_impl must be one of"),
    (dict(model__block_style="v2"), "--config.model.block_style must be one of"),
    (dict(model__dex_readout="mode"),
     "--config.model.dex_readout must be one of ('mean', 'median'), not 'mode'"),
    (dict(model__head="dex", train__loss="dex", model__dex_max_age=0),
     "--config.model.dex_max_age must be a whole number in [1, 1000], not 0"),
    (dict(optim__name="sgd"), "--config.optim.name must be one of ('adam', 'adamw')"),
    (dict(optim__schedule="linear"), "--config.optim.schedule must be one of"),
    (dict(optim__backbone_learning_rate_multiplier=-0.5),
     "--config.optim.backbone_learning_rate_multiplier must be a finite number >= 0, not -0.5"),
    (dict(optim__freeze_backbone_steps=-1),
     "--config.optim.freeze_backbone_steps must be a whole number >= 0"),
    (dict(train__loss="l3"), "--config.train.loss must be one of ('l2', 'l1', 'huber', 'dex')"),
    (dict(model__head="dex", train__loss="l2"),
     "--config.model.head='dex' trains with --config.train.loss='dex' (cross-entropy over its "
     "age bins), not 'l2'"),
    (dict(model__head="affine", train__loss="dex"),
     "--config.train.loss='dex' needs --config.model.head='dex', not 'affine'"),
    (dict(model__head="dex", train__loss="dex", train__label_sigma=-1.0),
     "--config.train.label_sigma must be a finite number in [0, 100], not -1.0"),
    (dict(model__head="relu", train__loss="l1", train__label_sigma=2.0),
     "--config.train.label_sigma=2.0 smooths the labels of --config.train.loss='dex' only"),
    (dict(train__mixup_alpha=-0.2),
     "--config.train.mixup_alpha must be a finite number >= 0, not -0.2"),
])
def test_bad_values_are_one_line_errors_naming_the_field(fields, message):
  assert message in _error(**fields)


def test_unknown_and_missing_fields_are_named():
  config = tiny.get_config()
  config.train.num_epoch = 3.0  # a typo in an experiment file adds a field
  with pytest.raises(ConfigError, match=r"^--config\.train\.num_epoch is not a config field"):
    schema.check(config)
  config = tiny.get_config()
  del config.train["huber_delta"]
  with pytest.raises(ConfigError, match=r"^--config\.train\.huber_delta is missing"):
    schema.check(config)


def _values(rule: schema.OneOf | schema.Number) -> st.SearchStrategy:
  """Values of the field's type: allowed names and random strings; numbers in and out of
  range, zero, huge, nan and inf."""
  if isinstance(rule, schema.OneOf):
    return st.one_of(st.sampled_from(rule.values), st.text(max_size=6))
  ints = st.one_of(st.integers(-3, 3), st.integers(), st.sampled_from([2**31, 10**30]))
  if rule.whole:  # a float in an int field is ml_collections' TypeError, before any schema
    return ints
  return st.one_of(ints.map(float), st.floats(), st.sampled_from([0.5, 1.0, 1e-300, 1e300]))


def _allowed_values(rule: schema.OneOf | schema.Number) -> st.SearchStrategy:
  """Any value the rule allows, huge ones included."""
  if isinstance(rule, schema.OneOf):
    return st.sampled_from(rule.values)
  if rule.whole:
    return st.integers(rule.low + rule.low_open, rule.high)
  return st.floats(rule.low, rule.high, exclude_min=rule.low_open, exclude_max=rule.high_open,
                   allow_nan=False, allow_infinity=False)


_DRAWN = {name: _values(rule) for name, rule in schema.FIELDS.items()
          if isinstance(rule, schema.OneOf | schema.Number)}


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_random_values_are_accepted_or_one_line_errors(data):
  names = data.draw(st.lists(st.sampled_from(sorted(_DRAWN)), min_size=1, max_size=4,
                             unique=True))
  drawn = {name: data.draw(_DRAWN[name], label=name) for name in names}
  config = set_fields(tiny.get_config(), **{n.replace(".", "__"): v for n, v in drawn.items()})
  refused = [n for n, v in drawn.items() if not schema.FIELDS[n].accepts(v)]
  try:
    schema.check(config)
  except ConfigError as error:
    assert "\n" not in str(error) and "--config." in str(error)
    if refused:
      assert f"--config.{min(refused, key=list(schema.FIELDS).index)} " in str(error)
  else:
    assert not refused


# The fields a train step reads: the optimizer's, the model's and the augmentation's.
_TRAINED = ("seed", "optim.learning_rate", "optim.b1", "optim.b2", "optim.eps",
            "optim.weight_decay", "optim.grad_clip_norm", "optim.final_learning_rate_fraction",
            "optim.schedule", "optim.name", "model.bn_momentum", "model.bn_epsilon",
            "model.input_normalization", "model.conv_impl", "train.huber_delta",
            "data.augment.rotation_degrees", "data.augment.shift_fraction",
            "data.augment.zoom_fraction", "data.augment.brightness", "data.augment.contrast",
            "data.augment.fill_mode", "data.augment.placement")


@settings(max_examples=2, deadline=None)
@given(st.data())
def test_accepted_random_configs_train(data):
  drawn = {name: data.draw(_allowed_values(schema.FIELDS[name]), label=name)
           for name in _TRAINED}
  config = set_fields(tiny.get_config(), train__loss="huber",
                **{n.replace(".", "__"): v for n, v in drawn.items()})
  schema.check(config)
  mesh = sharding.create_mesh()
  optimizer = optimizers.create_optimizer(
      config.optim, optimizers.create_learning_rate_schedule(config.optim, 3, 2))
  graphdef, state = steps.create_train_state(config, optimizer, mesh, head_bias=40.0)
  train_step = steps.jit_train_step(graphdef, optimizer, config.train, mesh,
                                    config.data.augment, config.seed)
  losses = []
  for step in range(3):
    state, metrics = train_step(state, learnable_batch(mesh, seed=step))
    losses.append(float(metrics["loss"]))
  # A huge allowed learning rate may make later losses non-finite: the loop stops such a
  # run with a one-line TrainingError. The first loss comes before any update.
  assert int(state.step) == 3 and math.isfinite(losses[0])
