"""The data overview: the first look at a face-age folder, before any training.

`explore(data_config, out_dir)` reads the folder with the layout readers (`layouts`), opens
every usable photo once (header, full decode, content hash; a small thread pool) and
gathers the figures a person checks first: photo counts, missing values per column, age
statistics, the most frequent ages, age bands, image sizes, formats and modes, unreadable
files, exact duplicates, and every problem at once. It writes OUT/summary.json, a short
OUT/report.md, OUT/problems.csv, the age histogram and a grid of sample photos, and returns
the summary; `format_summary` turns it into the block `scripts/explore.py` prints.
"""

import collections
import concurrent.futures
import csv
import dataclasses
import hashlib
import io
import json
import os
import pathlib
import sys
import textwrap
import time
from collections.abc import Callable, Sequence

import ml_collections
import numpy as np
from absl import logging
from matplotlib import ticker
from matplotlib.figure import Figure
from PIL import Image, ImageOps

from ageflax import age_bands as age_bands_lib
from ageflax import layouts, records
from ageflax.errors import DataError
from ageflax.records import LabelledFaces, Problem, Record

SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.md"
PROBLEMS_FILE = "problems.csv"
HISTOGRAM_FILE = "age_histogram.png"
SAMPLES_FILE = "samples.png"
TOP_AGES = 10
TOP_SIZES = 10
SAMPLE_ROWS, SAMPLE_COLUMNS = 3, 5
# Terminal and report lists stop here; summary.json and problems.csv hold them all.
SHOWN_PROBLEMS = 20
SHOWN_DUPLICATE_GROUPS = 5
_INDENT = " " * 18  # where the values of the terminal summary start


@dataclasses.dataclass(frozen=True)
class ImageFacts:
  """What one image file holds, read once: header fields, a decode verdict and a hash."""

  num_bytes: int = 0
  digest: str = ""
  format: str = ""
  width: int = 0
  height: int = 0
  mode: str = ""
  channels: int = 0
  error: str | None = None  # Why the file cannot be read or decoded; None if it can.


def inspect_image(path: str | os.PathLike) -> ImageFacts:
  """Reads one file, hashes its bytes and decodes it fully with Pillow."""
  try:
    with open(path, "rb") as f:
      content = f.read()
  except OSError as e:
    return ImageFacts(error=f"cannot read file ({e.strerror})")
  digest = hashlib.sha256(content).hexdigest()
  try:
    with Image.open(io.BytesIO(content)) as image:
      header = dict(format=image.format or "", width=image.width, height=image.height,
                    mode=image.mode, channels=len(image.getbands()))
      image.load()  # the header alone says nothing about the compressed data behind it
  except Exception as e:  # Pillow raises many types; any decoder failure makes it unreadable.
    reason = " ".join(str(e).split())[:200] or type(e).__name__
    return ImageFacts(len(content), digest, error=f"cannot decode image ({reason})")
  return ImageFacts(len(content), digest, **header)


def inspect_images(paths: Sequence[str], workers: int = 2,
                   on_progress: Callable[[int], None] | None = None) -> list[ImageFacts]:
  """`inspect_image` over many files on `workers` threads (Pillow and hashlib drop the GIL)."""
  facts = []
  with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
    for facts_of_one in pool.map(inspect_image, paths):
      facts.append(facts_of_one)
      if on_progress:
        on_progress(len(facts))
  return facts


class ProgressLine:
  """A progress line on stderr: redrawn in place on a terminal, every 10% in a log."""

  def __init__(self, total: int, label: str):
    self._total, self._label = total, label
    self._start = self._last_draw = time.monotonic()
    self._last_tenth = 0
    self._interactive = sys.stderr.isatty()

  def __call__(self, done: int) -> None:
    now = time.monotonic()
    elapsed = now - self._start
    if self._interactive:
      if now - self._last_draw >= 0.2 or done == self._total:
        self._last_draw = now
        sys.stderr.write(f"\r{self._label}: {done:,}/{self._total:,} "
                         f"({100 * done / self._total:.0f}%) {elapsed:.0f} s")
        if done == self._total:
          sys.stderr.write("\n")
        sys.stderr.flush()
    elif (tenth := 10 * done // self._total) > self._last_tenth:
      self._last_tenth = tenth
      logging.info("%s: %d/%d (%d%%) %.0f s", self._label, done, self._total, 10 * tenth,
                   elapsed)


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
  on_progress = ProgressLine(len(paths), "inspecting images") if progress and paths else None
  facts = inspect_images(paths, workers, on_progress)
  problems = all_problems(faces, facts)
  summary = summarize(faces, facts, problems, directory, config.format)
  readable = [r for r, f in zip(faces.records, facts, strict=True) if f.error is None]
  plot_age_histogram([r.age for r in readable], out_dir / HISTOGRAM_FILE,
                     directory.resolve().name)
  plot_samples(readable, out_dir / SAMPLES_FILE, seed)
  records.write_problems([problem for _, problem in problems], out_dir / PROBLEMS_FILE)
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


def summarize(faces: LabelledFaces, facts: Sequence[ImageFacts],
              problems: Sequence[tuple[str, Problem]], directory: pathlib.Path,
              data_format: str) -> dict:
  """Every figure of the overview, JSON-ready, from the reader's output and the image facts."""
  readable = [(r, f) for r, f in zip(faces.records, facts, strict=True) if f.error is None]
  ages = np.array([r.age for r, _ in readable], np.float64)
  return {
      "directory": str(directory),
      "format": data_format,
      "source": faces.source,
      "photos": {"rows_listed": len(faces.records) + len(faces.problems),
                 "usable": len(readable),
                 "set_aside": len(faces.records) + len(faces.problems) - len(readable)},
      "missing_values": missing_values(faces, directory, data_format),
      "ages": age_statistics(ages),
      "top_ages": most_frequent_ages(ages),
      "age_bands": age_bands(ages),
      "images": image_statistics([f for _, f in readable], [r for r, _ in readable]),
      "unreadable": [{"file_name": r.file_name, "reason": f.error}
                     for r, f in zip(faces.records, facts, strict=True) if f.error],
      "duplicates": duplicate_groups(faces.records, facts),
      "problems": {"count": len(problems),
                   "by_kind": dict(collections.Counter(kind for kind, _ in problems)),
                   "list": [dict(dataclasses.asdict(p), kind=kind, text=p.describe())
                            for kind, p in problems]},
  }


def all_problems(faces: LabelledFaces, facts: Sequence[ImageFacts]) -> list[tuple[str, Problem]]:
  """Every problem as (kind, problem): the reader's rows set aside ('reader'), images no
  decoder reads ('unreadable') and extra copies of the same bytes ('duplicate_content')."""
  problems = [("reader", p) for p in faces.problems]
  problems += [("unreadable", _problem(r, f.error))
               for r, f in zip(faces.records, facts, strict=True) if f.error]
  for first, *copies in _duplicate_record_groups(faces.records, facts):
    problems += [("duplicate_content", _problem(r, _copy_reason(r, first))) for r in copies]
  return problems


def _copy_reason(copy: Record, first: Record) -> str:
  ages = "same age" if copy.age == first.age else (
      f"age {_plain(copy.age)} here, {_plain(first.age)} there")
  return f"same bytes as {first.file_name} ({ages})"


def _problem(record: Record, reason: str) -> Problem:
  # Layouts without a labels file number rows by listing position, which names nothing.
  return Problem(record.row if record.origin else 0, record.file_name, reason, record.origin)


def _duplicate_record_groups(faces_records: Sequence[Record],
                             facts: Sequence[ImageFacts]) -> list[list[Record]]:
  """Readable records whose files hold the same bytes, in groups of two or more."""
  by_digest = collections.defaultdict(list)
  for record, facts_of_one in zip(faces_records, facts, strict=True):
    if facts_of_one.error is None:
      by_digest[facts_of_one.digest].append(record)
  return [group for group in by_digest.values() if len(group) > 1]


def duplicate_groups(faces_records: Sequence[Record], facts: Sequence[ImageFacts]) -> dict:
  """Groups of files with identical contents: the file names and ages of each group."""
  groups = _duplicate_record_groups(faces_records, facts)
  return {"groups": len(groups), "extra_copies": sum(len(g) - 1 for g in groups),
          "groups_with_different_ages": sum(1 for g in groups if len({r.age for r in g}) > 1),
          "list": [[{"file_name": r.file_name, "age": _plain(r.age)} for r in group]
                   for group in groups]}


def missing_values(faces: LabelledFaces, directory: pathlib.Path, data_format: str) -> dict:
  """Empty cells per column of each labels CSV, or missing fields of UTKFace file names.

  Returns:
    {table: {"rows": data rows, "missing": {column: empty cells}}}, one table per labels
    file (APPA-REAL has one per split) or one named 'file names' for UTKFace.
  """
  if data_format == "utkface":
    names = [r.file_name for r in faces.records] + [p.file_name for p in faces.problems]
    return {"file names": _missing_name_fields(names)}
  if data_format == "appa_real":
    origins = sorted({r.origin for r in (*faces.records, *faces.problems) if r.origin})
    label_files = [directory / origin for origin in origins]
  else:
    label_files = [pathlib.Path(faces.source)]
  return {path.name: _missing_cells(path) for path in label_files}


def _missing_cells(csv_path: pathlib.Path) -> dict:
  """Counts the empty (or absent) cells of each column over the non-blank data rows."""
  with open(csv_path, encoding="utf-8-sig", newline="") as f:
    reader = csv.reader(f)
    columns = [name.strip() for name in next(reader, [])]
    missing = dict.fromkeys(columns, 0)
    rows = 0
    for values in reader:
      if not any(v.strip() for v in values):
        continue
      rows += 1
      padded = values + [""] * (len(columns) - len(values))
      for column, value in zip(columns, padded, strict=False):  # extra cells have no column
        missing[column] += not value.strip()
  return {"rows": rows, "missing": missing}


def _missing_name_fields(file_names: Sequence[str]) -> dict:
  """Missing AGE/GENDER/RACE/DATETIME fields over the JPEG names of a UTKFace folder.

  A short name keeps its date (the long number at the end) as DATETIME, so that
  `39_1_20170116174525125.jpg` counts as missing RACE, as it does in the real release.
  """
  fields = layouts.UTKFACE_FIELDS
  missing = dict.fromkeys(fields, 0)
  photos = [n.rsplit("/", 1)[-1] for n in file_names if n.lower().endswith((".jpg", ".jpeg"))]
  for name in photos:
    parts = name.split(".", 1)[0].split("_")
    if len(parts) < len(fields) and parts[-1].isdigit() and len(parts[-1]) >= 8:
      parts = parts[:-1] + [""] * (len(fields) - len(parts)) + parts[-1:]
    parts += [""] * (len(fields) - len(parts))
    for field, part in zip(fields, parts, strict=False):
      missing[field] += not part
  return {"rows": len(photos), "missing": missing}


def age_statistics(ages: np.ndarray) -> dict:
  """Count, min, mean, median, max and the sample standard deviation (as pandas reports)."""
  if not len(ages):
    return {"count": 0, "min": None, "mean": None, "median": None, "max": None, "std": None}
  return {"count": len(ages), "min": _plain(ages.min()), "mean": round(float(ages.mean()), 2),
          "median": _plain(np.median(ages)), "max": _plain(ages.max()),
          "std": round(float(ages.std(ddof=1)), 2) if len(ages) > 1 else 0.0}


def most_frequent_ages(ages: np.ndarray, top: int = TOP_AGES) -> list[dict]:
  """The `top` most frequent ages with their counts and shares; ties go to the younger age."""
  counts = collections.Counter(ages.tolist())
  ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top]
  return [{"age": _plain(age), "count": count, "share": _share(count, len(ages))}
          for age, count in ranked]


def age_bands(ages: np.ndarray) -> list[dict]:
  """Photos per age band (0-17, 18-24, ..., 65+), banded by the floor of the age."""
  counts = np.bincount(age_bands_lib.band_index(ages), minlength=len(age_bands_lib.AGE_BANDS))
  return [{"band": label, "count": int(count), "share": _share(int(count), len(ages))}
          for label, count in zip(age_bands_lib.LABELS, counts, strict=True)]


def image_statistics(facts: Sequence[ImageFacts], faces_records: Sequence[Record]) -> dict:
  """Sizes, formats, modes and channel counts of readable images, and their EXIF turns."""
  sizes = collections.Counter((f.width, f.height) for f in facts)
  widths = [f.width for f in facts] or [0]
  heights = [f.height for f in facts] or [0]
  return {
      "count": len(facts),
      "megabytes": round(sum(f.num_bytes for f in facts) / 1e6, 1),
      "distinct_sizes": len(sizes),
      "sizes": [{"width": w, "height": h, "count": n, "share": _share(n, len(facts))}
                for (w, h), n in sizes.most_common(TOP_SIZES)],
      "width": {"min": min(widths), "max": max(widths)},
      "height": {"min": min(heights), "max": max(heights)},
      "formats": dict(collections.Counter(f.format for f in facts).most_common()),
      "modes": dict(collections.Counter(f.mode for f in facts).most_common()),
      "channels": {str(c): n for c, n in collections.Counter(f.channels for f in facts)
                   .most_common()},
      "exif_rotated": sum(1 for r in faces_records if r.orientation != 1),
  }


def _plain(value: float) -> int | float:
  """An age as JSON shows it best: 30, not 30.0; 30.5 stays."""
  value = float(value)
  return int(value) if value.is_integer() else round(value, 2)


def _share(count: int, total: int) -> float:
  return round(count / total, 4) if total else 0.0


def plot_age_histogram(ages: Sequence[float], path: pathlib.Path, name: str) -> None:
  """One bar per year of age, shaded by band, band boundaries and shares marked."""
  years = np.floor(np.asarray(ages, np.float64)).astype(int)
  counts = np.bincount(years) if len(years) else np.zeros(1, int)
  figure = Figure(figsize=(13, 5.5), dpi=110, layout="constrained")
  axes = figure.add_subplot()
  band_of_year = age_bands_lib.band_index(np.arange(len(counts)))
  colours = ["#3b75af" if band % 2 == 0 else "#7fa9d6" for band in band_of_year]
  axes.bar(np.arange(len(counts)), counts, width=0.85, color=colours)
  top = max(counts.max(), 1) * 1.2  # headroom for the band labels
  axes.set_ylim(0, top)
  right_end = max(len(counts), 70)
  axes.set_xlim(-1, right_end)
  for label, first, last in age_bands_lib.AGE_BANDS:
    if first:
      axes.axvline(first - 0.5, color="#555555", linestyle="--", linewidth=1)
    in_band = int(np.count_nonzero((years >= first) & (years <= last)))
    centre = (first - 0.5 + min(last + 0.5, right_end)) / 2
    share = 100 * in_band / len(years) if len(years) else 0.0
    axes.text(centre, top * 0.985, f"{label}\n{in_band:,}\n{share:.1f}%", ha="center", va="top",
              fontsize=10)
  if len(years):
    median = float(np.median(ages))
    axes.axvline(median, ymax=0.82, color="#d62728", linewidth=1.5,
                 label=f"median age {median:g}")
    axes.legend(loc="center right", fontsize=10)
  axes.set_title(f"Age distribution: {len(years):,} photos in {name} "
                 "(one bar per year; dashed lines: age bands)", fontsize=13)
  axes.set_xlabel("Age (years)", fontsize=12)
  axes.set_ylabel("Number of photos", fontsize=12)
  axes.set_xticks(np.arange(0, right_end + 1, 5))
  axes.yaxis.set_major_locator(ticker.MaxNLocator(integer=True))  # photos come whole
  axes.tick_params(labelsize=10)
  axes.grid(axis="y", alpha=0.3)
  figure.savefig(path)


def plot_samples(readable: Sequence[Record], path: pathlib.Path, seed: int) -> None:
  """A 3x5 grid of photos drawn with `seed`, youngest first, each titled with its age."""
  count = min(SAMPLE_ROWS * SAMPLE_COLUMNS, len(readable))
  chosen = np.random.default_rng(seed).choice(len(readable), count, replace=False)
  samples = sorted((readable[i] for i in chosen), key=lambda r: (r.age, r.file_name))
  figure = Figure(figsize=(12, 8.6), dpi=110, layout="constrained")
  figure.suptitle(f"{count} sample photos (seed {seed}), with their ages", fontsize=14)
  grid = figure.subplots(SAMPLE_ROWS, SAMPLE_COLUMNS, squeeze=False)
  for index, axes in enumerate(grid.flat):
    axes.set_axis_off()
    if index >= count:
      continue
    record = samples[index]
    with Image.open(record.path) as image:
      axes.imshow(np.asarray(ImageOps.exif_transpose(image).convert("RGB")))
    axes.set_title(f"age {_plain(record.age)}", fontsize=13, fontweight="bold")
    axes.text(0.5, -0.02, record.file_name, transform=axes.transAxes, ha="center", va="top",
              fontsize=8, color="#555555")
  figure.savefig(path)


def report_markdown(summary: dict) -> str:
  """A short Markdown report of the summary, with the two plots embedded."""
  photos, ages, images = summary["photos"], summary["ages"], summary["images"]
  lines = [f"# Data overview: {summary['directory']}", "",
           f"Layout `{summary['format']}` ({summary['source']}); "
           f"made in {summary['seconds']:.1f} s.", "", "## Photos", "",
           _table(["rows listed", "usable", "set aside", "problems"],
                  [[f"{photos['rows_listed']:,}", f"{photos['usable']:,}",
                    f"{photos['set_aside']:,}", f"{summary['problems']['count']:,}"]]),
           "## Missing values", ""]
  for table, counts in summary["missing_values"].items():
    lines += [f"`{table}` ({counts['rows']:,} rows):", "",
              _table(list(counts["missing"]), [list(counts["missing"].values())])]
  lines += ["## Ages", "", _table(["min", "mean", "median", "max", "std"],
                                  [[ages[k] for k in ("min", "mean", "median", "max", "std")]]),
            f"![Age histogram]({HISTOGRAM_FILE})", "", "Most frequent ages:", "",
            _table(["age", "photos", "share"],
                   [[t["age"], f"{t['count']:,}", _percent(t["share"])]
                    for t in summary["top_ages"]]),
            "Age bands (by the floor of the age):", "",
            _table(["band", "photos", "share"],
                   [[b["band"], f"{b['count']:,}", _percent(b["share"])]
                    for b in summary["age_bands"]])]
  lines += ["## Images", "", _images_paragraph(images), "",
            _table(["width x height", "photos", "share"],
                   [[f"{s['width']}x{s['height']}", f"{s['count']:,}", _percent(s["share"])]
                    for s in images["sizes"]]),
            f"![Sample photos]({SAMPLES_FILE})", ""]
  return "\n".join(lines + _problem_sections(summary))


def _images_paragraph(images: dict) -> str:
  return (f"{images['count']:,} readable images, {images['megabytes']:,} MB; "
          f"{images['distinct_sizes']} distinct sizes, width {images['width']['min']}-"
          f"{images['width']['max']}, height {images['height']['min']}-"
          f"{images['height']['max']}; formats {_counts(images['formats'])}; "
          f"modes {_counts(images['modes'])}; {_channels(images['channels'])}; "
          f"{images['exif_rotated']:,} turned by EXIF orientation.")


def _problem_sections(summary: dict) -> list[str]:
  duplicates, problems = summary["duplicates"], summary["problems"]
  lines = ["## Unreadable files", ""]
  lines += [f"- `{u['file_name']}`: {u['reason']}" for u in summary["unreadable"]] or ["None."]
  lines += ["", "## Exact duplicates (same bytes)", "",
            f"{duplicates['groups']:,} groups, {duplicates['extra_copies']:,} extra copies; "
            f"{duplicates['groups_with_different_ages']:,} groups label the same photo with "
            "different ages."]
  lines += ["- " + " = ".join(f"`{d['file_name']}` (age {d['age']})" for d in group)
            for group in duplicates["list"][:SHOWN_PROBLEMS]]
  if duplicates["groups"] > SHOWN_PROBLEMS:
    lines.append(f"- ... and {duplicates['groups'] - SHOWN_PROBLEMS:,} more groups")
  lines += ["", f"## Problems ({problems['count']:,}, all listed in {PROBLEMS_FILE})", ""]
  lines += [f"- {p['text']}" for p in problems["list"][:SHOWN_PROBLEMS]] or ["None."]
  if problems["count"] > SHOWN_PROBLEMS:
    lines.append(f"- ... and {problems['count'] - SHOWN_PROBLEMS:,} more")
  return [*lines, ""]


def _table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
  lines = ["| " + " | ".join(str(h) for h in header) + " |",
           "|" + "---|" * len(header)]
  lines += ["| " + " | ".join("-" if v is None else str(v) for v in row) + " |" for row in rows]
  return "\n".join(lines) + "\n"


def _percent(share: float) -> str:
  return f"{100 * share:.1f}%"


def _counts(counts: dict) -> str:
  return ", ".join(f"{key} {value:,}" for key, value in counts.items()) or "none"


def _channels(counts: dict) -> str:
  return ", ".join(f"{n:,} with {c} channel{'s' * (c != '1')}" for c, n in counts.items())


def format_summary(summary: dict, out_dir: str | os.PathLike) -> str:
  """The summary as a compact block for the terminal, wrapped at 100 columns."""
  photos = summary["photos"]
  lines = [f"Data overview of {summary['directory']} ({summary['format']} layout, "
           f"{summary['source']})",
           _field("photos", f"{photos['usable']:,} usable of {photos['rows_listed']:,} listed "
                  f"({photos['set_aside']:,} set aside)")]
  lines += [_field("missing values", f"{table} ({counts['rows']:,} rows): "
                   f"{_counts(counts['missing'])}")
            for table, counts in summary["missing_values"].items()]
  lines += _age_and_image_lines(summary) if photos["usable"] else [_field("ages", "none usable")]
  return "\n".join(lines + _problem_lines(summary, out_dir))


def _age_and_image_lines(summary: dict) -> list[str]:
  ages, images = summary["ages"], summary["images"]
  return [
      _field("age (years)", f"min {ages['min']}, mean {ages['mean']}, median {ages['median']}, "
             f"max {ages['max']}, std {ages['std']}"),
      _field("most frequent", ", ".join(f"{t['age']} ({t['count']:,})"
                                        for t in summary["top_ages"])),
      _field("age bands", ", ".join(f"{b['band']} {b['count']:,} ({_percent(b['share'])})"
                                    for b in summary["age_bands"])),
      _field("image sizes", ", ".join(f"{s['width']}x{s['height']} ({s['count']:,})"
                                      for s in images["sizes"][:5])
             + f"; {images['distinct_sizes']} distinct; width {images['width']['min']}-"
             f"{images['width']['max']}, height {images['height']['min']}-"
             f"{images['height']['max']}"),
      _field("formats", f"{_counts(images['formats'])}; modes {_counts(images['modes'])}; "
             f"{_channels(images['channels'])}; {images['megabytes']:,} MB"),
  ]


def _field(name: str, text: str) -> str:
  return textwrap.fill(text, width=100, initial_indent=f"  {name:<16}",
                       subsequent_indent=_INDENT, break_on_hyphens=False)


def _problem_lines(summary: dict, out_dir: str | os.PathLike) -> list[str]:
  duplicates, problems = summary["duplicates"], summary["problems"]
  lines = [_field("unreadable", f"{len(summary['unreadable']):,} images"),
           _field("duplicates", f"{duplicates['groups']:,} groups of identical files, "
                  f"{duplicates['extra_copies']:,} extra copies; "
                  f"{duplicates['groups_with_different_ages']:,} groups with different ages")]
  lines += [_INDENT + " = ".join(f"{d['file_name']} (age {d['age']})" for d in group)
            for group in duplicates["list"][:SHOWN_DUPLICATE_GROUPS]]
  if duplicates["groups"] > SHOWN_DUPLICATE_GROUPS:
    lines.append(f"{_INDENT}... and {duplicates['groups'] - SHOWN_DUPLICATE_GROUPS:,} more groups")
  by_kind = ", ".join(f"{k.replace('_', ' ')} {n:,}" for k, n in problems["by_kind"].items())
  lines.append(_field("problems", f"{problems['count']:,}" + (f" ({by_kind})" if by_kind else "")))
  lines += [f"    {p['text']}" for p in problems["list"][:SHOWN_PROBLEMS]]
  if problems["count"] > SHOWN_PROBLEMS:
    lines.append(f"    ... and {problems['count'] - SHOWN_PROBLEMS:,} more in "
                 f"{os.path.join(out_dir, PROBLEMS_FILE)}")
  outputs = ", ".join(summary["outputs"][k] for k in ("histogram", "samples", "summary",
                                                      "report", "problems"))
  lines.append(f"wrote {out_dir}/: {outputs} ({summary['seconds']:.1f} s)")
  return lines
