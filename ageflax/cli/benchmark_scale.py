"""What a training run costs as the records grow: memory, start-up time and images/s.

  python scripts/benchmark_scale.py --output_dir=/tmp/scale [--sizes=10000,300000]

For each size N, writes N synthetic faces at --image_size as prepared records (copies of
--distinct_faces drawn faces under new names, hard-linked), then runs `train.py` on them
for --steps steps in a subprocess and prints its peak resident memory, the time from its
start to its first step (imports, opening the records, compiling included) and the
images/s of the steps after the first. With records read by index, memory and start-up
should not grow with N. Last, the host side's ceiling: one host's training stream (read by
index, decode, resize to --ceiling_image_size, batch; augmentation on the device, so no
step is run) on records of --distinct_faces photos drawn at that size, in images/s and per
core: what one node's cores can feed its accelerators.
"""

import csv
import os
import pathlib
import re
import subprocess
import sys
import time

from absl import flags
from ml_collections import config_flags

from ageflax.cli import common
from ageflax.cli import flags as shared_flags
from ageflax.config import schema
from ageflax.data import pipeline, tfds_records
from ageflax.devtools.bench import sections
from ageflax.devtools.bench.report import cores
from ageflax.devtools.synthetic import portraits

_CONFIG = config_flags.DEFINE_config_file(
    "config", common.experiment_file("cpu.py"), "Config the benchmark runs train with.")
_OUTPUT_DIR = shared_flags.define_output_dir("Scratch folder: faces, records, run folders.",
                                             required=True)
_SIZES = flags.DEFINE_list("sizes", ["10000", "300000"], "Photos in each set of records.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 64, "Side of the faces and of training.")
_STEPS = flags.DEFINE_integer("steps", 50, "Training steps of each run.")
_DISTINCT = flags.DEFINE_integer("distinct_faces", 500, "Faces drawn; the rest are copies.")
_VALIDATION_FRACTION = flags.DEFINE_float(
    "validation_fraction", 0.01, "Share held out (the run validates once, after its last step).")
_CEILING_SIZE = flags.DEFINE_integer("ceiling_image_size", 224, "Image size of the host-side "
                                     "ceiling (0: not measured).", lower_bound=0)
_CEILING_BATCH = flags.DEFINE_integer("ceiling_batch_size", 256, "Global batch of the ceiling.",
                                      lower_bound=1)
_CEILING_STEPS = flags.DEFINE_integer("ceiling_steps", 20, "Batches timed for the ceiling.",
                                      lower_bound=1)
_STEP_LINE = re.compile(r"\bstep (\d+)/\d+")


def _drawn(output_dir: pathlib.Path, image_size: int) -> pathlib.Path:
  """--distinct_faces synthetic faces drawn at `image_size`, once."""
  drawn = output_dir / f"drawn_{image_size}"
  if not (drawn / "labels.csv").exists():
    portraits.write_synthetic_faces(drawn, _DISTINCT.value, 0, image_size)
  return drawn


def _faces(size: int, output_dir: pathlib.Path) -> pathlib.Path:
  """A labels_csv folder of `size` photos: the drawn faces, hard-linked under new names."""
  drawn = _drawn(output_dir, _IMAGE_SIZE.value)
  with open(drawn / "labels.csv", newline="") as f:
    originals = [(row["file_name"], row["real_age"]) for row in csv.DictReader(f)]
  folder = output_dir / f"faces_{size}"
  (folder / "final_files").mkdir(parents=True, exist_ok=True)
  rows = []
  for index in range(size):
    name, age = originals[index % len(originals)]
    copy = folder / "final_files" / f"{index:07d}.jpg"
    if not copy.exists():
      os.link(drawn / "final_files" / name, copy)
    rows.append((copy.name, age))
  with open(folder / "labels.csv", "w", newline="") as f:
    csv.writer(f).writerows([("file_name", "real_age"), *rows])
  return folder


def _records(folder: pathlib.Path, records_dir: pathlib.Path, data) -> tuple[str, float | None]:
  """The records of a photo folder and the seconds writing them took (None: already there)."""
  if pipeline.holds_records(str(records_dir)):
    return str(tfds_records.load_builder(str(records_dir)).data_dir), None
  started = time.perf_counter()
  data = data.copy_and_resolve_references()
  data.update(dir=str(folder), format="labels_csv", validation_fraction=_VALIDATION_FRACTION.value)
  builder = tfds_records.write_records(data, str(folder), str(records_dir), "scale")
  return str(builder.data_dir), time.perf_counter() - started


def _train(records_dir: str, workdir: pathlib.Path) -> dict[str, float]:
  """Runs train.py on the records; its peak RSS, seconds to the first step, images/s."""
  config_flag = flags.FLAGS["config"]
  overrides = {**config_flags.get_override_values(config_flag), "data.source": "tfds",
               "data.dir": records_dir, "data.image_size": _IMAGE_SIZE.value,
               "train.num_steps": _STEPS.value, "train.log_every_steps": 1}
  command = [sys.executable, "train.py", f"--config={config_flags.get_config_filename(config_flag)}",
             f"--workdir={workdir}", *(f"--config.{name}={value}" for name, value in overrides.items())]
  started = time.perf_counter()
  process = subprocess.Popen(command, cwd=pathlib.Path(__file__).resolve().parents[2],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  step_times, log = {}, []
  for line in process.stderr:
    log.append(line)
    match = _STEP_LINE.search(line)
    if match:
      step_times.setdefault(int(match.group(1)), time.perf_counter() - started)
  _, status, usage = os.wait4(process.pid, 0)
  process.returncode = os.waitstatus_to_exitcode(status)
  if process.returncode or 1 not in step_times or _STEPS.value not in step_times:
    raise SystemExit(f"error: train.py failed on {records_dir}:\n{''.join(log[-20:])}")
  batch = _CONFIG.value.train.batch_size
  seconds = step_times[_STEPS.value] - step_times[1]
  return {"peak_rss_mib": usage.ru_maxrss / 1024, "first_step_s": step_times[1],
          "images_per_s": (_STEPS.value - 1) * batch / seconds}


@common.exit_on_user_error
def main(argv: list[str]) -> None:
  common.refuse_arguments(argv)
  config = _CONFIG.value
  schema.check(config)
  output_dir = pathlib.Path(_OUTPUT_DIR.value)
  output_dir.mkdir(parents=True, exist_ok=True)
  print(f"{'photos':>9} {'write s':>8} {'peak RSS MiB':>13} {'first step s':>13} {'img/s':>7}",
        flush=True)
  for size in (int(value) for value in _SIZES.value):
    records_dir, write_seconds = _records(_faces(size, output_dir),
                                          output_dir / f"records_{size}", config.data)
    figures = _train(records_dir, output_dir / f"run_{size}_{time.time_ns()}")
    written = "reused" if write_seconds is None else f"{write_seconds:.0f}"
    print(f"{size:>9,} {written:>8} {figures['peak_rss_mib']:>13.0f} "
          f"{figures['first_step_s']:>13.1f} {figures['images_per_s']:>7.0f}", flush=True)
  if _CEILING_SIZE.value:
    _print_host_ceiling(config, output_dir)


def _print_host_ceiling(config, output_dir: pathlib.Path) -> None:
  """One host's training stream at --ceiling_image_size with augmentation on the device."""
  size = _CEILING_SIZE.value
  records_dir, _ = _records(_drawn(output_dir, size), output_dir / f"records_ceiling_{size}",
                            config.data)
  config = config.copy_and_resolve_references()
  config.data.update(source="tfds", dir=records_dir, image_size=size)
  config.data.augment.placement = "device"
  config.train.batch_size = _CEILING_BATCH.value
  rate = sections.training_stream_rate(config.data, config, _CEILING_STEPS.value)
  print(f"host ceiling at {size}x{size}, batch {_CEILING_BATCH.value}, augmentation on the "
        f"device: {rate:.0f} img/s on {cores()} cores, {rate / cores():.0f} per core", flush=True)


def run() -> None:
  """The console entry point: parses the flags and runs main."""
  common.run(main, __name__)
