"""TensorBoard summaries, the metric history and log lines of a training run.

Only process 0 writes summaries, history and log lines (progress lines among them, made by
`ageflax.core.progress`); every process runs the same code. TensorBoard gets the scalars,
the config as text, the hyper-parameters beside the validation metrics (HPARAMS tab), a grid
of augmented training photos, the predicted-vs-true figure and the weights' histograms.
"""

import csv
import json
import os

import jax
import numpy as np
from absl import logging
from PIL import Image, ImageDraw

from ageflax.core import atomic_files, run_files

# Photos in the grid of augmented training samples, and the strip under each for its age.
GRID_PHOTOS = 8
_CAPTION_PIXELS = 12


class SummaryWriter:
  """TensorBoard summaries in `workdir/tensorboard` (process 0 only; a no-op elsewhere)."""

  def __init__(self, workdir: str):
    self._writer = None
    if jax.process_index() == 0:
      from tensorboardX import SummaryWriter as TensorBoardWriter

      self._writer = TensorBoardWriter(run_files.path(workdir, run_files.TENSORBOARD))

  @property
  def active(self) -> bool:
    """Whether this process writes: the others need not prepare images or histograms."""
    return self._writer is not None

  def scalars(self, step: int, values: dict[str, float]) -> None:
    if self._writer is None:
      return
    for name, value in values.items():
      self._writer.add_scalar(name, value, step)
    self._writer.flush()

  def text(self, tag: str, markdown: str, step: int) -> None:
    if self._writer is not None:
      self._writer.add_text(tag, markdown, step)
      self._writer.flush()

  def image(self, tag: str, pixels: np.ndarray, step: int) -> None:
    """An RGB uint8 image [H, W, 3]."""
    if self._writer is not None:
      self._writer.add_image(tag, pixels, step, dataformats="HWC")
      self._writer.flush()

  def image_file(self, tag: str, path: str | os.PathLike, step: int) -> None:
    """The PNG (or any image file Pillow reads) at `path`."""
    if self._writer is not None:
      with Image.open(path) as image:
        self.image(tag, np.asarray(image.convert("RGB")), step)

  def histograms(self, step: int, values: dict[str, np.ndarray]) -> None:
    if self._writer is None:
      return
    for name, value in values.items():
      self._writer.add_histogram(name, value, step)
    self._writer.flush()

  def hparams(self, hyper_parameters: dict, metric_tags: list[str]) -> None:
    """This run's row of the HPARAMS tab: `hyper_parameters` and the scalars `metric_tags`.

    Written into the run's own event file, not into a sub-run as tensorboardX's
    `add_hparams` does, so the tab shows the last values of the run's own metric curves.
    """
    if self._writer is None:
      return
    from tensorboardX.summary import hparams

    for summary in hparams(hyper_parameters, dict.fromkeys(metric_tags, 0.0)):
      self._writer.file_writer.add_summary(summary)
    self._writer.flush()

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()


def config_markdown(config: dict) -> str:
  """The config as a Markdown code block, for TensorBoard's TEXT tab."""
  return "\n".join(f"    {line}" for line in json.dumps(config, indent=2).splitlines())


def hyper_parameters(config: dict, prefix: str = "") -> dict[str, bool | int | float | str]:
  """Every set config field by its dotted name ('optim.learning_rate'); sequences as text."""
  flat = {}
  for name, value in config.items():
    if isinstance(value, dict):
      flat.update(hyper_parameters(value, f"{prefix}{name}."))
    elif value is not None:
      flat[f"{prefix}{name}"] = (value if isinstance(value, bool | int | float | str)
                                 else str(value))
  return flat


def sample_grid(images: np.ndarray, ages: np.ndarray) -> np.ndarray:
  """The first `GRID_PHOTOS` uint8 photos side by side, each above a strip with its age."""
  count = min(len(images), GRID_PHOTOS)
  height, width = images.shape[1:3]
  grid = Image.new("RGB", (count * width, height + _CAPTION_PIXELS), "white")
  draw = ImageDraw.Draw(grid)
  for column in range(count):
    grid.paste(Image.fromarray(images[column]), (column * width, 0))
    draw.text((column * width + 1, height), f"{round(float(ages[column]), 1):g}", fill="black")
  return np.asarray(grid)


def weight_histograms(params) -> dict[str, np.ndarray]:
  """The parameters (an nnx.State) pooled per top-level layer and kind: 'weights/head/kernel'."""
  pooled: dict[str, list[np.ndarray]] = {}
  for path, leaf in jax.tree_util.tree_leaves_with_path(params.to_pure_dict()):
    layer, kind = (getattr(key, "key", getattr(key, "idx", key)) for key in (path[0], path[-1]))
    # Replicated on every device: one copy is the whole of it, on any number of hosts.
    pooled.setdefault(f"weights/{layer}/{kind}", []).append(
        np.asarray(leaf.addressable_data(0)).ravel())
  return {name: np.concatenate(parts) for name, parts in pooled.items()}


def append_history(path: str | os.PathLike, record: dict) -> list[dict]:
  """Adds `record` (with a 'step') to the JSON list in `path`; returns the whole history.

  Records from `record`'s step on are dropped first: a run resumed from an earlier
  checkpoint validates those steps again. The file is replaced atomically.
  """
  history = []
  if os.path.exists(path):
    with open(path) as f:
      history = json.load(f)
  history = [r for r in history if r["step"] < record["step"]] + [record]
  atomic_files.write_text_atomically(path, json.dumps(history, indent=1))
  return history


def write_history_csv(path: str | os.PathLike, history: list[dict]) -> None:
  """`history` as CSV: a row per record, a column per metric any record has (step first)."""
  columns = list(dict.fromkeys(name for record in history for name in record))
  with atomic_files.open_atomically(path, newline="") as f:
    writer = csv.DictWriter(f, columns)
    writer.writeheader()
    writer.writerows(history)


def log(message: str, *args) -> None:
  """absl INFO log line from process 0 only, attributed to the code that calls `log`."""
  if jax.process_index() == 0:
    logging.info(message, *args, stacklevel=2)
