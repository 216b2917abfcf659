"""The one progress reporter: its lines, rates measured since this process started, when it logs."""

import io
import logging
import sys

from ageflax.core.progress import Progress, format_duration, log_line


class _Clock:
  """Seconds that pass only when a test says so."""

  def __init__(self):
    self.now = 100.0

  def __call__(self) -> float:
    return self.now


def test_format_duration():
  assert [format_duration(s) for s in (12.4, 245, 3720)] == ["12s", "4m05s", "1h02m"]


def test_progress_line():
  progress = Progress(1000, "{done:,}/{total:,} photos", every_seconds=0)
  line = progress.update(500)
  assert line.startswith("500/1,000 photos | ") and "img/s | ETA" in line


def test_a_resumed_run_shows_its_own_rate_from_the_first_line():
  clock = _Clock()
  progress = Progress(1000, "step {done}/{total}", done=900, items_per_unit=8, clock=clock)
  clock.now += 4.0  # the first step, compiling
  progress.restart(901)
  # The first line after a resume comes at once: no step since the restart to time.
  line = progress.line(901, " | loss 1")
  assert line == "step 901/1000 | loss 1 | 2.0 img/s | ETA 6m36s"
  clock.now += 2.0
  # The compilation is left out of the rate from then on.
  assert progress.line(911).endswith("| 40.0 img/s | ETA 18s")


def test_rate_counts_only_the_work_of_this_process():
  clock = _Clock()
  progress = Progress(100, "{done}/{total}", done=50, clock=clock)
  clock.now += 5.0
  assert progress.rate(60) == 2.0
  assert progress.line(60).endswith("| 2.0 img/s | ETA 20s")


def test_update_reports_every_seconds_fractions_and_at_the_end():
  clock = _Clock()
  lines = []
  timed = Progress(10, "{done}/{total}", log_fn=lines.append, every_seconds=5.0, clock=clock)
  assert timed.update(1) is None
  clock.now += 5.0
  assert timed.update(2).startswith("2/10 | ")
  assert timed.update(3) is None and timed.update(10).endswith("ETA 0s")
  assert len(lines) == 2
  tenths = Progress(100, "{done}/{total} ({percent:.0f}%)", log_fn=lines.append,
                    every_percent=10, clock=clock)
  reported = [done for done in range(1, 101) if tenths.update(done)]
  assert reported == list(range(10, 101, 10)) and lines[-1].startswith("100/100 (100%) | ")



class _Terminal(io.StringIO):
  """A stderr that says it is an interactive terminal."""

  def isatty(self) -> bool:
    return True


def test_on_a_terminal_the_line_is_redrawn_beside_a_bar(monkeypatch):
  monkeypatch.setattr(sys, "stderr", _Terminal())
  clock, lines = _Clock(), []
  progress = Progress(10, "{done}/{total} photos", log_fn=lines.append, clock=clock, bar=True)
  for done in range(1, 11):
    clock.now += 1.0
    assert progress.update(done) is None
  drawn = sys.stderr.getvalue()
  assert not lines
  assert drawn.count("\r") >= 10 and "10/10 photos | 1.0 img/s | ETA 0s |" in drawn
  assert drawn.rstrip().endswith("|") and drawn.endswith("\n")  # the bar is left, finished


def test_off_a_terminal_the_same_reporter_sends_lines(monkeypatch):
  monkeypatch.setattr(sys, "stderr", io.StringIO())
  lines = []
  progress = Progress(10, "{done}/{total} photos", log_fn=lines.append, every_seconds=60,
                      bar=True)
  assert progress.update(3) is None and progress.update(10).startswith("10/10 photos | ")
  assert len(lines) == 1 and "img/s | ETA 0s" in lines[0] and sys.stderr.getvalue() == ""


def test_logged_lines_name_the_code_that_reports_progress(caplog):
  caplog.set_level(logging.INFO)
  caplog.set_level(logging.INFO, logger="absl")  # other tests in this process may lower it
  Progress(4, "{done}/{total} photos", log_fn=log_line).update(4)
  record = caplog.records[-1]
  assert record.getMessage().startswith("4/4 photos | ")
  assert (record.filename, record.funcName) == (
      "test_progress.py", "test_logged_lines_name_the_code_that_reports_progress")
