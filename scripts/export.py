"""Exports a trained run as a TensorFlow SavedModel (jax2tf) for TF Serving or any TF runtime.

  python scripts/export.py --workdir=runs/r50 --out=exported/ [--step=N] [--flip_tta]

Signatures: `serving_default` / `predict_images` (float32 RGB images [N, S, S, 3] in
[0, 255]) and `predict_image_bytes` (the encoded files [N]); both return `age`, and for a
dex-head run `age_spread` and `p_under_legal_age`. See ageflax/serving.py.
"""

import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import app, flags

from ageflax import cli, serving
from ageflax.errors import ConfigError
from ageflax.prediction import Predictor

_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory written by train.py.")
_OUT = flags.DEFINE_string("out", None, "Folder to write the SavedModel to (new or empty).")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step; default: the best one.")
_FLIP_TTA = flags.DEFINE_bool("flip_tta", False,
                              "Bake flip test-time augmentation into the exported model.")
flags.mark_flags_as_required(["workdir", "out"])


@cli.exit_on_user_error
def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  out = _OUT.value
  if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
    raise ConfigError(f"--out={out} exists and is not an empty folder; name a new one")
  predictor = Predictor.from_workdir(_WORKDIR.value, _STEP.value)
  metadata = serving.export_saved_model(predictor, out, _FLIP_TTA.value)
  print(f"exported {predictor.describe()} to {out}: signatures serving_default/predict_images "
        f"(images float32 [N, {metadata['image_size']}, {metadata['image_size']}, 3]) and "
        f"predict_image_bytes (image_bytes string [N]) -> {', '.join(metadata['outputs'])}")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
