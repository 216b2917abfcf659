"""Reading prepared TFDS records against reading the photo folder they were written from.

  python scripts/benchmark_records.py --data_dir=../shared/data/faces --records_dir=/tmp/rec

Writes the records first when --records_dir holds none (timed separately). Then, in
turns, times the two ways a run reads its photos: `prepare` (the folder: check every
row and decode every photo once into the in-memory cache; the records: check their files
and open them, no photo read) and the training stream read by index (each step reads
its photos, from the folder's files with the cache off or from the records, decodes them
in one call and augments them). Prints images/s, the median of --repeats rounds with
min-max, and `ratio ... records/folder` lines.
"""

import statistics
import time

from absl import flags
from ml_collections import config_flags

from ageflax.cli import common
from ageflax.cli import flags as shared_flags
from ageflax.config import schema
from ageflax.data import pipeline, tfds_records
from ageflax.devtools.bench import sections

_CONFIG = config_flags.DEFINE_config_file(
    "config", common.experiment_file("cpu.py"),
    "Config whose data section (image size, augmentation, threads) is used.")
_DATA_DIR = shared_flags.define_data_dir("Photo folder (any layout).", required=True)
_RECORDS_DIR = flags.DEFINE_string("records_dir", None, "Records written from --data_dir.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed rounds of each measurement.")
_STREAM_STEPS = flags.DEFINE_integer("stream_steps", 40, "Batches per training-stream round.")
flags.mark_flags_as_required(["records_dir"])


def _records_dir(config) -> str:
  if pipeline.holds_records(_RECORDS_DIR.value):
    return _RECORDS_DIR.value
  started = time.perf_counter()
  builder = tfds_records.write_records(config.data, _DATA_DIR.value, _RECORDS_DIR.value,
                                       "benchmark")
  seconds = time.perf_counter() - started
  count = sum(s["count"] for s in builder.info.metadata["splits"].values())
  print(f"write records once: {count:,} photos in {seconds:.0f}s ({count / seconds:.0f} img/s)")
  return str(builder.data_dir)


def _data_config(config, source: str, directory: str, cache: str):
  data = config.data.copy_and_resolve_references()
  # Streamed, check headers only up front: only the stream is timed then.
  data.update(source=source, dir=directory, cache=cache, verify_images=False)
  return data


def _time_prepare(data) -> tuple[float, int]:
  started = time.perf_counter()
  prepared = pipeline.prepare(data, problems_path=None)
  return time.perf_counter() - started, len(prepared.store)


def _summary(values: list[float]) -> str:
  return f"{statistics.median(values):8.0f} img/s  (min {min(values):.0f}, max {max(values):.0f})"


@common.exit_on_user_error
def main(argv: list[str]) -> None:
  common.refuse_arguments(argv)
  config = _CONFIG.value
  schema.check(config)
  records_dir = _records_dir(config)
  sources = {"folder": ("folder", _DATA_DIR.value), "records": ("tfds", records_dir)}
  prepare = {name: [] for name in sources}
  stream = {name: [] for name in sources}
  for _ in range(_REPEATS.value):
    for name, (source, directory) in sources.items():  # in turns: the machine drifts
      seconds, count = _time_prepare(_data_config(config, source, directory, "memory"))
      prepare[name].append(count / seconds)
      stream[name].append(sections.training_stream_rate(
          _data_config(config, source, directory, "none"), config, _STREAM_STEPS.value))
  size = config.data.image_size
  print(f"{count:,} photos at {size}x{size}, batch {config.train.batch_size}, "
        f"{_REPEATS.value} rounds")
  for name in sources:
    what = "check + decode all to the cache" if name == "folder" else "check + open, no decode"
    print(f"prepare ({what}), {name:7s}: {_summary(prepare[name])}")
  for name in sources:
    print(f"training stream (read by index + decode per batch + augment), {name:7s}: "
          f"{_summary(stream[name])}")
  for label, values in (("prepare", prepare), ("stream", stream)):
    ratio = statistics.median(values["records"]) / statistics.median(values["folder"])
    print(f"ratio {label} records/folder: {ratio:.2f}")



def run() -> None:
  """The console entry point: parses the flags and runs main."""
  common.run(main, __name__)
