"""Writes a data folder, in any layout, once as TFDS records for cluster jobs.

  python scripts/prepare_tfds.py --format=utkface --manual_dir=UTKFace/ --output_dir=records/

The folder is checked and split exactly as training would check and split it (the
split settings and layout options come from the `data` section of --config, which
defaults to configs/resnet50.py); the records keep each photo's original bytes (with
data.face_framing.mode='align', the photo framed by the face normaliser at data.image_size)
as ArrayRecord files, which training reads by index. Train from them with
--config.data.source=tfds --config.data.dir=<the folder printed> (and the same framing).
"""

import pathlib
import time

from absl import flags
from ml_collections import config_flags

from ageflax.cli import common
from ageflax.cli import flags as shared_flags
from ageflax.config import schema
from ageflax.core import run_files
from ageflax.core.errors import DataError
from ageflax.data import label_rows, layouts, tfds_records

_CONFIG = config_flags.DEFINE_config_file(
    "config", common.experiment_file("resnet50.py"),
    "Config whose `data` section sets the layout options, checks and split.")
_FORMAT = flags.DEFINE_enum("format", None, ["auto", *layouts.FORMATS],
                            "Layout of --manual_dir; default: the config's data.format.")
_MANUAL_DIR = flags.DEFINE_string("manual_dir", None, "The data folder to read.")
_OUTPUT_DIR = shared_flags.define_output_dir("Where to write the records.", required=True)
_NAME = flags.DEFINE_string("name", None,
                            "Name of this prepared variant; default: the layout's name.")
_NUM_SHARDS = flags.DEFINE_integer("num_shards", None,
                                   "Files per split; default: TFDS's (64 MiB to 1 GiB each).")
flags.mark_flags_as_required(["manual_dir"])


@common.exit_on_user_error
def main(argv: list[str]) -> None:
  common.refuse_arguments(argv)
  data = _CONFIG.value.data
  if _FORMAT.value:
    data.format = _FORMAT.value
  schema.check(_CONFIG.value)
  manual_dir = pathlib.Path(_MANUAL_DIR.value)
  if not manual_dir.is_dir():
    raise DataError(f"--manual_dir {manual_dir} does not exist")
  if data.format == "auto":
    data.format = layouts.detect_format(manual_dir)
  started = time.perf_counter()
  builder = tfds_records.write_records(data, str(manual_dir), _OUTPUT_DIR.value,
                                       _NAME.value or data.format, _NUM_SHARDS.value)
  splits = builder.info.metadata["splits"]
  skipped = builder.info.metadata["skipped"]
  counts = ", ".join(f"{splits[name]['count']:,} {name}" for name in label_rows.SPLITS)
  print(f"wrote {counts} photos "
        f"({len(skipped):,} skipped) in {time.perf_counter() - started:.0f}s to "
        f"{builder.data_dir}")
  if skipped:
    print(f"skipped rows: {builder.data_dir}/{run_files.SKIPPED_ROWS}")
  print(f"train with: --config.data.source=tfds --config.data.dir={builder.data_dir}")



def run() -> None:
  """The console entry point: parses the flags and runs main."""
  common.run(main, __name__)
