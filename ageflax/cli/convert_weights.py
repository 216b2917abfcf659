"""Converts ImageNet ResNet weights from Keras or torchvision into a backbone to train from.

  python scripts/convert_weights.py --source=keras \
      --input=resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5 --output_dir=weights/keras_r50
  python scripts/convert_weights.py --source=torchvision --input=resnet50-0676ba61.pth \
      --output_dir=weights/torchvision_r50

Writes OUTPUT_DIR/backbone.npz and backbone.json, and prints the config overrides that train
from it (`--config.model.init_from=OUTPUT_DIR` plus the block style, input normalisation and
BatchNorm epsilon the weights need). Reads local files only; downloads nothing.
"""


from absl import flags

from ageflax.cli import common
from ageflax.cli import flags as shared_flags
from ageflax.model import pretrained

_SOURCE = flags.DEFINE_enum("source", None, list(pretrained.SOURCES),
                            "keras: a Keras applications .h5 file; torchvision: a state dict.")
_INPUT = flags.DEFINE_string("input", None, "The weights file to convert.")
_OUTPUT_DIR = shared_flags.define_output_dir("Folder to write the backbone to.", required=True)
_MODEL = flags.DEFINE_string("model", "resnet50", "The architecture the weights are for.")
flags.mark_flags_as_required(["source", "input"])

_CONVERTERS = {"keras": pretrained.convert_keras, "torchvision": pretrained.convert_torchvision}


@common.exit_on_user_error
def main(argv: list[str]) -> None:
  common.refuse_arguments(argv)
  backbone = _CONVERTERS[_SOURCE.value](_INPUT.value, _MODEL.value)
  pretrained.save_backbone(backbone, _OUTPUT_DIR.value, converted_from=_INPUT.value)
  count = sum(value.size for value in backbone.arrays["params"].values())
  overrides = " ".join(f"--config.model.{field}={value}"
                       for field, value in {"init_from": _OUTPUT_DIR.value,
                                            **backbone.model_fields}.items())
  print(f"wrote {_OUTPUT_DIR.value}: {backbone.source} {_MODEL.value} backbone, {count:,} "
        f"parameters; train from it with {overrides}")



def run() -> None:
  """The console entry point: parses the flags and runs main."""
  common.run(main, __name__)
