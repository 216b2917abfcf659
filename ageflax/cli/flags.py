"""The flags several entry points share: one definer per concept, one spelling each.

A run directory is `--workdir`, a folder of photos (or prepared records) read is
`--data_dir`, a folder an entry point writes is `--output_dir` and a file it writes is
`--output`. Each definer returns the flag's holder; its help text may be made to fit.
"""

from absl import flags

from ageflax.data import layouts


def define_workdir(help: str = "Run directory written by train.py.") -> flags.FlagHolder[str]:
  """--workdir (required)."""
  return flags.DEFINE_string("workdir", None, help, required=True)


def define_data_dir(help: str, default: str | None = None,
                    required: bool = False) -> flags.FlagHolder[str]:
  """--data_dir, a folder to read: photos in any layout, or prepared records."""
  return flags.DEFINE_string("data_dir", default, help, required=required)


def define_step() -> flags.FlagHolder[int]:
  """--step, the checkpoint to restore (default: the run's best)."""
  return flags.DEFINE_integer("step", None, "Checkpoint step; default: the best one.")


def define_batch_size(help: str, default: int | None = None) -> flags.FlagHolder[int]:
  """--batch_size, photos per model call over all devices."""
  return flags.DEFINE_integer("batch_size", default, help)


def define_flip_tta(help: str = "Predict each photo as the mean over it and its mirror image."
                    ) -> flags.FlagHolder[bool]:
  """--flip_tta, flip test-time augmentation."""
  return flags.DEFINE_bool("flip_tta", False, help)


def define_output_dir(help: str, required: bool = False) -> flags.FlagHolder[str]:
  """--output_dir, a folder the entry point writes."""
  return flags.DEFINE_string("output_dir", None, help, required=required)


def define_output_file(help: str, required: bool = False) -> flags.FlagHolder[str]:
  """--output, a file the entry point writes."""
  return flags.DEFINE_string("output", None, help, required=required)


def define_id_check_ages() -> tuple[flags.FlagHolder[float], flags.FlagHolder[float]]:
  """--legal_age and --challenge_age of the ID check (default: the run's eval section)."""
  legal = flags.DEFINE_float("legal_age", None, "The youngest age that may buy alcohol; "
                             "default: the run's eval.legal_age (18).")
  challenge = flags.DEFINE_float("challenge_age", None, "Ask for ID when the estimate is under "
                                 "this; default: the run's eval.challenge_age (25).")
  return legal, challenge


def define_group_fields() -> tuple[flags.FlagHolder[str], flags.FlagHolder[str]]:
  """--group_columns and --group_from_file_names: the group fields of a per-group breakdown
  (default: the run's data.group_columns and data.group_from_file_names)."""
  columns = flags.DEFINE_string("group_columns", None, "Comma-separated labels CSV columns to "
                                "report errors per group by, e.g. gender,site; default: the "
                                "run's data.group_columns.")
  from_names = flags.DEFINE_enum("group_from_file_names", None,
                                 list(layouts.FILE_NAME_GROUPS), "'utkface': gender and race "
                                 "from AGE_GENDER_RACE_DATETIME.jpg names ('' off); default: "
                                 "the run's data.group_from_file_names.")
  return columns, from_names


def define_distributed_flags() -> None:
  """--coordinator_address, --num_processes, --process_id (for jobs outside SLURM)."""
  flags.DEFINE_string("coordinator_address", "",
                      "host:port of process 0 for a multi-host job; empty: single host "
                      "or SLURM auto-detection.")
  flags.DEFINE_integer("num_processes", 0, "Processes in the multi-host job.")
  flags.DEFINE_integer("process_id", -1, "This process's index in the multi-host job.")
