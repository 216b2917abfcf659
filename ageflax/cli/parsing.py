"""absl flag parsing with one-line errors, and running an entry point whose flags live in the
package: the part of the entry points' machinery that imports neither JAX nor TensorFlow, so
the till service's entry point (installed without the training stack) shares it.
"""

import sys
from collections.abc import Callable
from typing import NoReturn

from absl import app, flags

_HELP_FLAGS = frozenset({"--help", "-help", "-h", "-?", "--helpfull", "-helpfull", "--helpshort",
                         "-helpshort", "--helpxml", "-helpxml"})


def parse_flags(argv: list[str], then: Callable[[], None] | None = None) -> list[str]:
  """absl's flag parsing (and `then`, for checks that need the parsed flags), with a bad flag
  as a one-line error and --help as a clean exit."""
  try:
    remaining = flags.FLAGS(argv)
    if then is not None:
      then()
    return remaining
  except SystemExit as e:  # absl's --help, --helpfull and --helpshort exit 1 after the help
    sys.exit(0 if e.code == 1 and _HELP_FLAGS & {a.split("=")[0] for a in argv[1:]} else e.code)
  except flags.Error as e:
    exit_with(f"{e} (see --help)")


def exit_with(message: str) -> NoReturn:
  """Ends the program with `error: MESSAGE` on stderr and exit status 1."""
  print(f"error: {message}", file=sys.stderr)
  sys.exit(1)


def run(main: Callable[[list[str]], None], entry_module: str,
        flags_parser: Callable[[list[str]], list[str]] = parse_flags) -> None:
  """Runs an entry point whose flags live in the package: `--help` shows its docstring and
  its flags (the shared ones too), although the program started is a thin wrapper."""
  wrapper = sys.argv[0]
  for module, module_flags in flags.FLAGS.flags_by_module_dict().items():
    if module.startswith("ageflax.cli"):
      for flag in module_flags:
        flags.FLAGS.register_key_flag_for_module(wrapper, flag)
  sys.modules["__main__"].__doc__ = sys.modules[entry_module].__doc__
  app.run(main, flags_parser=flags_parser)
