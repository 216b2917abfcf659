"""Exports a trained run for serving: a TensorFlow SavedModel (jax2tf) or an ONNX graph.

  python scripts/export.py --workdir=runs/r50 --output_dir=exported/age [--format=savedmodel]
      [--version=N] [--step=N] [--flip_tta]
  python scripts/export.py --workdir=runs/r50 --output_dir=exported/age-onnx --format=onnx

savedmodel (for TF Serving or any TF runtime; serialised for CPU and CUDA) writes version N of
the model under TF Serving's base path: OUTPUT_DIR/N/ (the next free number, or --version).
Signatures: `serving_default` / `predict_images` (float32 RGB images [N, S, S, 3] in
[0, 255]) and `predict_image_bytes` (the encoded files [N], turned upright by their EXIF
orientation); see ageflax/till/savedmodel.py. onnx (for ONNX Runtime, no JAX or TensorFlow)
writes OUTPUT_DIR/model.onnx, input `images` as above; see ageflax/till/onnx_export.py.
Both return `age`, and for a dex-head run `age_spread` and `p_under_legal_age`, and write
`ageflax_export.json` beside the model: what it is, the till's trust limits and the ID-check
policy (the run's calibrated one, WORKDIR/id_policy.json, else its config's fixed rule).
"""

import os

from absl import flags

from ageflax.cli import common
from ageflax.cli import flags as shared_flags
from ageflax.core.errors import ConfigError
from ageflax.till import export_metadata
from ageflax.till.id_policy import IdCheckPolicy
from ageflax.till.predictor import Predictor

_WORKDIR = shared_flags.define_workdir()
_OUTPUT_DIR = shared_flags.define_output_dir(
    "savedmodel: the model's base folder (TF Serving's base path), version folders in it; "
    "onnx: a new or empty folder.", required=True)
_FORMAT = flags.DEFINE_enum("format", "savedmodel", export_metadata.KINDS,
                            "savedmodel (TF Serving, any TF runtime) or onnx (ONNX Runtime).")
_VERSION = flags.DEFINE_integer("version", None, "savedmodel: the version folder to write; "
                                "default: the next free number (1 in a new folder).")
_STEP = shared_flags.define_step()
_FLIP_TTA = shared_flags.define_flip_tta("Bake flip test-time augmentation into the exported "
                                         "model.")


@common.exit_on_user_error
def main(argv: list[str]) -> None:
  common.refuse_arguments(argv)
  if _FORMAT.value == "onnx":
    _export_onnx()
  else:
    _export_saved_model()


def _restored() -> tuple[Predictor, IdCheckPolicy]:
  """The run's checkpoint and the ID-check policy its export carries."""
  predictor = Predictor.from_workdir(_WORKDIR.value, _STEP.value)
  policy = export_metadata.export_policy(_WORKDIR.value, predictor.step,
                                         predictor.config.eval, _FLIP_TTA.value)
  return predictor, policy


def _export_saved_model() -> None:
  from ageflax.till import savedmodel  # TensorFlow, only for this format

  common.hide_gpus_from_tensorflow()
  folder = savedmodel.version_folder(_OUTPUT_DIR.value, _VERSION.value)
  predictor, policy = _restored()
  metadata = savedmodel.export_saved_model(predictor, folder, _FLIP_TTA.value, policy)
  size = metadata["image_size"]
  print(f"exported {predictor.describe()} to {folder} (version {os.path.basename(folder)} "
        f"for TF Serving, CPU and CUDA): signatures serving_default/predict_images (images "
        f"float32 [N, {size}, {size}, 3]) and predict_image_bytes (image_bytes string [N]) -> "
        f"{', '.join(metadata['outputs'])}; {policy.describe()}")


def _export_onnx() -> None:
  from ageflax.till import onnx_export  # ONNX, only for this format

  out = _OUTPUT_DIR.value
  if _VERSION.value is not None:
    raise ConfigError("--version: version folders are TF Serving's; use it with "
                      "--format=savedmodel")
  if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
    raise ConfigError(f"--output_dir={out} exists and is not an empty folder; name a new one")
  predictor, policy = _restored()
  metadata = onnx_export.export_onnx(predictor, out, _FLIP_TTA.value, policy)
  size = metadata["image_size"]
  print(f"exported {predictor.describe()} to {os.path.join(out, metadata['onnx_file'])} "
        f"(ONNX opset {onnx_export.OPSET}): images float32 [N, {size}, {size}, 3] -> "
        f"{', '.join(metadata['outputs'])}; {policy.describe()}")


def run() -> None:
  """The console entry point: parses the flags and runs main."""
  common.run(main, __name__)
