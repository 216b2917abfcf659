"""The overview's pictures: the age histogram and a grid of sample photos (matplotlib)."""

import pathlib
from collections.abc import Sequence

import numpy as np
from matplotlib import ticker
from matplotlib.figure import Figure
from PIL import Image, ImageOps

from ageflax.core import age_bands as age_bands_lib
from ageflax.data.label_rows import Record
from ageflax.devtools.explore.stats import plain_number

SAMPLE_ROWS, SAMPLE_COLUMNS = 3, 5


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
    axes.set_title(f"age {plain_number(record.age)}", fontsize=13, fontweight="bold")
    axes.text(0.5, -0.02, record.file_name, transform=axes.transAxes, ha="center", va="top",
              fontsize=8, color="#555555")
  figure.savefig(path)
