"""Progress lines (step, loss, MAE, images/s, ETA), TensorBoard summaries, metric history.

Only process 0 writes summaries, history and progress lines; every process runs the same code.
"""

import json
import os
import time

import jax
from absl import logging


def format_duration(seconds: float) -> str:
  """E.g. '1h02m', '4m05s', '12s'."""
  seconds = max(0, round(seconds))
  hours, rest = divmod(seconds, 3600)
  minutes, seconds = divmod(rest, 60)
  if hours:
    return f"{hours}h{minutes:02d}m"
  return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


class SummaryWriter:
  """TensorBoard scalars in `workdir/tensorboard` (process 0 only; a no-op elsewhere)."""

  def __init__(self, workdir: str):
    self._writer = None
    if jax.process_index() == 0:
      from tensorboardX import SummaryWriter as TensorBoardWriter

      self._writer = TensorBoardWriter(os.path.join(workdir, "tensorboard"))

  def scalars(self, step: int, values: dict[str, float]) -> None:
    if self._writer is None:
      return
    for name, value in values.items():
      self._writer.add_scalar(name, value, step)
    self._writer.flush()

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()


class Progress:
  """Measures throughput between log points and estimates the time left."""

  def __init__(self, first_step: int, total_steps: int, global_batch_size: int):
    self._total = total_steps
    self._batch = global_batch_size
    self._last_step = first_step
    self._last_time = time.perf_counter()
    self._rate_steps_per_s = None

  def restart(self, step: int) -> None:
    """Starts the throughput window at `step` (e.g. after the first step's compilation)."""
    self._last_step, self._last_time = step, time.perf_counter()

  def line(self, step: int, steps_per_epoch: int, metrics: dict[str, float]) -> str:
    """A progress line for `step`; resets the throughput window."""
    now = time.perf_counter()
    steps_per_s = (step - self._last_step) / max(now - self._last_time, 1e-9)
    # A moving average keeps the ETA steady across noisy windows.
    rate = self._rate_steps_per_s
    self._rate_steps_per_s = steps_per_s if rate is None else 0.7 * rate + 0.3 * steps_per_s
    self._last_step, self._last_time = step, now
    eta = (self._total - step) / max(self._rate_steps_per_s, 1e-9)
    values = " | ".join(f"{name} {value:.4g}" for name, value in metrics.items())
    return (f"step {step}/{self._total} (epoch {step / steps_per_epoch:.2f}) | {values} | "
            f"{steps_per_s * self._batch:.1f} img/s | ETA {format_duration(eta)}")


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
  temporary = f"{path}.tmp"
  with open(temporary, "w") as f:
    json.dump(history, f, indent=1)
  os.replace(temporary, path)
  return history


def log(message: str, *args) -> None:
  """absl INFO log line from process 0 only."""
  if jax.process_index() == 0:
    logging.info(message, *args)
