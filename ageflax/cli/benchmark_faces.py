"""Measures the face normaliser on a data folder: photos/s per core, faces found, doubles.

  python scripts/benchmark_faces.py --data_dir=../shared/data/cacd [--num_photos=1000]

Run it on an otherwise idle machine: the rate is one thread's, i.e. per core.
"""

import cv2
from absl import app, flags

from ageflax.cli import common
from ageflax.cli import flags as shared_flags
from ageflax.config import defaults
from ageflax.data import faces, layouts
from ageflax.devtools.bench import faces as face_bench

_DATA_DIR = shared_flags.define_data_dir("Folder of photos (any layout).", required=True)
_NUM_PHOTOS = flags.DEFINE_integer("num_photos", 1000, "Photos to measure, evenly spaced.")


@common.exit_on_user_error
def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  cv2.setNumThreads(1)  # one core: the rate is per core
  data = defaults.get_config().data
  data.dir = _DATA_DIR.value
  records = layouts.read_faces(data).records
  chosen = records[::max(1, len(records) // _NUM_PHOTOS.value)][:_NUM_PHOTOS.value]
  framing = data.face_framing
  normaliser = faces.FaceNormaliser(data.image_size, framing.min_face_fraction, framing.min_score)
  print(f"{_DATA_DIR.value}: {face_bench.measure(chosen, normaliser).describe()}")


def run() -> None:
  """The console entry point: parses the flags and runs main."""
  app.run(main, flags_parser=common.parse_flags)
