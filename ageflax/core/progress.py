"""The one progress reporter: done/total, items per second and the time left.

Training, prediction, evaluation and the data overview all report through `Progress`. Rates
count only the work done since this process started (or since `restart`), never from zero, so
the first line of a resumed run shows the rate it runs at, not a rate diluted by steps done
before. One report, two renderings: lines now and then for logs and tests, or, where asked for
and stderr is a terminal, the same line redrawn in place beside a tqdm bar.
"""

import sys
import time
from collections.abc import Callable

from absl import logging

# How often a terminal bar is redrawn: often enough to look alive, rarely enough to cost nothing.
_BAR_SECONDS = 0.1


def format_duration(seconds: float) -> str:
  """E.g. '1h02m', '4m05s', '12s'."""
  seconds = max(0, round(seconds))
  hours, rest = divmod(seconds, 3600)
  minutes, seconds = divmod(rest, 60)
  if hours:
    return f"{hours}h{minutes:02d}m"
  return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def log_line(text: str) -> None:
  """A `log_fn`: an absl INFO line attributed to the code that called `Progress.update`."""
  # Frames up from the logging call: this function, `Progress.update`, then its caller.
  logging.info("%s", text, stacklevel=3)


class Progress:
  """Progress lines for a loop of `total` units that reports now and then.

  A line reads `HEAD[EXTRA] | RATE UNIT/s | ETA DURATION`, where HEAD is `head` formatted
  with `done`, `total` and `percent`, e.g. `'{done:,}/{total:,} photos'` or
  `'step {done}/{total}'`. A unit of work may hold several items
  (`items_per_unit`, e.g. the images of one training step): the rate is in items per second.
  """

  def __init__(self, total: int, head: str, unit: str = "img", *,
               log_fn: Callable[[str], None] | None = None, done: int = 0,
               items_per_unit: int = 1, every_seconds: float = 0.0,
               every_percent: int = 0, clock: Callable[[], float] = time.perf_counter,
               bar: bool = False):
    """Starts measuring at `done` units (more than 0 when a run resumes).

    Args:
      total: units when finished.
      head: the line's start, a format string of `done`, `total` and `percent`.
      unit: what an item is, for the rate ('img' gives 'img/s').
      log_fn: where `update` sends its lines.
      done: units already done before this process started.
      items_per_unit: items per unit of work.
      every_seconds: `update` reports at most this often (and always at the end)...
      every_percent: ...and, when set, only once per this many percent of `total`.
      clock: seconds, monotonic (a test passes its own).
      bar: when stderr is a terminal, `update` redraws its line beside a tqdm bar instead of
        sending lines to `log_fn`; elsewhere (logs, tests) the lines go on.
    """
    self.total = total
    self._head, self._unit, self._log_fn = head, unit, log_fn
    self._items_per_unit = items_per_unit
    self._every_seconds, self._every_percent = every_seconds, every_percent
    self._clock = clock
    self._process_start = (done, clock())
    self._last_line_at = self._process_start[1]
    self._last_step_of_percent = 0
    self.restart(done)
    self._bar = self._terminal_bar(done) if bar and sys.stderr.isatty() else None

  def _terminal_bar(self, done: int):
    """A tqdm bar on stderr showing this reporter's line, then the bar."""
    import tqdm  # the till installs `ageflax.core` without tqdm, which comes with `train`

    return tqdm.tqdm(total=self.total, initial=done, desc=self._format_head(done),
                     bar_format="{desc} |{bar}|", file=sys.stderr, dynamic_ncols=True)

  def restart(self, done: int) -> None:
    """Measures the rate from `done` on, e.g. after a first step that compiled."""
    self._start = self._window = (done, self._clock())
    self._smoothed_rate = None

  def rate(self, done: int) -> float:
    """Items per second, on average since the start (or the last `restart`)."""
    return self._rate_since(self._start, done, self._clock())

  def _rate_since(self, since: tuple[int, float], done: int, now: float) -> float:
    return (done - since[0]) * self._items_per_unit / max(now - since[1], 1e-9)

  def line(self, done: int, extra: str = "") -> str:
    """The line for `done` units; the rate is that of the units done since the last line."""
    now = self._clock()
    if done > self._window[0]:
      rate = self._rate_since(self._window, done, now)
      # A moving average keeps the ETA steady across noisy windows.
      smoothed = self._smoothed_rate
      self._smoothed_rate = rate if smoothed is None else 0.7 * smoothed + 0.3 * rate
      self._window = (done, now)
    elif self._smoothed_rate is None:
      # Nothing done since the restart: count what compiled too, for this line only.
      rate = self._rate_since(self._process_start, done, now)
    else:
      rate = self._smoothed_rate
    self._last_line_at = now
    eta = self._eta(done, self._smoothed_rate or rate)
    return f"{self._format_head(done)}{extra} | {rate:.1f} {self._unit}/s | ETA {eta}"

  def _format_head(self, done: int) -> str:
    percent = 100 * done / self.total if self.total else 100.0
    return self._head.format(done=done, total=self.total, percent=percent)

  def _eta(self, done: int, rate: float) -> str:
    if done >= self.total:
      return format_duration(0)
    if not rate:
      return "unknown"
    units_per_second = rate / self._items_per_unit
    return format_duration((self.total - done) / units_per_second)

  def update(self, done: int, extra: str = "") -> str | None:
    """Sends the line for `done` to `log_fn` and returns it when one is due, else None.

    A line is due at the end, and otherwise once `every_seconds` have passed since the last
    and, with `every_percent`, once `done` reaches the next such share of `total`. With a
    terminal bar, the bar is redrawn instead and None returned.
    """
    finished = done >= self.total
    if self._bar is not None:
      self._redraw(done, extra, finished)
      return None
    if not finished:
      if self._clock() - self._last_line_at < self._every_seconds:
        return None
      if self._every_percent:
        step_of_percent = 100 * done // (self.total * self._every_percent)
        if step_of_percent <= self._last_step_of_percent:
          return None
        self._last_step_of_percent = step_of_percent
    text = self.line(done, extra)
    if self._log_fn is not None:
      self._log_fn(text)
    return text

  def _redraw(self, done: int, extra: str, finished: bool) -> None:
    """Redraws the terminal bar at most every `_BAR_SECONDS`, and closes it at the end."""
    if not finished and self._clock() - self._last_line_at < _BAR_SECONDS:
      return
    self._bar.set_description_str(self.line(done, extra), refresh=False)
    self._bar.n = done
    self._bar.refresh()
    if finished:
      self._bar.close()
