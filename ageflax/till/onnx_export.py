"""The trained predictor as an ONNX graph, for ONNX Runtime at a till without JAX or TensorFlow.

The graph is written here, from the restored model's weights, walking the model the way
`ageflax.model.resnet` builds it: the input normalisation (BGR for 'caffe'), the stem,
both block styles (with or without convolution biases), the max pool, the global average
pool and the head. BatchNorm runs in inference mode, so each one is folded into the
convolution before it (in float64, then stored as float32). `model.conv_impl` does not
change the weights, so one ONNX convolution serves every choice; the graph computes in
float32 whatever `model.dtype` the run trained with.

Input `images`: float32 RGB [N, S, S, 3] in [0, 255] (NHWC, as the JAX predictor takes), N
free. Outputs `age` [N] and, for the dex head, `age_spread` [N] and `p_under_legal_age` [N]
as `ageflax.model.dex` computes them (the age is the distribution's mean or median, as
`model.dex_readout` says; P(age < legal age) is the mass of the bins whose age is below
it). With flip TTA the dex head's distribution (the other heads' age) is the mean over
each image and its mirror image, as `ageflax.model.predict.predict_outputs` computes it.

jax2onnx is not used: its wheel pins orbax-checkpoint<0.11.37 and training needs 0.12.8.
This module imports neither JAX's TensorFlow bridge nor TensorFlow.
"""

import os

import numpy as np
import onnx
from flax import nnx
from onnx import TensorProto, helper, numpy_helper

from ageflax.core import atomic_files
from ageflax.model import dex, resnet
from ageflax.till import export_metadata, policy_file
from ageflax.till.id_policy import IdCheckPolicy
from ageflax.till.predictor import Predictor

OPSET = 17  # the newest whose Reduce* ops still take axes as an attribute
# The IR version of opset 17: onnx 1.23 would write 14, which ONNX Runtime 1.31 cannot read.
IR_VERSION = 8
MODEL_FILE = "model.onnx"
_END = -(2**62)  # a Slice end before the first element, for a reversed axis


class _Graph:
  """Nodes and weights of the graph being written, each output under a fresh name."""

  def __init__(self):
    self.nodes: list[onnx.NodeProto] = []
    self.initializers: list[onnx.TensorProto] = []

  def weight(self, name: str, value) -> str:
    self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
    return name

  def op(self, op_type: str, inputs: list[str], **attributes) -> str:
    output = f"{op_type.lower()}_{len(self.nodes)}"
    self.nodes.append(helper.make_node(op_type, inputs, [output], name=output, **attributes))
    return output

  def output(self, op_type: str, inputs: list[str], name: str, **attributes) -> str:
    """A node writing one of the graph's outputs under its public `name`."""
    self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attributes))
    return name


def export_onnx(predictor: Predictor, out_dir: str, flip_tta: bool = False,
                policy: IdCheckPolicy | None = None) -> dict:
  """Writes `model.onnx` and `ageflax_export.json` to `out_dir`; returns the metadata.

  Args:
    predictor: the restored run.
    out_dir: the folder to write.
    flip_tta: bake flip test-time augmentation into the graph.
    policy: the ID-check policy the metadata carries, whose legal age P(age < legal age)
      uses; default: the fixed rule of the run's config.
  """
  policy = policy or policy_file.fixed_policy(predictor.config.eval)
  model = build_model(predictor, policy.legal_age, flip_tta)
  os.makedirs(out_dir, exist_ok=True)
  with atomic_files.open_atomically(os.path.join(out_dir, MODEL_FILE), "wb") as f:
    f.write(model.SerializeToString())
  metadata = export_metadata.describe(predictor, "onnx", flip_tta, policy,
                                      onnx_file=MODEL_FILE)
  export_metadata.write(out_dir, metadata)
  return metadata


def build_model(predictor: Predictor, legal_age: float, flip_tta: bool = False
                ) -> onnx.ModelProto:
  """The checked ONNX model of `predictor` (see the module docstring)."""
  variables = predictor.variables
  model = nnx.merge(predictor.graphdef, variables["params"], variables["batch_stats"])
  graph = _Graph()
  x = _normalized_input(graph, model.input_normalization, flip_tta)
  x = _conv_norm(graph, x, model.stem_conv, model.stem_norm, "stem", relu=True)
  if model.pool_size:
    pad = (model.pool_size - 1) // 2
    x = graph.op("MaxPool", [x], kernel_shape=[model.pool_size] * 2, strides=[2, 2],
                 pads=[pad] * 4)
  for index, block in enumerate(model.blocks):
    x = _block(graph, x, block, f"block{index}")
  features = graph.op("Flatten", [graph.op("GlobalAveragePool", [x])])
  logits = graph.op("Gemm", [features, graph.weight("head/kernel", model.head.kernel[...]),
                             graph.weight("head/bias", model.head.bias[...])])
  names = _head(graph, logits, model, legal_age, flip_tta)
  return _checked_model(graph, predictor.image_size, names)


def _checked_model(graph: _Graph, size: int, outputs: list[str]) -> onnx.ModelProto:
  """The model of `graph`: input `images` [N, size, size, 3], `outputs` [N] each."""
  batch = "N"  # a free dimension
  onnx_graph = helper.make_graph(
      graph.nodes, "ageflax", [helper.make_tensor_value_info(
          "images", TensorProto.FLOAT, [batch, size, size, 3])],
      [helper.make_tensor_value_info(name, TensorProto.FLOAT, [batch]) for name in outputs],
      graph.initializers)
  model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)],
                            producer_name="ageflax", ir_version=IR_VERSION)
  onnx.checker.check_model(model, full_check=True)
  return model


def _normalized_input(graph: _Graph, normalization: str, flip_tta: bool) -> str:
  """NCHW float32 as `resnet.normalize_images` makes it; with flip TTA the mirror images
  follow the images in the batch."""
  x = "images"
  if flip_tta:
    mirrored = _reversed(graph, x, axis=2)
    x = graph.op("Concat", [x, mirrored], axis=0)
  if normalization == resnet.PER_IMAGE:
    x = _standardized_per_image(graph, x)
  else:
    mean, std, bgr = resnet.INPUT_NORMALIZATIONS[normalization]
    if bgr:
      x = _reversed(graph, x, axis=3)
    x = graph.op("Sub", [x, graph.weight("input/mean", np.float32(mean))])
    x = graph.op("Div", [x, graph.weight("input/std", np.float32(std))])
  return graph.op("Transpose", [x], perm=[0, 3, 1, 2])


def _standardized_per_image(graph: _Graph, x: str) -> str:
  """Each NHWC image's channels at mean 0 and std 1, as `resnet.normalize_images` does."""
  centred = graph.op("Sub", [x, graph.op("ReduceMean", [x], axes=[1, 2], keepdims=1)])
  variance = graph.op("ReduceMean", [graph.op("Mul", [centred, centred])], axes=[1, 2],
                      keepdims=1)
  floor = graph.weight("input/min_variance", np.float32(resnet.PER_IMAGE_MIN_STD**2))
  return graph.op("Div", [centred, graph.op("Sqrt", [graph.op("Max", [variance, floor])])])


def _reversed(graph: _Graph, x: str, axis: int) -> str:
  constants = [graph.weight(f"reverse{axis}/{name}", np.array([value], np.int64))
               for name, value in (("starts", -1), ("ends", _END), ("axes", axis),
                                   ("steps", -1))]
  return graph.op("Slice", [x, *constants])


def _conv_norm(graph: _Graph, x: str, conv: resnet.Conv, norm: nnx.BatchNorm, name: str,
               relu: bool) -> str:
  """`conv` then inference-mode `norm` as one convolution (the norm folded into it)."""
  kernel = np.asarray(conv.kernel[...], np.float64)  # HWIO
  bias = (np.zeros(kernel.shape[-1]) if conv.bias is None
          else np.asarray(conv.bias[...], np.float64))
  mean, var = (np.asarray(v[...], np.float64) for v in (norm.mean, norm.var))
  scale = np.asarray(norm.scale[...], np.float64) / np.sqrt(var + norm.epsilon)
  folded_kernel = (kernel * scale).transpose(3, 2, 0, 1).astype(np.float32)  # OIHW
  folded_bias = ((bias - mean) * scale + np.asarray(norm.bias[...], np.float64))
  (top, bottom), (left, right) = conv.padding
  y = graph.op("Conv", [x, graph.weight(f"{name}/kernel", folded_kernel),
                        graph.weight(f"{name}/bias", folded_bias.astype(np.float32))],
               kernel_shape=list(kernel.shape[:2]), strides=[conv.strides] * 2,
               pads=[top, left, bottom, right])
  return graph.op("Relu", [y]) if relu else y


def _block(graph: _Graph, x: str, block: nnx.Module, name: str) -> str:
  """A residual block: `resnet.BasicBlock` or `resnet.Bottleneck`."""
  layers = [(block.conv1, block.norm1), (block.conv2, block.norm2)]
  if isinstance(block, resnet.Bottleneck):
    layers.append((block.conv3, block.norm3))
  y = x
  for index, (conv, norm) in enumerate(layers, start=1):
    y = _conv_norm(graph, y, conv, norm, f"{name}/conv{index}", relu=index < len(layers))
  shortcut = x if block.shortcut is None else _conv_norm(
      graph, x, block.shortcut.conv, block.shortcut.norm, f"{name}/shortcut", relu=False)
  return graph.op("Relu", [graph.op("Add", [y, shortcut])])


def _head(graph: _Graph, logits: str, model: resnet.ResNetRegressor, legal_age: float,
          flip_tta: bool) -> list[str]:
  """The graph's outputs from the head's outputs [B, K]; returns their names."""
  if model.head_kind != "dex":
    ages = graph.op("Reshape", [logits, graph.weight("shape/flat", np.array([-1], np.int64))])
    if model.head_kind == "relu":
      ages = graph.op("Relu", [ages])
    graph.output("Identity", [_mirror_mean(graph, ages, flip_tta, [2, -1])], "age")
    return ["age"]
  num_bins = model.head.kernel[...].shape[-1]
  probabilities = graph.op("Softmax", [logits], axis=-1)
  probabilities = _mirror_mean(graph, probabilities, flip_tta, [2, -1, num_bins])
  return _dex_outputs(graph, probabilities, num_bins, model.dex_readout, legal_age)


def _dex_outputs(graph: _Graph, probabilities: str, num_bins: int, readout: str,
                 legal_age: float) -> list[str]:
  """`dex.point_estimate(readout)`, `dex.age_spread` and `dex.probability_under(legal_age)`."""
  bin_ages = np.arange(num_bins, dtype=np.float32)
  mean = graph.op("MatMul", [probabilities, graph.weight("dex/bin_ages", bin_ages)])
  column = graph.weight("dex/axis1", np.array([1], np.int64))
  bin_ages_row = graph.weight("dex/bin_ages_row", bin_ages[None])
  age = _median(graph, probabilities, bin_ages_row, column) if readout == "median" else mean
  graph.output("Identity", [age], "age")
  deviations = graph.op("Sub", [bin_ages_row, graph.op("Unsqueeze", [mean, column])])
  weighted = graph.op("Mul", [probabilities, graph.op("Mul", [deviations, deviations])])
  variance = graph.op("ReduceSum", [weighted, column], keepdims=0)
  # Rounding can make a point mass's variance negative, as in `dex.age_spread`.
  variance = graph.op("Max", [variance, graph.weight("dex/zero", np.float32(0))])
  graph.output("Sqrt", [variance], "age_spread")
  below = (bin_ages < legal_age).astype(np.float32)
  graph.output("MatMul", [probabilities, graph.weight("dex/below_legal_age", below)],
               "p_under_legal_age")
  return ["age", "age_spread", "p_under_legal_age"]


def _median(graph: _Graph, probabilities: str, bin_ages_row: str, column: str) -> str:
  """`dex.median_age` of the distributions [B, K]: [B]."""
  below = graph.op("Sub", [graph.op("CumSum", [probabilities, graph.weight(
      "dex/axis1_scalar", np.array(1, np.int64))]), probabilities])
  half = graph.weight("dex/half", np.float32(0.5))
  under_half = graph.op("Cast", [graph.op("Less", [below, half])], to=TensorProto.FLOAT)
  median_bin = graph.op("Sub", [graph.op("ReduceSum", [under_half, column], keepdims=1),
                                graph.weight("dex/one", np.float32(1))])
  in_bin = graph.op("Cast", [graph.op("Equal", [bin_ages_row, median_bin])],
                    to=TensorProto.FLOAT)
  mass = graph.op("ReduceSum", [graph.op("Mul", [probabilities, in_bin]), column], keepdims=0)
  before = graph.op("ReduceSum", [graph.op("Mul", [below, in_bin]), column], keepdims=0)
  fraction = graph.op("Div", [graph.op("Sub", [half, before]), graph.op(
      "Max", [mass, graph.weight("dex/tiny", np.float32(dex.TINY))])])
  start = graph.op("Sub", [graph.op("Squeeze", [median_bin, column]), half])
  return graph.op("Add", [start, fraction])


def _mirror_mean(graph: _Graph, x: str, flip_tta: bool, halves_shape: list[int]) -> str:
  """With flip TTA, the mean of each image's row and its mirror image's (the batch's second
  half); else `x`."""
  if not flip_tta:
    return x
  shape = graph.weight(f"shape/halves{len(halves_shape)}", np.array(halves_shape, np.int64))
  return graph.op("ReduceMean", [graph.op("Reshape", [x, shape])], axes=[0], keepdims=0)
