"""Preemption: SIGTERM/SIGINT end a run at the next step boundary with a committed checkpoint.

SLURM and Kubernetes preempt with SIGTERM; a person with Ctrl-C. On one process the
signal sets a flag that the loop reads after each step. On several processes they must
all stop at the same step, so there the decision is Orbax's `reached_preemption`, which
agrees on a step through JAX's distributed preemption service; a local signal then only
asks that service. A second Ctrl-C stops at once.
"""

import signal
import threading
from types import FrameType

import jax

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequests:
  """A context in which SIGTERM/SIGINT request a clean stop instead of killing the process."""

  def __init__(self):
    self._received = threading.Event()
    self.signal_name = ""
    self._previous = {}

  def __enter__(self) -> "StopRequests":
    if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
      for signum in STOP_SIGNALS:
        self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def __exit__(self, *exc_info) -> None:
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)

  def _handle(self, signum: int, frame: FrameType | None) -> None:
    del frame
    if signum == signal.SIGINT and self._received.is_set():
      raise KeyboardInterrupt  # a second Ctrl-C: the user means it
    self.signal_name = signal.Signals(signum).name
    self._received.set()

  def should_stop(self, step: int, reached_preemption) -> bool:
    """Whether every process should stop after `step`.

    Args:
      step: the step just finished.
      reached_preemption: Orbax's `CheckpointManager.reached_preemption`, the agreed
        decision on multi-process jobs.
    """
    if jax.process_count() > 1:
      if reached_preemption(step):
        self.signal_name = self.signal_name or "preemption notice"
        return True
      return False
    return self._received.is_set()
