"""Measures how the face detector's boxes map to the training photos' crops.

  python scripts/calibrate_face_crop.py --data_dir=../shared/data/faces [--num_photos=500]

Runs the Haar cascade of `scripts/predict.py --detect_faces` on evenly spaced training
photos (aligned face crops, any layout) and prints the median crop scale (photo side / box
side) and shift (photo centre below the box centre, in box heights): the values for
--face_crop_scale and --face_crop_shift, whose defaults came from this script (README).
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import tensorflow as tf
from absl import app, flags

from ageflax import cli, face_detection, image_files, layouts, preprocessing
from configs import resnet50

_DATA_DIR = flags.DEFINE_string("data_dir", None, "Folder of training photos (any layout).")
_NUM_PHOTOS = flags.DEFINE_integer("num_photos", 500, "Photos to measure, evenly spaced.")
flags.mark_flags_as_required(["data_dir"])


@cli.exit_on_user_error
def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  data = resnet50.get_config().data
  data.dir = _DATA_DIR.value
  records = layouts.read_faces(data).records
  chosen = records[::max(1, len(records) // _NUM_PHOTOS.value)][:_NUM_PHOTOS.value]
  measured = face_detection.calibrate(face_detection.FaceDetector(), _upright(chosen))
  print(f"face found in {measured['with_face']} of {measured['photos']} photos; "
        f"--face_crop_scale={measured['crop_scale']:.2f} "
        f"--face_crop_shift={measured['crop_shift']:.2f}")


def _upright(records):
  """The decodable photos, upright; the others are named on stderr and left out."""
  for record in records:
    try:
      image = preprocessing.decode_image(tf.io.read_file(record.path))
      yield preprocessing.apply_exif_orientation(
          image, image_files.exif_orientation(record.path)).numpy()
    except tf.errors.OpError as e:
      print(f"{record.path}: left out, cannot decode ({e.message.splitlines()[0]})",
            file=sys.stderr)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
