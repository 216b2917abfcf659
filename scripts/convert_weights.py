"""Converts ImageNet ResNet weights from Keras or torchvision into a backbone to train from.

  python scripts/convert_weights.py --source=keras       --input=resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5 --output=weights/keras_r50
  python scripts/convert_weights.py --source=torchvision --input=resnet50-0676ba61.pth       --output=weights/torchvision_r50

Writes OUTPUT/backbone.npz and backbone.json, and prints the config overrides that train
from it (`--config.model.init_from=OUTPUT` plus the block style, input normalisation and
BatchNorm epsilon the weights need). Reads local files only; downloads nothing.
"""

from ageflax.cli import convert_weights as convert_weights_cli

if __name__ == "__main__":
  convert_weights_cli.run()
