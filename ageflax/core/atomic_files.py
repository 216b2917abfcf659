"""Writing result files whole or not at all, and refusing an output path before any work.

A result (prediction rows, metrics, a history) is written to a temporary name in its own
folder and renamed over the target (`os.replace`, atomic on one file system), so a run that
is interrupted, killed or out of disk never leaves half a CSV or JSON under the real name.
"""

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import IO

from ageflax.core.errors import ConfigError


@contextlib.contextmanager
def open_atomically(path: str | os.PathLike, mode: str = "w", **open_kwargs) -> Iterator[IO]:
  """Opens a temporary file beside `path` for writing; renames it to `path` when the block
  ends without an error, and removes it otherwise.

  Args:
    path: the file to write.
    mode: 'w' (text) or 'wb' (bytes).
    **open_kwargs: passed to `open` (encoding, newline).
  """
  folder, name = os.path.split(os.path.abspath(path))
  handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
  try:
    with open(handle, mode, **open_kwargs) as f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    os.chmod(temporary, _mode_for(path))
    os.replace(temporary, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.remove(temporary)
    raise


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
  """Writes `text` (UTF-8) to `path` whole or not at all."""
  with open_atomically(path, encoding="utf-8") as f:
    f.write(text)


def _mode_for(path: str | os.PathLike) -> int:
  """The permissions of the file being replaced, else 0644: mkstemp's 0600 would hide a new
  result from the other users of a shared run folder."""
  try:
    return os.stat(path).st_mode & 0o777
  except FileNotFoundError:
    return 0o644


def check_writable(path: str | os.PathLike, flag: str) -> None:
  """Raises ConfigError, naming `flag`, unless a file can be written at `path`: its folder
  exists and is writable, and the path is not a folder or a read-only file."""
  folder = os.path.dirname(os.path.abspath(path))
  if os.path.isdir(path):
    raise ConfigError(f"{flag}={path} is a folder: name a file in it")
  if not os.path.isdir(folder):
    raise ConfigError(f"{flag}={path}: folder {folder} does not exist")
  if not os.access(folder, os.W_OK | os.X_OK):
    raise ConfigError(f"{flag}={path}: folder {folder} is not writable")
  if os.path.exists(path) and not os.access(path, os.W_OK):
    raise ConfigError(f"{flag}={path}: the file exists and is read-only")
