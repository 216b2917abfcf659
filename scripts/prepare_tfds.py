"""Writes a data folder, in any layout, once as TFDS records for cluster jobs.

  python scripts/prepare_tfds.py --format=utkface --manual_dir=UTKFace/ --data_dir=records/

The folder is checked and split exactly as training would check and split it (the
split settings and layout options come from the `data` section of --config, which
defaults to configs/resnet50.py); the records keep each photo's original bytes. Train
from them with --config.data.source=tfds --config.data.dir=<the folder printed>.
"""

from ageflax.cli import prepare_tfds as prepare_tfds_cli

if __name__ == "__main__":
  prepare_tfds_cli.run()
