"""Trains an age regressor: python train.py --config=configs/resnet50.py --workdir=runs/r50."""

from absl import app, flags
from ml_collections import config_flags

from ageflax import cli, trainer

_CONFIG = config_flags.DEFINE_config_file("config", None, "Training config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory: checkpoints, logs, summaries.")
_ALLOW_CONFIG_CHANGE = flags.DEFINE_bool(
    "allow_config_change", False,
    "Resume a workdir even though its saved config differs in fields that change results.")
flags.mark_flags_as_required(["config", "workdir"])
cli.define_distributed_flags()


@cli.exit_on_user_error
def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  cli.initialize_distributed_from_flags()
  trainer.train_and_evaluate(_CONFIG.value, _WORKDIR.value, _ALLOW_CONFIG_CHANGE.value)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
