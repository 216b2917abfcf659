"""Times ageflax's train step under each speed lever, side by side, in one run.

  python scripts/benchmark_levers.py                   # the 45-minute recipe's setting
  python scripts/benchmark_levers.py --levers=baseline,bfloat16,xla_onednn --steps=3

Prints one row per lever (`levers.LEVERS`: compute dtype, conv_impl, batch size, matmul
precision, XLA CPU flags) with the step's images/s, median and min-max of the rounds, and
its ratio to the baseline: the config as it is (default configs/cpu45.py, with the
benchmark's Dense(1) + MSE head as in scripts/benchmark.py). XLA-flag levers run in a child
process each, as XLA reads its flags once, when JAX starts. Compilation dominates: the
defaults compile 13 steps, about 10 minutes on 2 busy CPU cores; --levers picks fewer. A
shared machine's figures are noisy, so compare the ratios of one run.
"""

import sys

from absl import flags
from ml_collections import config_flags

from ageflax.cli import common
from ageflax.cli import flags as shared_flags
from ageflax.devtools.bench import benchmarks, levers

_CONFIG = config_flags.DEFINE_config_file(
    "config", common.experiment_file("cpu45.py"), "The baseline's config file.",
    lock_config=True)
_LEVERS = flags.DEFINE_list("levers", list(levers.LEVERS), "Levers to time, in this order.")
_MODEL = flags.DEFINE_string("model", "", "model.name; default: the config's.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 0, "data.image_size; 0: the config's.")
_BATCH_SIZE = shared_flags.define_batch_size("train.batch_size; 0: the config's.", default=0)
_REPEATS = flags.DEFINE_integer("repeats", 2, "Timed rounds of each lever beside the baseline.",
                                lower_bound=1)
_STEPS = flags.DEFINE_integer("steps", 2, "Train steps per timed round.", lower_bound=1)
_WARMUP_STEPS = flags.DEFINE_integer("warmup_steps", 1, "Untimed steps after compilation.",
                                     lower_bound=1)
_OUTPUT = shared_flags.define_output_file("Where to write the table as JSON (default: none).")
_CHILD = flags.DEFINE_bool("child", False, "Internal: time the baseline alone and print its "
                           f"figure on a '{levers.CHILD_PREFIX}' line (an XLA-flag lever).")


@common.exit_on_user_error
def main(argv: list[str]) -> None:
  common.refuse_arguments(argv)
  config = benchmarks.configure(_CONFIG.value, model=_MODEL.value, image_size=_IMAGE_SIZE.value,
                                batch_size=_BATCH_SIZE.value)
  timing = levers.Timing(_REPEATS.value, _STEPS.value, _WARMUP_STEPS.value)
  if _CHILD.value:
    print(levers.child_figure_line(config, timing))
    return
  table = levers.measure(config, _LEVERS.value, timing, _child_command())
  print(table.text())
  if _OUTPUT.value:
    table.write_json(_OUTPUT.value)
    print(f"wrote {_OUTPUT.value}")


def _child_command() -> list[str]:
  """This program again, on the same config and sizes, timing the baseline alone."""
  configs = [arg for arg in sys.argv[1:] if arg.startswith("--config")]
  return [sys.executable, sys.argv[0], *configs, f"--model={_MODEL.value}",
          f"--image_size={_IMAGE_SIZE.value}", f"--batch_size={_BATCH_SIZE.value}",
          f"--repeats={_REPEATS.value}", f"--steps={_STEPS.value}",
          f"--warmup_steps={_WARMUP_STEPS.value}", "--child"]


def run() -> None:
  """The console entry point: parses the flags and runs main."""
  common.run(main, __name__)
