"""ImageNet ResNet weights from Keras and torchvision, converted to ageflax's layout.

`convert_keras` reads a Keras applications weights file (the HDF5
`resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5`) and `convert_torchvision` a
torchvision state dict (`.pth`). Each returns a `Backbone`: every parameter and BatchNorm
statistic of the model except the head, and the model fields the weights only work with
(block style, input normalisation, BatchNorm epsilon). `save_backbone` writes it as
DIR/backbone.npz + DIR/backbone.json; `config.model.init_from=DIR` starts training from it
(`load_backbone`). h5py and torch are imported only inside the readers, so the step
module, which loads backbones, never imports TensorFlow or torch. Nothing here
downloads anything.
"""

import dataclasses
import json
import os
from collections.abc import Callable, Mapping

import numpy as np
from flax import nnx, traverse_util

from ageflax.core import atomic_files
from ageflax.core.errors import ConfigError, DataError
from ageflax.model import architectures, resnet

WEIGHTS_FILE = "backbone.npz"
INFO_FILE = "backbone.json"
# The model fields that each source's weights fix, and their values.
SOURCES = {
    "keras": {"block_style": "keras_v1", "input_normalization": "caffe", "bn_epsilon": 1.001e-5},
    "torchvision": {"block_style": "v1.5", "input_normalization": "imagenet",
                    "bn_epsilon": 1e-5},
}
_COLLECTIONS = {"params": nnx.Param, "batch_stats": nnx.BatchStat}


@dataclasses.dataclass(frozen=True)
class Backbone:
  """Converted weights of everything but the head, and the model fields they need.

  Attributes:
    arrays: {collection: {module path: float32 array}}, collections 'params' and
      'batch_stats', paths as in the NNX model (('blocks', 0, 'conv1', 'kernel')).
    model_fields: `model.name` and the fields of `SOURCES[source]`.
    source: 'keras' or 'torchvision'.
  """

  arrays: dict[str, dict[tuple, np.ndarray]]
  model_fields: dict[str, object]
  source: str


def backbone_shapes(name: str, block_style: str) -> dict[str, dict[tuple, tuple[int, ...]]]:
  """{collection: {path: shape}} of the `name` model's leaves, head excluded."""
  architecture = architectures.get(name)
  abstract = nnx.eval_shape(lambda: resnet.ResNetRegressor(
      architecture, rngs=nnx.Rngs(0), block_style=block_style))
  return {collection: {path: tuple(leaf.get_value().shape)
                       for path, leaf in nnx.to_flat_state(nnx.state(abstract, kind))
                       if path[0] != "head"}
          for collection, kind in _COLLECTIONS.items()}


def convert_keras(path: str, name: str = "resnet50") -> Backbone:
  """Converts a Keras applications ResNet weights file (HDF5, with or without its top)."""
  return _convert(_read_keras_h5(path), path, "keras", name)


def convert_torchvision(path: str, name: str = "resnet50") -> Backbone:
  """Converts a torchvision ResNet state dict (`torch.save(model.state_dict())`, .pth)."""
  return _convert(_read_torch_state_dict(path), path, "torchvision", name)


def _read_keras_h5(path: str) -> dict[str, np.ndarray]:
  """{'layer/weight': array} of a Keras HDF5 weights file (Keras 2's or 3's legacy layout)."""
  import h5py  # only here: the rest of ageflax does not need it

  _check_is_file(path)
  try:
    file = h5py.File(path, "r")
  except OSError as e:
    raise DataError(f"{path} is not an HDF5 file ({e})") from e
  with file:
    root = file.get("model_weights", file)  # a whole saved model keeps its weights there
    if not any(key.startswith("layer_names") for key in root.attrs):
      raise DataError(f"{path} is not a Keras HDF5 weights file (no layer_names attribute; "
                      "Keras 3 .weights.h5 files are not supported)")
    weights = {}

    def collect(name: str, item) -> None:
      # conv1_conv/conv1_conv/kernel:0 (Keras 2) or conv1_conv/conv1_conv/kernel (Keras 3)
      if isinstance(item, h5py.Dataset):
        layer, weight = name.split("/")[0], name.split("/")[-1].removesuffix(":0")
        weights[f"{layer}/{weight}"] = item[()]

    root.visititems(collect)
  return weights


def _read_torch_state_dict(path: str) -> dict[str, np.ndarray]:
  """{key: array} of a torch state dict file, read without running pickled code."""
  _check_is_file(path)
  try:
    import torch  # only here: torch is a peer requirement (requirements-peers.txt)
  except ImportError as e:
    raise ConfigError(f"reading {path} needs torch (pip install -r requirements-peers.txt)"
                      ) from e
  try:
    state_dict = torch.load(path, map_location="cpu", weights_only=True)
  except Exception as e:
    reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    raise DataError(f"{path} is not a torch state dict file ({reason})") from e
  if not isinstance(state_dict, Mapping) or not all(
      isinstance(value, torch.Tensor) for value in state_dict.values()):
    raise DataError(f"{path} is not a state dict (a mapping of names to tensors): it holds "
                    f"a {type(state_dict).__name__}")
  return {key: value.detach().float().numpy() for key, value in state_dict.items()}


def _check_is_file(path: str) -> None:
  if not os.path.isfile(path):
    raise DataError(f"weights file {path} does not exist")


@dataclasses.dataclass(frozen=True)
class _Naming:
  """How a source names the model's leaves and lays out its arrays."""

  name: Callable[[tuple, list[tuple[int, int]]], str]  # (leaf path, block positions) -> key
  to_model: Callable[[np.ndarray], np.ndarray]  # source layout -> the model's
  model_shape_in_source: Callable[[tuple], tuple]  # a model shape in the source's layout
  ignored: Callable[[str], bool]  # keys that are not the backbone's (classifier, counters)


_TORCH_MODULES = {"stem_conv": "conv1", "stem_norm": "bn1", "conv1": "conv1", "norm1": "bn1",
                  "conv2": "conv2", "norm2": "bn2", "conv3": "conv3", "norm3": "bn3",
                  "shortcut/conv": "downsample.0", "shortcut/norm": "downsample.1"}
_TORCH_LEAVES = {"kernel": "weight", "bias": "bias", "scale": "weight", "mean": "running_mean",
                 "var": "running_var"}
_KERAS_MODULES = {"stem_conv": "conv1_conv", "stem_norm": "conv1_bn", "conv1": "1_conv",
                  "norm1": "1_bn", "conv2": "2_conv", "norm2": "2_bn", "conv3": "3_conv",
                  "norm3": "3_bn", "shortcut/conv": "0_conv", "shortcut/norm": "0_bn"}
_KERAS_CONV_LEAVES = {"kernel": "kernel", "bias": "bias"}
_KERAS_NORM_LEAVES = {"scale": "gamma", "bias": "beta", "mean": "moving_mean",
                      "var": "moving_variance"}


def _torchvision_name(path: tuple, positions: list[tuple[int, int]]) -> str:
  *module, leaf = path
  prefix = ""
  if module[0] == "blocks":
    stage, index = positions[module[1]]
    prefix, module = f"layer{stage + 1}.{index}.", module[2:]
  return f"{prefix}{_TORCH_MODULES['/'.join(module)]}.{_TORCH_LEAVES[leaf]}"


def _keras_name(path: tuple, positions: list[tuple[int, int]]) -> str:
  *module, leaf = path
  prefix = ""
  if module[0] == "blocks":
    stage, index = positions[module[1]]
    prefix, module = f"conv{stage + 2}_block{index + 1}_", module[2:]
  layer = _KERAS_MODULES["/".join(module)]
  leaves = _KERAS_CONV_LEAVES if layer.endswith("conv") else _KERAS_NORM_LEAVES
  return f"{prefix}{layer}/{leaves[leaf]}"


def _oihw_shape(shape: tuple) -> tuple:
  return (shape[3], shape[2], shape[0], shape[1]) if len(shape) == 4 else shape


_NAMINGS = {
    "torchvision": _Naming(
        name=_torchvision_name,
        to_model=lambda array: array.transpose(2, 3, 1, 0) if array.ndim == 4 else array,
        model_shape_in_source=_oihw_shape,
        ignored=lambda key: key.startswith("fc.") or key.endswith(".num_batches_tracked")),
    "keras": _Naming(
        name=_keras_name, to_model=lambda array: array,
        model_shape_in_source=lambda shape: shape,
        ignored=lambda key: key.startswith("predictions/")),
}


def _convert(weights: dict[str, np.ndarray], path: str, source: str, name: str) -> Backbone:
  """Maps every leaf of the `name` model (head excluded) to its `source` weight."""
  fields = {"name": name, **SOURCES[source]}
  naming = _NAMINGS[source]
  positions = [(block.stage, block.index) for block in architectures.get(name).blocks()]
  arrays, used = {}, set()
  for collection, shapes in backbone_shapes(name, fields["block_style"]).items():
    arrays[collection] = {}
    for leaf_path, shape in shapes.items():
      key = naming.name(leaf_path, positions)
      if key not in weights:
        raise DataError(f"{path} has no weight {key} (for {name}'s "
                        f"{'/'.join(map(str, leaf_path))}): not {source} {name} weights?")
      value = np.asarray(naming.to_model(weights[key]), np.float32)
      if value.shape != shape:
        raise DataError(f"{path}: {key} has shape {tuple(weights[key].shape)}, {name} needs "
                        f"{naming.model_shape_in_source(shape)}")
      arrays[collection][leaf_path] = value
      used.add(key)
  extra = sorted(key for key in set(weights) - used if not naming.ignored(key))
  if extra:
    raise DataError(f"{path} has {len(extra)} weights that {name} does not, the first "
                    f"{extra[0]}: not {source} {name} weights?")
  return Backbone(arrays, fields, source)


def save_backbone(backbone: Backbone, directory: str, converted_from: str = "") -> None:
  """Writes DIRECTORY/backbone.npz (the arrays) and backbone.json (source, model fields)."""
  os.makedirs(directory, exist_ok=True)
  flat = {f"{collection}/{'/'.join(map(str, leaf_path))}": value
          for collection, leaves in backbone.arrays.items()
          for leaf_path, value in leaves.items()}
  weights_path = os.path.join(directory, WEIGHTS_FILE)
  with open(weights_path + ".tmp", "wb") as f:  # renamed when whole
    np.savez(f, **flat)
  os.replace(weights_path + ".tmp", weights_path)
  info = {"source": backbone.source, "converted_from": converted_from,
          "model": backbone.model_fields}
  atomic_files.write_text_atomically(os.path.join(directory, INFO_FILE),
                                     json.dumps(info, indent=2))


def read_backbone_info(model_config) -> dict:
  """The backbone.json that `model.init_from` names, checked against the `model` config.

  Raises:
    ConfigError: no backbone there, or a model field the weights do not work with
      (each such field named with both values).
  """
  directory = model_config.init_from
  info_path = os.path.join(directory, INFO_FILE)
  try:
    with open(info_path) as f:
      info = json.load(f)
    needed = info["model"]
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise ConfigError(f"model.init_from={directory}: no backbone there ({info_path} is missing "
                      f"or unreadable: {e}); write one with scripts/convert_weights.py") from e
  wrong = [f"model.{field}={value!r} (config: {model_config[field]!r})"
           for field, value in needed.items() if model_config[field] != value]
  if wrong:
    raise ConfigError(f"model.init_from={directory} holds {info.get('source')} weights that "
                      f"need {', '.join(wrong)}: set those fields")
  return info


def load_backbone(model_config) -> dict[str, dict]:
  """The `model.init_from` backbone as {'params': ..., 'batch_stats': ...} nested dicts.

  The dicts hold every leaf but the head's, for `nnx.replace_by_pure_dict`.
  """
  read_backbone_info(model_config)
  weights_path = os.path.join(model_config.init_from, WEIGHTS_FILE)
  try:
    with np.load(weights_path) as npz:
      flat = {key: npz[key] for key in npz.files}
  except (OSError, ValueError) as e:
    raise DataError(f"model.init_from: {weights_path} is missing or unreadable ({e})") from e
  tree = {}
  for collection, shapes in backbone_shapes(model_config.name, model_config.block_style).items():
    leaves = {}
    for leaf_path, shape in shapes.items():
      key = f"{collection}/{'/'.join(map(str, leaf_path))}"
      value = flat.pop(key, None)
      if value is None or value.shape != shape:
        raise DataError(f"model.init_from: {weights_path} has no {key} of shape {shape}")
      leaves[leaf_path] = value
    tree[collection] = traverse_util.unflatten_dict(leaves)
  if flat:
    raise DataError(f"model.init_from: {weights_path} has {len(flat)} arrays that "
                    f"{model_config.name} does not, the first {sorted(flat)[0]}")
  return tree
