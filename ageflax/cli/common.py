"""What the entry points share: flag parsing, joining a multi-host job and one-line error exits.

The flags they share are defined in `ageflax.cli.flags`.
"""

import functools
import logging as python_logging
import pathlib
import re
import signal
import sys
from collections.abc import Callable
from types import FrameType

import jax
import ml_collections
from absl import app, flags, logging
from ml_collections.config_flags.config_flags import ConfigFileFlagParser

from ageflax.cli import parsing
from ageflax.config import defaults, schema
from ageflax.core import sharding
from ageflax.core.errors import AgeflaxError
from ageflax.data import layouts


def refuse_arguments(argv: list[str]) -> None:
  """Entry points that take only flags refuse anything else on the command line."""
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")


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
  """absl's flag parsing, with a config file that cannot be loaded or a config override that
  names no field as a one-line error."""
  try:
    return parsing.parse_flags(argv, then=_load_config_files)
  except OSError as e:
    reasons = re.findall(r"\[Errno \d+\] ([^\n]+)", str(e)) or str(e).strip().splitlines()
    parsing.exit_with(f"cannot load the config file: {reasons[-1]}")
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    # ml_collections reports an unknown or mistyped `--config.x.y` this way.
    message = str(e.args[0] if e.args else e).strip("'\"")
    message = message.replace("\\'", "'").replace("\\n", " ").replace("\n", " ")
    overrides = [a.split("=")[0] for a in argv[1:] if a.startswith("--config.")]
    field = re.search(r"'([^']+)'", message)
    named = [o for o in overrides if field and o.endswith("." + field.group(1))]
    parsing.exit_with(f"bad config override {' '.join(named or overrides)}: {message}")
  return []


def _load_config_files() -> None:
  """Uses every config a config file flag loaded: ml_collections defers the OSError of a file
  it cannot load (e.g. a missing one) to that first use."""
  for name in flags.FLAGS:
    flag = flags.FLAGS[name]
    if isinstance(flag.parser, ConfigFileFlagParser) and flag.value is not None:
      flag.value.keys()


def hide_gpus_from_tensorflow() -> None:
  """JAX owns the accelerators; TensorFlow, where an entry point uses it, reads on the host."""
  tensorflow = sys.modules.get("tensorflow")  # None too where an import of it was blocked
  if tensorflow is not None:
    tensorflow.config.set_visible_devices([], "GPU")


def exit_on_user_error(main: Callable[[list[str]], None]) -> Callable[[list[str]], None]:
  """Runs an entry point's main: quiet library logs, GPUs hidden from TensorFlow, SIGTERM
  ending it with one line (training saves and stops cleanly once its loop has begun), and
  an AgeflaxError turned into a one-line message on stderr and exit status 1."""

  @functools.wraps(main)
  def wrapped(argv: list[str]) -> None:
    quiet_library_logs()
    hide_gpus_from_tensorflow()
    signal.signal(signal.SIGTERM, _stop_outside_the_loop)
    try:
      main(argv)
    except AgeflaxError as e:
      logging.flush()
      parsing.exit_with(str(e))

  return wrapped


def _stop_outside_the_loop(signum: int, frame: FrameType | None) -> None:
  """SIGTERM outside the training loop (reading data, compiling, predicting): one line; the
  results an entry point writes are written whole or not at all."""
  del frame
  logging.flush()
  print(f"stopped by {signal.Signals(signum).name} outside the training loop; rerun the same "
        "command (a training run resumes from its last checkpoint)", file=sys.stderr)
  sys.exit(128 + signum)


def experiment_file(name: str) -> str:
  """The path of `configs/NAME` beside the package (the default of a tool's --config)."""
  return str(pathlib.Path(__file__).resolve().parents[2] / "configs" / name)


def evenly_spaced_photos(data_dir: str, count: int) -> tuple[ml_collections.ConfigDict, list]:
  """The default `data` config pointed at `data_dir`, and `count` of its rows evenly spaced
  (for the tools that measure something on a sample of a folder)."""
  data = defaults.get_config().data
  data.dir = data_dir
  records = layouts.read_faces(data).records
  return data, records[::max(1, len(records) // count)][:count]


def set_group_fields(config: ml_collections.ConfigDict, columns: str | None,
                     from_file_names: str | None) -> None:
  """Lays --group_columns and --group_from_file_names, where given, over the run's data
  section and checks the config again (with the folder the entry point will read)."""
  if columns is not None:
    config.data.group_columns = columns
  if from_file_names is not None:
    config.data.group_from_file_names = from_file_names
  schema.check(config)


def run(main: Callable[[list[str]], None], entry_module: str) -> None:
  """Runs an entry point (`parsing.run`) with the config-aware flag parsing above."""
  parsing.run(main, entry_module, parse_flags)
