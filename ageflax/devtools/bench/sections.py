"""The benchmark's sections: input pipeline, train step, end to end and utilisation.

Each measures its contenders in interleaved rounds and adds figures and ratio lines to the
report. TensorFlow is imported only by the sections that read data.
"""

import os
import time
from collections.abc import Callable, Iterator

import jax
import ml_collections

from ageflax.data.augment_spec import AugmentSpec
from ageflax.devtools.bench.peers import Peer, plain_dataset
from ageflax.devtools.bench.report import Figure, Options, Report, cores, per_core
from ageflax.devtools.bench.timing import (
  PIPELINE_WARMUP_BATCHES,
  AgeflaxStep,
  interleaved_rates,
  matmul_rate,
  pipeline_rates,
)
from ageflax.devtools.synthetic import portraits
from ageflax.model import architectures

# Side of the synthetic photos written when no data folder is given (UTKFace's size).
SYNTHETIC_PHOTO_SIZE = 200


def prepare_data(report: Report, config: ml_collections.ConfigDict, options: Options,
                 scratch: str):
  """`pipeline.prepare` of the data folder, or of synthetic faces written to `scratch`.

  Returns None, with a note, where TensorFlow is absent.
  """
  try:
    from ageflax.data import pipeline
  except ImportError as e:
    report.note(f"input_pipeline and end_to_end skipped: {e}")
    return None
  source = config.data.dir
  if not source:
    config.data.dir = os.path.join(scratch, "faces")
    portraits.write_synthetic_faces(config.data.dir, options.synthetic_faces, seed=config.seed,
                                    image_size=SYNTHETIC_PHOTO_SIZE)
    source = (f"{options.synthetic_faces} synthetic {SYNTHETIC_PHOTO_SIZE}x"
              f"{SYNTHETIC_PHOTO_SIZE} faces (ageflax.synthetic, temp dir)")
  started = time.perf_counter()
  data = pipeline.prepare(config.data, problems_path=None)
  seconds = time.perf_counter() - started
  report.settings["data"] = (f"{source}: {len(data.store)} photos, "
                            f"{len(data.indices('train'))} train")
  if "input_pipeline" in options.sections:
    figure = Figure((len(data.store) / seconds,))
    report.add("input_pipeline", "prepare", "ageflax prepare: decode+resize each photo once",
               figure, per_core(figure), per_core=figure.scaled(1 / cores(), "images/s/core")
               .to_dict())
  return data


def with_placement(config: ml_collections.ConfigDict, placement: str) -> ml_collections.ConfigDict:
  """A copy of `config` that augments on the 'host' (tf.data) or the 'device' (train step)."""
  config = config.copy_and_resolve_references()
  config.data.augment.placement = placement
  return config


def augmentation_name(config: ml_collections.ConfigDict) -> str:
  """What the `data` section's augmentation does, e.g. 'flip/rotate/shift/zoom'."""
  return AugmentSpec.from_config(config.augment).describe()


def input_pipeline_section(report: Report, config: ml_collections.ConfigDict, options: Options,
                           data) -> None:
  """Images/s of the training streams alone, and the ratios ageflax/plain.

  ageflax's stream augmenting on the host, the same reading and decoding each batch's photos
  from their files when the config caches them (a folder too large for the cache), ageflax's
  stream that leaves augmentation to the train step
  (placement 'device': the store and batching alone), and the plain recipe.
  """
  from ageflax.data import image_store, pipeline

  batch_size, train = config.train.batch_size, data.indices("train")
  rows = pipeline.HostRows(0, batch_size)
  num_steps = PIPELINE_WARMUP_BATCHES + options.pipeline_batches

  def ageflax_stream(store, placement):
    data_config = with_placement(config, placement).data
    return lambda: pipeline.as_numpy(pipeline.train_dataset(
        store, train, batch_size, rows, config.seed, 0, num_steps, data_config), config.data.dir)

  augmentation = augmentation_name(config.data)
  cached = isinstance(data.store, image_store.ImageStore)
  source = "cache" if cached else "read+decode+resize"
  pipelines = {"ageflax": ageflax_stream(data.store, "host")}
  whats = {"ageflax": f"ageflax: {source} + {augmentation}"}
  if cached:
    uncached = config.data.copy_and_resolve_references()
    uncached.cache = "none"
    pipelines["ageflax_uncached"] = ageflax_stream(
        pipeline.prepare(uncached, problems_path=None).store, "host")
    whats["ageflax_uncached"] = f"ageflax: files read by index+decode+resize + {augmentation}"
  pipelines["ageflax_device_augment"] = ageflax_stream(data.store, "device")
  whats["ageflax_device_augment"] = f"ageflax: {source} only (augment on device)"
  paths = _train_paths(report, data)
  if paths:
    pipelines["plain"] = lambda: plain_dataset(paths, data.store.ages[train], config.data,
                                               batch_size).as_numpy_iterator()
    whats["plain"] = "plain tf.data: decode+resize + flip"
  figures = pipeline_rates(pipelines, options.pipeline_batches, options.repeats, batch_size)
  _add_pipeline_figures(report, figures, whats)


def _add_pipeline_figures(report: Report, figures: dict[str, Figure],
                          whats: dict[str, str]) -> None:
  """Each stream's images/s (also per core), and the ratios of ageflax's to the plain one."""
  for name, figure in figures.items():
    report.add("input_pipeline", name, whats[name], figure, per_core(figure),
               per_core=figure.scaled(1 / cores(), "images/s/core").to_dict())
  for name in ("ageflax", "ageflax_uncached", "ageflax_device_augment"):
    report.add_ratio("input_pipeline", name, "plain")


def train_step_section(report: Report, options: Options, step: AgeflaxStep, peers: dict[str, Peer],
                       batch: dict[str, jax.Array], augmenting: AgeflaxStep | None = None,
                       augmentation: str = "") -> None:
  """Images/s of each framework's train step on a fixed batch, in interleaved rounds.

  `step` trains on the batch as it is; `augmenting`, when given, augments it first
  (`augmentation` names what it does), so the cost of augmenting on the device shows.
  """
  runners = {"ageflax": lambda num_steps: step.run(batch, num_steps)}
  if augmenting is not None:
    runners["ageflax_device_augment"] = lambda num_steps: augmenting.run(batch, num_steps)
  runners.update({name: peer.run for name, peer in peers.items()})
  figures = interleaved_rates(runners, options.steps, options.repeats, step.batch_size)
  report.add("train_step", "ageflax", "ageflax jitted step, device-resident batch",
             figures["ageflax"], f"compile {step.compile_seconds:.1f} s",
             compile_seconds=step.compile_seconds)
  if augmenting is not None:
    report.add("train_step", "ageflax_device_augment",
               f"ageflax jitted step + {augmentation} on device", figures["ageflax_device_augment"],
               f"compile {augmenting.compile_seconds:.1f} s",
               compile_seconds=augmenting.compile_seconds)
    report.add_ratio("train_step", "ageflax_device_augment", "ageflax")
  for name, peer in peers.items():
    report.add("train_step", name, peer.description, figures[name],
               f"first step {peer.first_step_seconds:.1f} s",
               first_step_seconds=peer.first_step_seconds)
    report.add_ratio("train_step", "ageflax", name)


def end_to_end_section(report: Report, config: ml_collections.ConfigDict, options: Options,
                       data, step: AgeflaxStep, peers: dict[str, Peer]) -> None:
  """Images/s of train steps fed from the data folder, in interleaved rounds after warm-up.

  ageflax is fed by its own training stream; the peers by the plain tf.data recipe.
  """
  from ageflax.data import pipeline

  batch_size, train = config.train.batch_size, data.indices("train")
  total_steps = options.warmup_steps + options.repeats * options.steps
  stream = pipeline.as_numpy(pipeline.train_dataset(
      data.store, train, batch_size, pipeline.HostRows(0, batch_size), config.seed, 0,
      total_steps, config.data), config.data.dir)
  runners = {"ageflax": lambda num_steps: step.run_stream(stream, num_steps)}
  whats = {"ageflax": "ageflax step fed by its tf.data stream"}
  paths = _train_paths(report, data) if peers else None
  for name, peer in (peers if paths else {}).items():
    plain = plain_dataset(paths, data.store.ages[train], config.data, batch_size)
    batches = iter(plain) if name == "keras" else plain.as_numpy_iterator()
    runners[name] = _stream_runner(peer, batches)
    whats[name] = f"{name} step fed by plain tf.data (decode+resize+flip)"
  for runner in runners.values():
    runner(options.warmup_steps)
  figures = interleaved_rates(runners, options.steps, options.repeats, batch_size)
  for name, figure in figures.items():
    report.add("end_to_end", name, whats[name], figure)
    if name != "ageflax":
      report.add_ratio("end_to_end", "ageflax", name)


def _train_paths(report: Report, data) -> list[str] | None:
  """The training photos' files for the plain recipe; None, with a note, without files."""
  if len(data.store.paths) != len(data.store):
    report.note("the plain recipe reads image files; prepared records hold bytes: skipped")
    return None
  return [data.store.paths[i] for i in data.indices("train")]


def _stream_runner(peer, batches: Iterator) -> Callable[[int], None]:
  return lambda num_steps: peer.run_stream(batches, num_steps)


def utilisation_section(report: Report, config: ml_collections.ConfigDict, options: Options,
                        step: AgeflaxStep) -> None:
  """FLOP/s achieved by every measured train step against a matrix product's, as a fraction.

  Every framework is credited with the same FLOPs per image: the compiled ageflax step's
  cost analysis where the backend reports it, else the known ResNet count.
  """
  size, dtype = options.matmul_size, config.model.dtype
  peak = matmul_rate(size, dtype, options.repeats).scaled(1e-9, "GFLOP/s")
  report.add("utilisation", "matmul", f"{dtype} {size}x{size} matrix product (jnp)", peak)
  known = architectures.train_flops_per_image(config.model.name, config.data.image_size)
  per_image = step.flops_per_image or known
  source = "cost_analysis" if step.flops_per_image else "known ResNet count"
  for section in ("train_step", "end_to_end"):
    for name, entry in list(report.sections.get(section, {}).items()):
      achieved = Figure(tuple(entry["values"])).scaled(per_image * 1e-9, "GFLOP/s")
      fraction = achieved.median / peak.median
      report.add("utilisation", f"{section} {name}", f"{name} {section.replace('_', ' ')}",
                 achieved, f"{fraction:.3f} of matmul", fraction=fraction,
                 flops_per_image=per_image, flops_source=source,
                 known_flops_per_image=known)


def training_stream_rate(data: ml_collections.ConfigDict, config: ml_collections.ConfigDict,
                         steps: int) -> float:
  """Images/s of one host's training stream of `data` (read, decode, augment on the host
  unless `data.augment.placement='device'`, batch), after its first batch; no step runs."""
  from ageflax.data import pipeline

  prepared = pipeline.prepare(data, problems_path=None)
  batch = config.train.batch_size
  stream = pipeline.as_numpy(prepared.train_dataset(batch, pipeline.HostRows(0, batch),
                                                    config.seed, 0, steps + 1, data), "bench")
  next(stream)
  started = time.perf_counter()
  count = sum(len(b["age"]) for b in stream)
  return count / (time.perf_counter() - started)

