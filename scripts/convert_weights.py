"""Converts ImageNet ResNet weights from Keras or torchvision into a backbone to train from.

  python scripts/convert_weights.py --source=keras \
      --input=resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5 --output=weights/keras_r50
  python scripts/convert_weights.py --source=torchvision --input=resnet50-0676ba61.pth \
      --output=weights/torchvision_r50

Writes OUTPUT/backbone.npz and backbone.json, and prints the config overrides that train
from it (`--config.model.init_from=OUTPUT` plus the block style, input normalisation and
BatchNorm epsilon the weights need). Reads local files only; downloads nothing.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import app, flags

from ageflax import cli, convert

_SOURCE = flags.DEFINE_enum("source", None, list(convert.SOURCES),
                            "keras: a Keras applications .h5 file; torchvision: a state dict.")
_INPUT = flags.DEFINE_string("input", None, "The weights file to convert.")
_OUTPUT = flags.DEFINE_string("output", None, "Folder to write the backbone to.")
_MODEL = flags.DEFINE_string("model", "resnet50", "The architecture the weights are for.")
flags.mark_flags_as_required(["source", "input", "output"])

_CONVERTERS = {"keras": convert.convert_keras, "torchvision": convert.convert_torchvision}


@cli.exit_on_user_error
def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  backbone = _CONVERTERS[_SOURCE.value](_INPUT.value, _MODEL.value)
  convert.save_backbone(backbone, _OUTPUT.value, converted_from=_INPUT.value)
  count = sum(value.size for value in backbone.arrays["params"].values())
  overrides = " ".join(f"--config.model.{field}={value}"
                       for field, value in {"init_from": _OUTPUT.value,
                                            **backbone.model_fields}.items())
  print(f"wrote {_OUTPUT.value}: {backbone.source} {_MODEL.value} backbone, {count:,} "
        f"parameters; train from it with {overrides}")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
