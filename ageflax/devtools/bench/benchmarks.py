"""Benchmarks of ageflax, section by section and beside its peers, in one run.

What `scripts/benchmark.py` prints and writes as JSON. Each figure is timed in several
repetitions after warm-up and reported as median and min-max:

- input_pipeline: images/s of the tf.data training stream alone (the config's image store
  and full augmentation; the same decoding from files; the store alone when the train step
  augments, `data.augment.placement='device'`; the plain recipe of decode + resize + flip in
  tf.data), also per CPU core;
- train_step: images/s of the compiled train step on a fixed device-resident batch, with the
  compile time apart, and of the step that also augments the batch (placement 'device');
- end_to_end: images/s of train steps fed by the input pipeline from a data folder;
- utilisation: FLOP/s achieved by the step (from the compiled step's cost analysis, or the
  known ResNet count) against a matrix product timed in the same run;
- peers: the study's model in Keras and the same ResNet in plain torch.nn, at the same
  resolution, batch and data, timed in the same rounds as ageflax, taking turns, because a
  shared machine is noisy.

`SETTINGS` names the (model, resolution, batch) of the study and of the 45-minute recipe,
which one command can measure in turn. This module runs the sections (`sections`) that
`Options` asks for; the figures and the report are `report`'s, the timing `timing`'s, the
peers `peers`'. TensorFlow, Keras and torch are imported only where they are used, so the
train-step section runs where TensorFlow is absent; a missing peer is skipped with a note.
"""

import dataclasses
import importlib.metadata
import tempfile

import ml_collections

from ageflax.config import schema
from ageflax.core import sharding
from ageflax.core.errors import ConfigError
from ageflax.data.augment_spec import AugmentSpec
from ageflax.devtools.bench import sections
from ageflax.devtools.bench.peers import create_peers
from ageflax.devtools.bench.report import PEERS, SECTIONS, Options, Report, cores
from ageflax.devtools.bench.timing import compile_ageflax_step, synthetic_batch
from ageflax.train import summaries

# Named (model.name, data.image_size, train.batch_size) that `--settings` measures in turn:
# the study's reference and the 45-minute CPU recipe's (configs/cpu45.py).
SETTINGS = {"study": ("resnet50", 128, 32), "cpu45": ("resnet18", 64, 64)}


def configure(config: ml_collections.ConfigDict, *, model: str = "", image_size: int = 0,
              batch_size: int = 0, data_dir: str = "") -> ml_collections.ConfigDict:
  """A copy of `config` with the benchmark's overrides (an empty or 0 one keeps the config's),
  checked by the config schema."""
  config = config.copy_and_resolve_references()
  # The peers train the study's Dense(1) with MSE; so does ageflax here, for a like comparison.
  config.model.head, config.train.loss, config.train.label_sigma = "relu", "l2", 0.0
  if model:
    config.model.name = model
  if image_size:
    config.data.image_size = image_size
  if batch_size:
    config.train.batch_size = batch_size
  if data_dir:
    config.data.dir = data_dir
  schema.check(config)
  return config


def configure_settings(config: ml_collections.ConfigDict, names: list[str],
                       data_dir: str = "") -> dict[str, ml_collections.ConfigDict]:
  """`configure`d copies of `config`, one per name of `SETTINGS`; the rest is the config's."""
  unknown = set(names) - set(SETTINGS)
  if unknown:
    raise ConfigError(f"--settings: unknown {sorted(unknown)}; choose from {tuple(SETTINGS)}")
  return {name: configure(config, model=SETTINGS[name][0], image_size=SETTINGS[name][1],
                          batch_size=SETTINGS[name][2], data_dir=data_dir) for name in names}


def check_options(options: Options) -> None:
  """Raises ConfigError on an unknown section or peer, or a count that cannot work."""
  for field, known in (("sections", SECTIONS), ("peers", PEERS)):
    unknown = set(getattr(options, field)) - set(known)
    if unknown:
      raise ConfigError(f"--{field}: unknown {sorted(unknown)}; choose from {known}")
  for field in ("repeats", "steps", "warmup_steps", "pipeline_batches", "synthetic_faces",
                "matmul_size"):
    if getattr(options, field) < 1:
      raise ConfigError(f"--{field} must be at least 1, not {getattr(options, field)}")


def run(config: ml_collections.ConfigDict, options: Options, setting: str = "") -> Report:
  """Measures the sections of `options` for `config` (see `configure`); returns the report.

  `setting`, the name of one of `SETTINGS`, heads the report's title.
  """
  check_options(options)
  config = config.copy_and_resolve_references()
  mesh = sharding.create_mesh()
  sharding.check_batch_size(config.train.batch_size, mesh, "train.batch_size")
  report = Report(_settings(config, options, mesh, setting))
  wanted = set(options.sections)
  with tempfile.TemporaryDirectory(prefix="ageflax-benchmark-") as scratch:
    data = None
    if wanted & {"input_pipeline", "end_to_end"}:
      data = sections.prepare_data(report, config, options, scratch)
    if data is not None and "input_pipeline" in wanted:
      sections.input_pipeline_section(report, config, options, data)
    if wanted & {"train_step", "end_to_end", "utilisation"}:
      _step_sections(report, config, options, mesh, data)
  return report


def _step_sections(report, config, options, mesh, data) -> None:
  host_batch = synthetic_batch(config.train.batch_size, config.data.image_size, config.seed)
  batch = sharding.global_batch(host_batch, mesh, config.train.batch_size)
  summaries.log("compiling the ageflax train step")
  step = compile_ageflax_step(config, mesh, batch)  # as configured: the end-to-end one
  step.run(batch, options.warmup_steps)
  peers = create_peers(config, options, host_batch, report) if "peers" in options.sections else {}
  if "train_step" in options.sections:
    plain, augmenting = _plain_and_augmenting_steps(report, config, options, mesh, batch, step)
    sections.train_step_section(report, options, plain, peers, batch, augmenting,
                                sections.augmentation_name(config.data))
  if data is not None and "end_to_end" in options.sections:
    sections.end_to_end_section(report, config, options, data, step, peers)
  if "utilisation" in options.sections:
    sections.utilisation_section(report, config, options, step)


def _plain_and_augmenting_steps(report, config, options, mesh, batch, step):
  """The step without and with device augmentation; `step` (as configured) is one of them."""
  augment = AugmentSpec.from_config(config.data.augment)
  if not augment.is_on:
    report.note("device augmentation not timed: data.augment switches nothing on")
    return step, None
  on_device = augment.on_device
  summaries.log("compiling the ageflax train step %s device augmentation",
                "without" if on_device else "with")
  other_config = sections.with_placement(config, "host" if on_device else "device")
  other = compile_ageflax_step(other_config, mesh, batch)
  other.run(batch, options.warmup_steps)
  return (other, step) if on_device else (step, other)


def _settings(config: ml_collections.ConfigDict, options: Options, mesh, setting: str) -> dict:
  size = config.data.image_size
  title = (f"ageflax benchmark{f' [{setting}]' if setting else ''}: {config.model.name} at {size}x{size}, batch "
           f"{config.train.batch_size}, {config.model.dtype}, conv_impl "
           f"{config.model.conv_impl}; {sharding.describe(mesh)}; {cores()} CPU cores")
  return {"title": title, "setting": setting, "model": config.model.name, "image_size": size,
          "batch_size": config.train.batch_size, "dtype": config.model.dtype,
          "conv_impl": config.model.conv_impl, "devices": sharding.describe(mesh),
          "cpu_cores": cores(), **dataclasses.asdict(options), "versions": _versions()}


def _versions() -> dict[str, str]:
  versions = {}
  for name in ("jax", "jaxlib", "flax", "optax", "tensorflow", "tensorflow-cpu", "keras",
               "torch"):
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      continue
  return versions
