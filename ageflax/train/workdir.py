"""A run directory's guards: writable, used by one run at a time, resumed only by its config.

The lock is an advisory `fcntl.flock` on `WORKDIR/.lock`, held for the run's lifetime:
the kernel drops it when the process dies, however it dies, so a dead run never blocks
its successor. (On network filesystems flock is only as good as the server's locking.)
"""

import fcntl
import json
import os
import socket
from collections.abc import Iterator

import ml_collections

from ageflax.config import schema
from ageflax.core import run_files
from ageflax.core.errors import ConfigError

# Fields that change how a run is executed or logged, not what it computes.
RESUMABLE_CHANGES = (
    "data.dir", "data.num_threads", "data.prefetch_batches", "data.cache", "data.cache_max_gb",
    "data.verify_images", "train.log_every_steps", "checkpoint.every_steps", "eval.batch_size",
    "eval.legal_age", "eval.challenge_age",
)


def check_writable(workdir: str) -> None:
  """Creates `workdir` if needed and proves a file can be written there."""
  probe = os.path.join(workdir, f".write-test-{os.getpid()}")
  try:
    os.makedirs(workdir, exist_ok=True)
    with open(probe, "wb") as f:
      f.write(b"\0" * 4096)
      f.flush()
      os.fsync(f.fileno())
    os.remove(probe)
  except OSError as e:
    raise ConfigError(f"workdir {workdir} is not writable: {e.strerror or e}") from None


class RunLock:
  """Holds WORKDIR/.lock while a run trains; a second run on the workdir is refused."""

  def __init__(self, workdir: str):
    self._path = run_files.path(workdir, run_files.LOCK)
    self._file = None

  def __enter__(self) -> "RunLock":
    self._file = open(self._path, "a+")
    try:
      fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      self._file.seek(0)
      holder = self._file.read().strip() or "another process"
      self._file.close()
      raise ConfigError(f"workdir {os.path.dirname(self._path)} is in use by {holder}; wait for "
                        "it to finish or stop it (its lock is released when it exits)") from None
    self._file.seek(0)
    self._file.truncate()
    self._file.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    self._file.flush()
    return self

  def __exit__(self, *exc_info) -> None:
    fcntl.flock(self._file, fcntl.LOCK_UN)
    self._file.close()


def changed_fields(saved: dict, current: dict, prefix: str = "") -> Iterator[str]:
  """Dotted names of the fields whose values differ between two nested config dicts."""
  for key in sorted(set(saved) | set(current)):
    name = f"{prefix}{key}"
    old, new = saved.get(key), current.get(key)
    if isinstance(old, dict) and isinstance(new, dict):
      yield from changed_fields(old, new, name + ".")
    elif old != new:
      yield name


def check_same_config(workdir: str, config: ml_collections.ConfigDict, allow_changes: bool) -> None:
  """Refuses to resume a run whose saved config differs in fields that change its results."""
  path = run_files.path(workdir, run_files.CONFIG)
  if not os.path.exists(path):
    return
  with open(path) as f:
    # Fields added since the run was saved read as today's defaults, not as changes.
    saved = schema.with_current_defaults(ml_collections.ConfigDict(json.load(f))).to_dict()
  changed = [name for name in changed_fields(saved, config.to_dict())
             if name not in RESUMABLE_CHANGES]
  if changed and not allow_changes:
    details = ", ".join(f"{name}: {_lookup(saved, name)!r} -> {_lookup(config.to_dict(), name)!r}"
                        for name in changed[:5])
    raise ConfigError(f"workdir {workdir} holds a run with another config ({details}); use a "
                      "new --workdir, or pass --allow_config_change to resume anyway")


def _lookup(tree: dict, dotted: str):
  for key in dotted.split("."):
    if not isinstance(tree, dict) or key not in tree:
      return None
    tree = tree[key]
  return tree
