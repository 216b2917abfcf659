"""Exports a trained run as a TensorFlow SavedModel (jax2tf) for TF Serving or any TF runtime.

  python scripts/export.py --workdir=runs/r50 --output_dir=exported/ [--step=N] [--flip_tta]

Signatures: `serving_default` / `predict_images` (float32 RGB images [N, S, S, 3] in
[0, 255]) and `predict_image_bytes` (the encoded files [N]); both return `age`, and for a
dex-head run `age_spread` and `p_under_legal_age`. See ageflax/till/savedmodel.py.
"""

import os

from ageflax.cli import common
from ageflax.cli import flags as shared_flags
from ageflax.core.errors import ConfigError
from ageflax.till import savedmodel
from ageflax.till.predictor import Predictor

_WORKDIR = shared_flags.define_workdir()
_OUTPUT_DIR = shared_flags.define_output_dir("Folder to write the SavedModel to (new or empty).",
                                             required=True)
_STEP = shared_flags.define_step()
_FLIP_TTA = shared_flags.define_flip_tta("Bake flip test-time augmentation into the exported "
                                         "model.")


@common.exit_on_user_error
def main(argv: list[str]) -> None:
  common.refuse_arguments(argv)
  out = _OUTPUT_DIR.value
  if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
    raise ConfigError(f"--output_dir={out} exists and is not an empty folder; name a new one")
  predictor = Predictor.from_workdir(_WORKDIR.value, _STEP.value)
  metadata = savedmodel.export_saved_model(predictor, out, _FLIP_TTA.value)
  print(f"exported {predictor.describe()} to {out}: signatures serving_default/predict_images "
        f"(images float32 [N, {metadata['image_size']}, {metadata['image_size']}, 3]) and "
        f"predict_image_bytes (image_bytes string [N]) -> {', '.join(metadata['outputs'])}")



def run() -> None:
  """The console entry point: parses the flags and runs main."""
  common.run(main, __name__)
