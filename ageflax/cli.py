"""What the entry points share: absl flags for multi-host jobs and one-line error exits."""

import functools
import logging as python_logging
import sys
from collections.abc import Callable

from absl import flags, logging

from ageflax import sharding
from ageflax.errors import AgeflaxError


def define_distributed_flags() -> None:
  """--coordinator_address, --num_processes, --process_id (for jobs outside SLURM)."""
  flags.DEFINE_string("coordinator_address", "",
                      "host:port of process 0 for a multi-host job; empty: single host "
                      "or SLURM auto-detection.")
  flags.DEFINE_integer("num_processes", 0, "Processes in the multi-host job.")
  flags.DEFINE_integer("process_id", -1, "This process's index in the multi-host job.")


def initialize_distributed_from_flags() -> None:
  values = flags.FLAGS
  sharding.initialize_distributed(values.coordinator_address, values.num_processes,
                                  values.process_id)


class _OwnInfoOnly(python_logging.Filter):
  """Keeps INFO lines from ageflax and warnings from everyone; libraries' INFO is noise."""

  def filter(self, record: python_logging.LogRecord) -> bool:
    return record.levelno >= python_logging.WARNING or "site-packages" not in record.pathname


def quiet_library_logs() -> None:
  """Drops the INFO lines of installed libraries (Orbax logs several per save)."""
  logging.get_absl_handler().addFilter(_OwnInfoOnly())


def exit_on_user_error(main: Callable[[list[str]], None]) -> Callable[[list[str]], None]:
  """Turns an AgeflaxError into a one-line message on stderr and exit status 1."""

  @functools.wraps(main)
  def wrapped(argv: list[str]) -> None:
    quiet_library_logs()
    try:
      main(argv)
    except AgeflaxError as e:
      logging.flush()
      print(f"error: {e}", file=sys.stderr)
      sys.exit(1)

  return wrapped
