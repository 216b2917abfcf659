"""TensorBoard summaries, the metric history and log lines of a training run.

Only process 0 writes summaries, history and log lines (progress lines among them, made by
`ageflax.core.progress`); every process runs the same code.
"""

import json
import os

import jax
from absl import logging

from ageflax.core import atomic_files, run_files


class SummaryWriter:
  """TensorBoard scalars in `workdir/tensorboard` (process 0 only; a no-op elsewhere)."""

  def __init__(self, workdir: str):
    self._writer = None
    if jax.process_index() == 0:
      from tensorboardX import SummaryWriter as TensorBoardWriter

      self._writer = TensorBoardWriter(run_files.path(workdir, run_files.TENSORBOARD))

  def scalars(self, step: int, values: dict[str, float]) -> None:
    if self._writer is None:
      return
    for name, value in values.items():
      self._writer.add_scalar(name, value, step)
    self._writer.flush()

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()


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


def log(message: str, *args) -> None:
  """absl INFO log line from process 0 only."""
  if jax.process_index() == 0:
    logging.info(message, *args)
