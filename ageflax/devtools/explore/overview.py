"""The data overview: the first look at a face-age folder, before any training.

`explore(data_config, out_dir)` reads the folder with the layout readers (`layouts`), opens
every usable photo once (header, full decode, content hash; a small thread pool) and
gathers the figures a person checks first: photo counts, missing values per column, age
statistics, the most frequent ages, age bands, image sizes, formats and modes, unreadable
files, exact duplicates, and every problem at once. It writes OUT/summary.json, a short
OUT/report.md, OUT/problems.csv, the age histogram and a grid of sample photos, and returns
the summary; `format_summary` turns it into the block `scripts/explore.py` prints.
The parts: `images` (reading each photo), `stats` (the figures), `plots` and `report`.
"""

import json
import os
import pathlib
import time
from collections.abc import Callable

import ml_collections
from absl import logging

from ageflax.core.errors import DataError
from ageflax.core.progress import Progress, log_line
from ageflax.data import label_rows, layouts
from ageflax.devtools.explore.images import inspect_images
from ageflax.devtools.explore.plots import plot_age_histogram, plot_samples
from ageflax.devtools.explore.report import (
  HISTOGRAM_FILE,
  PROBLEMS_FILE,
  REPORT_FILE,
  SAMPLES_FILE,
  SUMMARY_FILE,
  report_markdown,
)
from ageflax.devtools.explore.stats import all_problems, summarize


def _progress_reporter(total: int) -> Callable[[int], None]:
  """A progress bar on a terminal's stderr; elsewhere a log line every 10%."""
  head = "inspecting images: {done:,}/{total:,} ({percent:.0f}%)"
  return Progress(total, head, log_fn=log_line, every_percent=10, bar=True).update


def explore(data_config: ml_collections.ConfigDict, out_dir: str | os.PathLike, *,
            workers: int = 2, seed: int = 0, progress: bool = False) -> dict:
  """Surveys the data folder `data_config.dir` and writes the overview to `out_dir`.

  Args:
    data_config: the `data` config section (dir, format, csv.*, appa_real.*, max_age...).
    out_dir: where the plots, summary.json, problems.csv and report.md go (created).
    workers: threads that read, hash and decode the images.
    seed: chooses the sample photos.
    progress: show a progress line on stderr while the images are inspected.

  Returns:
    The summary written to summary.json.

  Raises:
    DataError: the folder, its layout or its labels file cannot be read at all (rows
      that are merely bad are listed as problems instead).
  """
  started = time.monotonic()
  directory, config = _resolved(data_config)
  out_dir = _output_folder(out_dir)
  logging.info("reading %s (%s layout)", directory, config.format)
  faces = layouts.read_faces(config)
  paths = [r.path for r in faces.records]
  on_progress = _progress_reporter(len(paths)) if progress and paths else None
  facts = inspect_images(paths, workers, on_progress)
  problems = all_problems(faces, facts)
  summary = summarize(faces, facts, problems, directory, config.format)
  readable = [r for r, f in zip(faces.records, facts, strict=True) if f.error is None]
  plot_age_histogram([r.age for r in readable], out_dir / HISTOGRAM_FILE,
                     directory.resolve().name)
  plot_samples(readable, out_dir / SAMPLES_FILE, seed)
  label_rows.write_problems([problem for _, problem in problems], out_dir / PROBLEMS_FILE)
  summary["outputs"] = {"histogram": HISTOGRAM_FILE, "samples": SAMPLES_FILE,
                        "summary": SUMMARY_FILE, "report": REPORT_FILE,
                        "problems": PROBLEMS_FILE}
  summary["seconds"] = round(time.monotonic() - started, 2)
  (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
  (out_dir / REPORT_FILE).write_text(report_markdown(summary))
  return summary


def _resolved(
    data_config: ml_collections.ConfigDict
) -> tuple[pathlib.Path, ml_collections.ConfigDict]:
  """The data folder and a copy of the config whose format is told from the files if 'auto'."""
  if not data_config.dir:
    raise DataError("no data folder given")
  directory = pathlib.Path(data_config.dir)
  if not directory.is_dir():
    raise DataError(f"data directory {directory} does not exist")
  config = data_config.copy_and_resolve_references()
  if config.format == "auto":
    config.format = layouts.detect_format(directory)
  return directory, config


def _output_folder(out_dir: str | os.PathLike) -> pathlib.Path:
  out_dir = pathlib.Path(out_dir)
  try:
    out_dir.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise DataError(f"cannot create the output folder {out_dir} ({e.strerror})") from None
  return out_dir
