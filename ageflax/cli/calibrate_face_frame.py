"""Measures the canonical face frame on a folder of framed photos (the real faces).

  python scripts/calibrate_face_frame.py --data_dir=../shared/data/faces [--num_photos=500]

Runs the face normaliser's detector on evenly spaced photos of the folder and prints the
mean position of the five landmarks as fractions of the side (the template that
`ageflax.data.face_frame.CANONICAL_LANDMARKS` holds), their spread, and how far the photos'
landmarks sit from the template before and after the framing warp.
"""

import sys

import tensorflow as tf
from absl import flags

from ageflax.cli import common
from ageflax.cli import flags as shared_flags
from ageflax.data import faces, image_files, tf_images

_DATA_DIR = shared_flags.define_data_dir("Folder of framed photos (any layout).",
                                         required=True)
_NUM_PHOTOS = flags.DEFINE_integer("num_photos", 500, "Photos to measure, evenly spaced.")


@common.exit_on_user_error
def main(argv: list[str]) -> None:
  common.refuse_arguments(argv)
  data, chosen = common.evenly_spaced_photos(_DATA_DIR.value, _NUM_PHOTOS.value)
  normaliser = faces.FaceNormaliser.from_config(data)
  measured = faces.calibrate_template(normaliser, _upright(chosen))
  print(f"face found in {measured['with_face']} of {measured['photos']} photos")
  names = ("eye (photo's left)", "other eye", "nose tip", "mouth corner (left)", "other corner")
  for name, (x, y), (sx, sy) in zip(names, measured["template"], measured["spread"], strict=True):
    print(f"  {name:20s} x {x:.4f} ± {sx:.4f}   y {y:.4f} ± {sy:.4f}")
  print(f"mean landmark distance to the template, as a share of the side: "
        f"{measured['distance_before']:.4f} as the photos are, "
        f"{measured['distance_after']:.4f} after the framing warp")


def _upright(records):
  """The decodable photos, upright; the others are named on stderr and left out."""
  for record in records:
    try:
      image = tf_images.decode_image(tf.io.read_file(record.path))
      yield tf_images.apply_exif_orientation(
          image, image_files.exif_orientation(record.path)).numpy()
    except tf.errors.OpError as e:
      print(f"{record.path}: left out, cannot decode ({e.message.splitlines()[0]})",
            file=sys.stderr)


def run() -> None:
  """The console entry point: parses the flags and runs main."""
  common.run(main, __name__)
