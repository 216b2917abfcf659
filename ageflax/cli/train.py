"""Trains an age regressor: python train.py --config=configs/resnet50.py --workdir=runs/r50."""

from absl import flags
from ml_collections import config_flags

from ageflax.cli import common
from ageflax.cli import flags as shared_flags
from ageflax.train import loop

_CONFIG = config_flags.DEFINE_config_file("config", None, "Training config file.",
                                          lock_config=True)
_WORKDIR = shared_flags.define_workdir("Run directory: checkpoints, logs, summaries.")
_ALLOW_CONFIG_CHANGE = flags.DEFINE_bool(
    "allow_config_change", False,
    "Resume a workdir even though its saved config differs in fields that change results.")
flags.mark_flags_as_required(["config"])
shared_flags.define_distributed_flags()


@common.exit_on_user_error
def main(argv: list[str]) -> None:
  common.refuse_arguments(argv)
  common.initialize_distributed_from_flags()
  loop.train_and_evaluate(_CONFIG.value, _WORKDIR.value, _ALLOW_CONFIG_CHANGE.value)


def run() -> None:
  """The console entry point: parses the flags and runs main."""
  common.run(main, __name__)
