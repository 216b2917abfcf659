"""Weight conversion: the Flax model reproduces Keras' and torchvision's ResNet50 features.

Each reference network gets random weights in a regime like a trained one (BatchNorm
statistics measured on a calibration batch, then perturbed; random biases, scales and
offsets; small last scales in each residual branch, so float32 rounding is not amplified
through 16 blocks), then its pooled features on random images are compared with the
converted Flax model's. A wrong transpose, a swapped statistic, a missing bias or a stride
in the wrong place moves them by 0.1 or more; the bar is 1e-4.
"""

import importlib.util
import os
import pathlib
import shutil

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import error_line, run_entry_point
from flax import nnx

from ageflax.core import sharding
from ageflax.core.errors import ConfigError, DataError
from ageflax.model import architectures, pretrained, resnet
from ageflax.train import checkpoints, loop
from ageflax.train import steps as steps_lib
from configs import resnet50, tiny

try:
  import torch
except ImportError:
  torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

IMAGE_SIZE = 64
IMAGES = np.random.default_rng(0).integers(0, 256, (4, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
TOLERANCE = 1e-4  # max abs difference of pooled float32 features


def _model_config(**fields):
  config = resnet50.get_config().model
  config.update(fields)
  return config


def _converted_features(backbone: pretrained.Backbone, directory) -> np.ndarray:
  """Saves `backbone`, loads it as `model.init_from` would and returns pooled features."""
  pretrained.save_backbone(backbone, str(directory))
  config = _model_config(init_from=str(directory), **backbone.model_fields)
  model = resnet.create_model(config, head_bias=0.0, seed=0)
  loaded = pretrained.load_backbone(config)
  _, params, batch_stats = nnx.split(model, nnx.Param, nnx.BatchStat)
  nnx.replace_by_pure_dict(params, loaded["params"])
  nnx.replace_by_pure_dict(batch_stats, loaded["batch_stats"])
  nnx.update(model, params, batch_stats)
  return np.asarray(jax.jit(lambda m, x: m.features(x))(model, jnp.asarray(IMAGES)))


def _perturbed(mean: np.ndarray, var: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
  """Measured statistics moved off the calibration batch's, so each one matters."""
  mean = mean + rng.normal(0.0, 0.1, mean.shape) * np.sqrt(var)
  return mean.astype(np.float32), (var * rng.uniform(0.7, 1.4, var.shape)).astype(np.float32)


# Keras


@pytest.fixture(scope="module")
def keras_reference(tmp_path_factory):
  """(weights .h5 written by Keras, pooled Keras features, Keras' trainable count)."""
  import keras
  from keras.src.legacy.saving import legacy_h5_format

  rng = np.random.default_rng(1)
  model = keras.applications.ResNet50(weights=None, include_top=False, pooling="avg",
                                      input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
  norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
  for layer in model.layers:
    if isinstance(layer, keras.layers.Conv2D):
      kernel, bias = layer.get_weights()
      layer.set_weights([kernel, rng.normal(0.0, 0.1, bias.shape).astype(np.float32)])
  for layer in norms:
    gamma, beta, mean, var = layer.get_weights()
    low, high = (0.1, 0.3) if layer.name.endswith("_3_bn") else (0.5, 1.5)
    layer.set_weights([rng.uniform(low, high, gamma.shape).astype(np.float32),
                       rng.normal(0.0, 0.2, beta.shape).astype(np.float32), mean, var])
    layer.momentum = 0.0  # one training-mode call stores the calibration batch's statistics
  calibration = rng.uniform(0, 255, (8, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32)
  model(keras.applications.resnet50.preprocess_input(calibration), training=True)
  for layer in norms:
    gamma, beta, mean, var = layer.get_weights()
    layer.set_weights([gamma, beta, *_perturbed(mean, var, rng)])
  path = tmp_path_factory.mktemp("keras") / "resnet50_notop.h5"
  with h5py.File(path, "w") as f:  # the legacy layout of the ImageNet weights files
    legacy_h5_format.save_weights_to_hdf5_group(f, model)
  features = model(keras.applications.resnet50.preprocess_input(IMAGES.astype(np.float32)),
                   training=False)
  trainable = sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)
  return path, np.asarray(features), trainable


def test_keras_resnet50_is_reproduced(keras_reference, tmp_path):
  path, expected, trainable = keras_reference
  backbone = pretrained.convert_keras(str(path))
  assert backbone.model_fields == {"name": "resnet50", "block_style": "keras_v1",
                                   "input_normalization": "caffe", "bn_epsilon": 1.001e-5}
  assert sum(a.size for a in backbone.arrays["params"].values()) == trainable == 23_534_592
  assert np.abs(expected).mean() > 0.1  # features of a sensible size, so the bar means something
  difference = np.abs(_converted_features(backbone, tmp_path / "converted") - expected).max()
  print(f"keras ResNet50: max abs difference {difference:.2e}")
  assert difference < TOLERANCE


def _as_keras_2_file(source: pathlib.Path, target: pathlib.Path) -> None:
  """Rewrites a Keras 3 legacy file as Keras 2 wrote them: LAYER/LAYER/kernel:0."""
  with h5py.File(source) as old, h5py.File(target, "w") as new:
    new.attrs["layer_names"] = old.attrs["layer_names"]
    for layer, group in old.items():
      names = []
      group.visititems(lambda name, item, names=names: names.append((name, item[()]))
                       if isinstance(item, h5py.Dataset) else None)
      new_group = new.create_group(layer)
      new_group.attrs["weight_names"] = [f"{layer}/{n.split('/')[-1]}:0".encode()
                                         for n, _ in names]
      for name, value in names:
        new_group[f"{layer}/{name.split('/')[-1]}:0"] = value


def test_keras_2_files_read_the_same(keras_reference, tmp_path):
  path, _, _ = keras_reference
  _as_keras_2_file(path, tmp_path / "keras2.h5")
  keras3, keras2 = pretrained.convert_keras(str(path)), pretrained.convert_keras(str(tmp_path / "keras2.h5"))
  for collection, leaves in keras3.arrays.items():
    assert leaves.keys() == keras2.arrays[collection].keys()
    for leaf_path, value in leaves.items():
      np.testing.assert_array_equal(value, keras2.arrays[collection][leaf_path])


def _edited_copy(path: pathlib.Path, tmp_path: pathlib.Path, edit) -> str:
  copy = tmp_path / "edited.h5"
  shutil.copy(path, copy)
  with h5py.File(copy, "r+") as f:
    edit(f)
  return str(copy)


@pytest.mark.parametrize("edit, message", [
    (lambda f: f["conv3_block2_2_conv"].pop("conv3_block2_2_conv"),
     "has no weight conv3_block2_2_conv/bias (for resnet50's blocks/4/conv2/bias)"),
    (lambda f: f.create_group("extra_dense").create_dataset("kernel", data=np.zeros(3)),
     "has 1 weights that resnet50 does not, the first extra_dense/kernel"),
    (lambda f: (f["conv1_bn/conv1_bn"].pop("gamma"),
                f["conv1_bn/conv1_bn"].create_dataset("gamma", data=np.zeros(32, np.float32))),
     "conv1_bn/gamma has shape (32,), resnet50 needs (64,)"),
])
def test_keras_file_problems_are_named_in_one_line(keras_reference, tmp_path, edit, message):
  path = _edited_copy(keras_reference[0], tmp_path, edit)
  with pytest.raises(DataError) as error:
    pretrained.convert_keras(path)
  assert str(error.value).startswith(path) and message in str(error.value)
  assert "\n" not in str(error.value)


def test_missing_and_non_keras_files_are_named(tmp_path):
  with pytest.raises(DataError, match=f"^weights file {tmp_path}/absent.h5 does not exist$"):
    pretrained.convert_keras(str(tmp_path / "absent.h5"))
  (tmp_path / "notes.h5").write_text("not hdf5")
  with pytest.raises(DataError, match=f"^{tmp_path}/notes.h5 is not an HDF5 file"):
    pretrained.convert_keras(str(tmp_path / "notes.h5"))
  with h5py.File(tmp_path / "native.weights.h5", "w") as f:
    f.create_group("layers")
  with pytest.raises(DataError, match="is not a Keras HDF5 weights file"):
    pretrained.convert_keras(str(tmp_path / "native.weights.h5"))


def test_convert_weights_script(keras_reference, tmp_path):
  output = tmp_path / "backbone"
  result = run_entry_point(["scripts/convert_weights.py", "--source=keras",
                            f"--input={keras_reference[0]}", f"--output_dir={output}"])
  assert result.returncode == 0, result.stderr[-3000:]
  assert (f"--config.model.init_from={output} --config.model.name=resnet50 "
          "--config.model.block_style=keras_v1 --config.model.input_normalization=caffe "
          "--config.model.bn_epsilon=1.001e-05") in result.stdout
  assert "23,534,592 parameters" in result.stdout
  assert sorted(os.listdir(output)) == sorted([pretrained.INFO_FILE, pretrained.WEIGHTS_FILE])
  missing = run_entry_point(["scripts/convert_weights.py", "--source=torchvision",
                             f"--input={tmp_path}/absent.pth", f"--output_dir={output}"])
  assert error_line(missing) == f"error: weights file {tmp_path}/absent.pth does not exist"


# torch


def _torch_resnet50_v1_5():
  """torchvision's resnet50 written out: v1.5 bottlenecks, its module (and key) names."""
  nn = torch.nn

  class Bottleneck(nn.Module):
    def __init__(self, in_features, width, stride):
      super().__init__()
      self.conv1 = nn.Conv2d(in_features, width, 1, bias=False)
      self.bn1 = nn.BatchNorm2d(width)
      self.conv2 = nn.Conv2d(width, width, 3, stride, padding=1, bias=False)
      self.bn2 = nn.BatchNorm2d(width)
      self.conv3 = nn.Conv2d(width, 4 * width, 1, bias=False)
      self.bn3 = nn.BatchNorm2d(4 * width)
      self.downsample = None
      if stride != 1 or in_features != 4 * width:
        self.downsample = nn.Sequential(nn.Conv2d(in_features, 4 * width, 1, stride, bias=False),
                                        nn.BatchNorm2d(4 * width))

    def forward(self, x):
      y = torch.relu(self.bn1(self.conv1(x)))
      y = torch.relu(self.bn2(self.conv2(y)))
      y = self.bn3(self.conv3(y))
      return torch.relu(y + (x if self.downsample is None else self.downsample(x)))

  class ResNet50(nn.Module):
    def __init__(self):
      super().__init__()
      self.conv1 = nn.Conv2d(3, 64, 7, 2, padding=3, bias=False)
      self.bn1 = nn.BatchNorm2d(64)
      self.maxpool = nn.MaxPool2d(3, 2, padding=1)
      in_features = 64
      for stage, blocks in enumerate((3, 4, 6, 3)):
        layer = []
        for index in range(blocks):
          layer.append(Bottleneck(in_features, 64 * 2**stage, 2 if stage and not index else 1))
          in_features = 256 * 2**stage
        setattr(self, f"layer{stage + 1}", nn.Sequential(*layer))
      self.fc = nn.Linear(2048, 1000)  # in the state dict, as in torchvision's; not used

    def forward(self, x):
      x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
      for stage in range(1, 5):
        x = getattr(self, f"layer{stage}")(x)
      return x.mean(dim=(2, 3))

  return ResNet50()


def _torch_reference(model, tmp_path: pathlib.Path) -> tuple[str, np.ndarray]:
  """Randomises `model` like the Keras reference, saves its state dict; (path, features)."""
  rng = np.random.default_rng(2)
  torch.manual_seed(2)
  norms = {name: m for name, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
  with torch.no_grad():
    for name, norm in norms.items():
      low, high = (0.1, 0.3) if name.endswith("bn3") else (0.5, 1.5)
      norm.weight.copy_(torch.from_numpy(rng.uniform(low, high, norm.weight.shape)))
      norm.bias.copy_(torch.from_numpy(rng.normal(0.0, 0.2, norm.bias.shape)))
      norm.momentum = 1.0  # one training-mode call stores the calibration batch's statistics
    calibration = rng.uniform(0, 255, (8, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32)
    model.train()(_torchvision_input(calibration))
    for norm in norms.values():
      mean, var = _perturbed(norm.running_mean.numpy(), norm.running_var.numpy(), rng)
      norm.running_mean.copy_(torch.from_numpy(mean))
      norm.running_var.copy_(torch.from_numpy(var))
  path = str(tmp_path / "resnet50.pth")
  torch.save(model.state_dict(), path)
  with torch.no_grad():
    features = model.eval()(_torchvision_input(IMAGES.astype(np.float32)))
  return path, features.numpy()


def _torchvision_input(images: np.ndarray):
  """torchvision's ImageNet transform: [0, 1], mean/std, NCHW."""
  x = (images / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
  return torch.from_numpy(x.astype(np.float32)).permute(0, 3, 1, 2).contiguous()


@needs_torch
def test_torch_resnet50_state_dict_is_reproduced(tmp_path):
  path, expected = _torch_reference(_torch_resnet50_v1_5(), tmp_path)
  backbone = pretrained.convert_torchvision(path)
  assert backbone.model_fields["input_normalization"] == "imagenet"
  assert np.abs(expected).mean() > 0.1
  difference = np.abs(_converted_features(backbone, tmp_path / "converted") - expected).max()
  print(f"torch v1.5 ResNet50 replica: max abs difference {difference:.2e}")
  assert difference < TOLERANCE


# Imported after TensorFlow, torchvision 0.29.1 crashes the process (segmentation fault),
# so a child process imports it first and writes the state dict and the features.
_TORCHVISION_REFERENCE = """
import pathlib, sys
import torch, torchvision
sys.path.insert(0, "tests/model")
import test_convert
directory = pathlib.Path(sys.argv[1])
model = torchvision.models.resnet50(weights=None)
test_convert._torch_reference(model, directory)
model.fc = torch.nn.Identity()  # pooled features
with torch.no_grad():
  features = model.eval()(test_convert._torchvision_input(test_convert.IMAGES.astype("float32")))
test_convert.np.save(directory / "features.npy", features.numpy())
print("torchvision", torchvision.__version__, "torch", torch.__version__)
"""


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is None,
                    reason="torchvision is not installed")
def test_torchvision_resnet50_is_reproduced(tmp_path):
  child = run_entry_point(["-c", _TORCHVISION_REFERENCE, str(tmp_path)])
  assert child.returncode == 0, child.stderr[-3000:]
  expected = np.load(tmp_path / "features.npy")
  backbone = pretrained.convert_torchvision(str(tmp_path / "resnet50.pth"))
  difference = np.abs(_converted_features(backbone, tmp_path / "converted") - expected).max()
  print(f"{child.stdout.strip()} resnet50: max abs difference {difference:.2e}")
  assert difference < TOLERANCE


@needs_torch
@pytest.mark.parametrize("edit, message", [
    (lambda weights: weights.pop("layer3.1.bn2.running_var"),
     r" has no weight layer3.1.bn2.running_var \(for resnet50's blocks/8/norm2/var\)"),
    (lambda weights: weights.update({"layer5.0.conv1.weight": torch.zeros(1)}),
     " has 1 weights that resnet50 does not, the first layer5.0.conv1.weight"),
    (lambda weights: weights.update({"layer2.0.conv2.weight": torch.zeros(128, 128, 1, 1)}),
     r": layer2.0.conv2.weight has shape \(128, 128, 1, 1\), resnet50 needs "
     r"\(128, 128, 3, 3\)$"),
])
def test_torch_file_problems_are_named_in_one_line(tmp_path, edit, message):
  weights = _torch_resnet50_v1_5().state_dict()
  edit(weights)
  torch.save(weights, tmp_path / "edited.pth")
  with pytest.raises(DataError, match=f"^{tmp_path}/edited.pth" + message):
    pretrained.convert_torchvision(str(tmp_path / "edited.pth"))


@needs_torch
def test_non_state_dict_files_are_named(tmp_path):
  torch.save([torch.zeros(1)], tmp_path / "list.pth")
  with pytest.raises(DataError, match=r"list.pth is not a state dict .* it holds a list$"):
    pretrained.convert_torchvision(str(tmp_path / "list.pth"))
  (tmp_path / "garbage.pth").write_bytes(b"\x00garbage")
  with pytest.raises(DataError, match=r"garbage.pth is not a torch state dict file \("):
    pretrained.convert_torchvision(str(tmp_path / "garbage.pth"))


# init_from


def _tiny_backbone(directory: pathlib.Path) -> pretrained.Backbone:
  """Random 'torchvision' weights for the tests' tiny model, saved in `directory`."""
  rng = np.random.default_rng(3)
  arrays = {collection: {leaf_path: rng.uniform(0.5, 1.5, shape).astype(np.float32)
                         for leaf_path, shape in shapes.items()}
            for collection, shapes in pretrained.backbone_shapes("_resnet_tiny", "v1.5").items()}
  backbone = pretrained.Backbone(arrays, {"name": "_resnet_tiny", **pretrained.SOURCES["torchvision"]},
                              "torchvision")
  pretrained.save_backbone(backbone, str(directory))
  return backbone


def test_init_from_starts_the_backbone_from_the_weights_and_the_head_afresh(tmp_path):
  backbone = _tiny_backbone(tmp_path / "backbone")
  config = tiny.get_config()
  config.model.init_from = str(tmp_path / "backbone")
  _, state = steps_lib.create_train_state(config, optax.adam(1e-3), sharding.create_mesh(),
                                          head_bias=30.0)
  for collection, leaves in backbone.arrays.items():
    loaded = dict(nnx.to_flat_state(getattr(state, collection)))
    assert len(loaded) == len(leaves) + (2 if collection == "params" else 0)  # + the head
    for leaf_path, value in leaves.items():
      np.testing.assert_array_equal(loaded[leaf_path].get_value(), value)
  assert config.model.head == "affine"  # which starts at exactly the training mean
  np.testing.assert_array_equal(state.params["head"]["kernel"].get_value(), 0.0)
  np.testing.assert_array_equal(state.params["head"]["bias"].get_value(), [30.0])
  assert int(state.step) == 0
  assert all(float(jnp.abs(leaf).max()) == 0.0 for leaf in jax.tree.leaves(state.opt_state[0].mu))


def test_a_resumed_run_keeps_its_checkpoint_over_init_from(tmp_path):
  _tiny_backbone(tmp_path / "backbone")
  config = tiny.get_config()
  config.model.init_from = str(tmp_path / "backbone")
  mesh, optimizer = sharding.create_mesh(), optax.adam(1e-3)
  checkpointer = checkpoints.Checkpointer(tmp_path / "run")
  _, started = loop._initial_state(config, optimizer, mesh, 30.0, checkpointer)
  trained = started.replace(step=jnp.asarray(5, jnp.int32),
                            params=jax.tree.map(lambda x: x + 1.0, started.params))
  checkpointer.save(trained, config)
  checkpointer.wait()
  _, resumed = loop._initial_state(config, optimizer, mesh, 30.0, checkpointer)
  checkpointer.close()
  assert int(resumed.step) == 5
  for a, b in zip(jax.tree.leaves(resumed.params), jax.tree.leaves(trained.params), strict=True):
    np.testing.assert_array_equal(a, b)


def test_init_from_refuses_fields_the_weights_do_not_work_with(tmp_path):
  _tiny_backbone(tmp_path / "backbone")
  config = tiny.get_config().model
  config.update(init_from=str(tmp_path / "backbone"), input_normalization="caffe",
                bn_epsilon=1e-3)
  with pytest.raises(ConfigError) as error:
    pretrained.load_backbone(config)
  assert str(error.value) == (
      f"model.init_from={tmp_path}/backbone holds torchvision weights that need "
      "model.input_normalization='imagenet' (config: 'caffe'), model.bn_epsilon=1e-05 "
      "(config: 0.001): set those fields")
  config.init_from = str(tmp_path / "nothing")
  with pytest.raises(ConfigError, match=f"^model.init_from={tmp_path}/nothing: no backbone "
                                        "there .* write one with scripts/convert_weights.py$"):
    pretrained.load_backbone(config)


def test_keras_v1_blocks_carry_biases_and_stride_on_the_first_conv():
  model = nnx.eval_shape(lambda: resnet.create_model(
      _model_config(block_style="keras_v1"), head_bias=0.0, seed=0))
  first_of_stage = model.blocks[3]
  assert (first_of_stage.conv1.strides, first_of_stage.conv2.strides) == (2, 1)
  assert first_of_stage.conv1.bias is not None and model.stem_conv.bias is not None
  v1_5 = nnx.eval_shape(lambda: resnet.create_model(_model_config(), head_bias=0.0, seed=0))
  assert (v1_5.blocks[3].conv1.strides, v1_5.blocks[3].conv2.strides) == (1, 2)
  assert v1_5.blocks[3].conv1.bias is None


def test_keras_v1_bottlenecks_agree_across_conv_impls():
  images = jnp.asarray(IMAGES[:, :32, :32])
  features = {}
  for impl in ("xla", "matmul", "auto"):
    model = resnet.ResNetRegressor(architectures.Architecture("bottleneck", (1, 1), width=8),
                                   block_style="keras_v1", conv_impl=impl,
                                   zero_init_residual=False, rngs=nnx.Rngs(0))
    for path, bias in nnx.to_flat_state(nnx.state(model, nnx.Param)):
      if path[-1] == "bias" and "conv" in path[-2]:  # random conv biases: they must count
        bias.set_value(jnp.linspace(-1.0, 1.0, bias.get_value().size))
    features[impl] = jax.jit(lambda m, x: m.features(x))(model, images)
  for impl in ("matmul", "auto"):
    np.testing.assert_allclose(features[impl], features["xla"], rtol=1e-4, atol=1e-4)
