"""What the entry points share: absl flags for multi-host jobs and one-line error exits."""

import functools
import logging as python_logging
import re
import sys
from collections.abc import Callable

import jax
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
  """Joins the multi-host job the flags or SLURM describe; other processes then log warnings only."""
  values = flags.FLAGS
  sharding.initialize_distributed(values.coordinator_address, values.num_processes,
                                  values.process_id)
  if jax.process_index() > 0:
    logging.set_verbosity(logging.WARNING)


# Orbax warns at every save without validation metrics (the mid-epoch saves, by design),
# and whenever a checkpoint folder is opened read-only (prediction and evaluation).
_EXPECTED_WARNINGS = ("did not provide metrics", "Given directory is read only",
                      "setting save_interval_steps=0")


class _OwnInfoOnly(python_logging.Filter):
  """Keeps INFO lines from ageflax and warnings from everyone; libraries' INFO is noise."""

  def filter(self, record: python_logging.LogRecord) -> bool:
    if "site-packages" not in record.pathname:
      return True
    message = record.getMessage()
    return (record.levelno >= python_logging.WARNING
            and not any(text in message for text in _EXPECTED_WARNINGS))


def quiet_library_logs() -> None:
  """Drops the INFO lines of installed libraries (Orbax logs several per save)."""
  logging.get_absl_handler().addFilter(_OwnInfoOnly())


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with a config override that names no field as a one-line error."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    _exit_with(f"{e} (see --help)")
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    # ml_collections reports an unknown or mistyped `--config.x.y` this way.
    message = str(e.args[0] if e.args else e).strip("'\"")
    message = message.replace("\\'", "'").replace("\\n", " ").replace("\n", " ")
    overrides = [a.split("=")[0] for a in argv[1:] if a.startswith("--config.")]
    field = re.search(r"'([^']+)'", message)
    named = [o for o in overrides if field and o.endswith("." + field.group(1))]
    _exit_with(f"bad config override {' '.join(named or overrides)}: {message}")
  return []


def _exit_with(message: str) -> None:
  print(f"error: {message}", file=sys.stderr)
  sys.exit(1)


def exit_on_user_error(main: Callable[[list[str]], None]) -> Callable[[list[str]], None]:
  """Turns an AgeflaxError into a one-line message on stderr and exit status 1."""

  @functools.wraps(main)
  def wrapped(argv: list[str]) -> None:
    quiet_library_logs()
    try:
      main(argv)
    except AgeflaxError as e:
      logging.flush()
      _exit_with(str(e))

  return wrapped
