"""The entry points: each module parses its flags and makes one call into the package.

TensorFlow's C++ runtime prints start-up lines (oneDNN, absl's pre-initialisation warning)
before any log level applies, so the entry points run TensorFlow's first import, whenever
an entry point needs it, with the process's stderr set aside; a failing import still
raises, with its message. Importing this package also hides TensorFlow's C++ info and
warning lines (TF_CPP_MIN_LOG_LEVEL=2) and turns oneDNN off, unless the user set either.
"""

import contextlib
import importlib.abc
import importlib.machinery
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow only decodes and augments images here, work oneDNN does not speed up; left on, it
# logs an ERROR line at the first uint8 image op on every CPU without AVX-512.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


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


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
  """Finds `tensorflow` as usual and runs its package's import with stderr set aside."""

  def find_spec(self, name, path, target=None):
    if name != "tensorflow":
      return None
    sys.meta_path.remove(self)
    spec = importlib.machinery.PathFinder.find_spec(name, path)
    if spec is not None and spec.loader is not None:
      run_package = spec.loader.exec_module

      def exec_module(module):
        with _stderr_set_aside():
          run_package(module)

      spec.loader.exec_module = exec_module
    return spec


if "tensorflow" not in sys.modules:
  sys.meta_path.insert(0, _QuietTensorFlowImport())
