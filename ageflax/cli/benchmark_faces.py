"""Measures the face normaliser on a data folder: photos/s per core, faces found, doubles.

  python scripts/benchmark_faces.py --data_dir=../shared/data/cacd [--num_photos=1000]

Run it on an otherwise idle machine: the rate is one thread's, i.e. per core.
"""

import cv2
from absl import flags

from ageflax.cli import common
from ageflax.cli import flags as shared_flags
from ageflax.data import faces
from ageflax.devtools.bench import faces as face_bench

_DATA_DIR = shared_flags.define_data_dir("Folder of photos (any layout).", required=True)
_NUM_PHOTOS = flags.DEFINE_integer("num_photos", 1000, "Photos to measure, evenly spaced.")


@common.exit_on_user_error
def main(argv: list[str]) -> None:
  common.refuse_arguments(argv)
  cv2.setNumThreads(1)  # one core: the rate is per core
  data, chosen = common.evenly_spaced_photos(_DATA_DIR.value, _NUM_PHOTOS.value)
  normaliser = faces.FaceNormaliser.from_config(data)
  print(f"{_DATA_DIR.value}: {face_bench.measure(chosen, normaliser).describe()}")


def run() -> None:
  """The console entry point: parses the flags and runs main."""
  common.run(main, __name__)
