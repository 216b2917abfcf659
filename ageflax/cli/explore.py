"""Data overview of a face-age folder, the first look before training.

  python scripts/explore.py ../shared/data/faces --output_dir /tmp/explore_faces

Counts the photos, missing values, ages, age bands, image sizes and formats, finds
unreadable files and exact duplicates, lists every problem at once, prints a summary and
writes OUT/age_histogram.png, OUT/samples.png, OUT/summary.json, OUT/problems.csv and
OUT/report.md. The layout is told from the files unless --format names it.
"""


from absl import flags

from ageflax.cli import common
from ageflax.cli import flags as shared_flags
from ageflax.config import defaults
from ageflax.core.errors import ConfigError
from ageflax.data import layouts
from ageflax.devtools.explore import overview, report

_OUTPUT_DIR = shared_flags.define_output_dir("Folder for the plots, summary.json and report.md.",
                                             required=True)
_FORMAT = flags.DEFINE_enum("format", "auto", ["auto", *layouts.FORMATS],
                            "Layout of DIR (data.format); auto: told from the files.")
_CSV_PATH = flags.DEFINE_string("csv_path", None, "format=csv: the labels CSV (data.csv.path).")
_CSV_FILE_COLUMN = flags.DEFINE_string("csv_file_column", None,
                                       "format=csv: column of image paths (data.csv.file_column).")
_CSV_AGE_COLUMN = flags.DEFINE_string("csv_age_column", None,
                                      "format=csv: column of ages (data.csv.age_column).")
_CSV_IMAGE_ROOT = flags.DEFINE_string("csv_image_root", None,
                                      "format=csv: folder the image paths are relative to "
                                      "(data.csv.image_root).")
_APPA_TARGET = flags.DEFINE_enum("appa_target", None, list(layouts.APPA_TARGETS),
                                 "format=appa_real: the age to study (data.appa_real.target).")
_WORKERS = flags.DEFINE_integer("workers", 2, "Threads that read, hash and decode the images.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed choosing the sample photos.")


@common.exit_on_user_error
def main(argv: list[str]) -> None:
  if len(argv) != 2:
    raise ConfigError("give one data folder: scripts/explore.py DIR --output_dir OUT"
                      + (f" (got {' '.join(argv[1:])})" if len(argv) > 2 else ""))
  summary = overview.explore(_data_config(argv[1]), _OUTPUT_DIR.value, workers=_WORKERS.value,
                            seed=_SEED.value, progress=True)
  print(report.format_summary(summary, _OUTPUT_DIR.value))


def _data_config(directory: str):
  """The default data config pointed at DIR, with the flags that were given laid over it."""
  config = defaults.get_config().data
  config.dir = directory
  config.format = _FORMAT.value
  overrides = {("csv", "path"): _CSV_PATH, ("csv", "file_column"): _CSV_FILE_COLUMN,
               ("csv", "age_column"): _CSV_AGE_COLUMN, ("csv", "image_root"): _CSV_IMAGE_ROOT,
               ("appa_real", "target"): _APPA_TARGET}
  for (section, field), flag in overrides.items():
    if flag.value is not None:
      config[section][field] = flag.value
  return config



def run() -> None:
  """The console entry point: parses the flags and runs main."""
  common.run(main, __name__)
