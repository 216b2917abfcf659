"""The entry points: each module parses its flags and makes one call into the package.

TensorFlow's C++ runtime prints start-up lines (oneDNN, absl's pre-initialisation warning)
before any log level applies, so the entry points import it once here with the process's
stderr set aside; a failing import still raises, with its message.
"""

import contextlib
import importlib.util
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def _stderr_set_aside():
  sys.stderr.flush()
  saved = os.dup(2)
  with open(os.devnull, "w") as devnull:
    os.dup2(devnull.fileno(), 2)
    try:
      yield
    finally:
      os.dup2(saved, 2)
      os.close(saved)


if "tensorflow" not in sys.modules and importlib.util.find_spec("tensorflow") is not None:
  with _stderr_set_aside():
    import tensorflow  # noqa: F401
