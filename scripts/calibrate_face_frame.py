"""Measures the canonical face frame on a folder of framed photos (the real faces).

  python scripts/calibrate_face_frame.py --data_dir=../shared/data/faces [--num_photos=500]
"""

from ageflax.cli import calibrate_face_frame as calibrate_face_frame_cli

if __name__ == "__main__":
  calibrate_face_frame_cli.run()
