"""Measures the canonical face frame on a folder of framed photos (the real faces).

The entry point `ageflax.cli.calibrate_face_frame` (its docstring and `--help` say more).
"""

from ageflax.cli import calibrate_face_frame as calibrate_face_frame_cli

if __name__ == "__main__":
  calibrate_face_frame_cli.run()
