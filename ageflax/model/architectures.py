"""The one table of ResNet topologies: name -> block kind, stage sizes, widths and stem.

The Flax model (`resnet`), the known FLOP count and the benchmark's Keras and torch peers
all build from `ARCHITECTURES`, walking the same `Architecture.blocks()`, so a topology is
written down once. Plain Python: no JAX, no TensorFlow.
"""

import dataclasses
from collections.abc import Iterator

from ageflax.core.errors import ConfigError

BLOCK_KINDS = ("basic", "bottleneck")  # two 3x3 (ResNet18/34); 1x1, 3x3, 1x1 (ResNet50 up)
_EXPANSIONS = {"basic": 1, "bottleneck": 4}


@dataclasses.dataclass(frozen=True)
class BlockShape:
  """One residual block: its input and output channels, bottleneck width and stride."""

  stage: int
  index: int  # within its stage
  in_features: int
  width: int  # of its 3x3 convolutions
  out_features: int
  strides: int  # 2 on the first block of every stage but the first

  @property
  def has_projection(self) -> bool:
    """Whether the shortcut needs a 1x1 projection to match the block's output."""
    return self.in_features != self.out_features or self.strides != 1


@dataclasses.dataclass(frozen=True)
class Architecture:
  """A ResNet: a stride-2 stem convolution and max pool, then stages of residual blocks."""

  block: str  # one of BLOCK_KINDS
  stage_sizes: tuple[int, ...]  # blocks per stage; stage s has width * 2**s channels
  width: int = 64  # channels of the stem and of the first stage's 3x3 convolutions
  stem_kernel: int = 7  # side of the stem's stride-2 convolution
  pool_size: int = 3  # side of the stride-2 max pool after the stem; 0: no pool

  @property
  def expansion(self) -> int:
    """A block's output channels over its width: 1 (basic) or 4 (bottleneck)."""
    return _EXPANSIONS[self.block]

  @property
  def num_features(self) -> int:
    """Channels of the last stage: the pooled features the head reads."""
    return self.width * 2**(len(self.stage_sizes) - 1) * self.expansion

  def blocks(self) -> Iterator[BlockShape]:
    """Every residual block, in order."""
    in_features = self.width
    for stage, num_blocks in enumerate(self.stage_sizes):
      width = self.width * 2**stage
      for index in range(num_blocks):
        strides = 2 if stage > 0 and index == 0 else 1
        yield BlockShape(stage, index, in_features, width, width * self.expansion, strides)
        in_features = width * self.expansion


ARCHITECTURES = {
    "resnet18": Architecture("basic", (2, 2, 2, 2)),
    "resnet34": Architecture("basic", (3, 4, 6, 3)),
    "resnet50": Architecture("bottleneck", (3, 4, 6, 3)),
    "resnet101": Architecture("bottleneck", (3, 4, 23, 3)),
    "resnet152": Architecture("bottleneck", (3, 8, 36, 3)),
    # For small inputs: no max pool and half the channels, so every map is twice as fine
    # (4x4 at the end of a 64x64 input, not 2x2) for about resnet18's FLOPs per image.
    "resnet18_small_input": Architecture("basic", (2, 2, 2, 2), width=32, pool_size=0),
    # Test-only: one block per stage at width 8 keeps unit tests fast.
    "_resnet_tiny": Architecture("basic", (1, 1), width=8),
}


def get(name: str) -> Architecture:
  """The `model.name` architecture; ConfigError naming the known ones otherwise."""
  if name not in ARCHITECTURES:
    raise ConfigError(f"model.name must be one of {tuple(ARCHITECTURES)}, not {name!r}")
  return ARCHITECTURES[name]


def train_flops_per_image(name: str, image_size: int) -> float:
  """The known count: 2 FLOPs per multiply-add of the convolutions and head, x3 for training.

  Backward costs twice the forward pass (gradients of activations and of weights).
  """
  architecture = get(name)
  size = -(-image_size // 2)  # the stem's stride-2 convolution
  macs = size * size * architecture.stem_kernel**2 * 3 * architecture.width
  if architecture.pool_size:
    size = -(-size // 2)  # the stride-2 max pool
  for block in architecture.blocks():
    out_size = -(-size // block.strides)
    macs += sum(side * side * taps * cin * cout
                for side, taps, cin, cout in _block_convolutions(architecture, block, size))
    size = out_size
  return 6.0 * (macs + architecture.num_features)


def _block_convolutions(architecture: Architecture, block: BlockShape,
                        size: int) -> list[tuple[int, int, int, int]]:
  """(output side, kernel taps, in channels, out channels) of each convolution of `block`."""
  out_size = -(-size // block.strides)
  if architecture.block == "basic":
    convs = [(out_size, 9, block.in_features, block.width),
             (out_size, 9, block.width, block.out_features)]
  else:
    convs = [(size, 1, block.in_features, block.width), (out_size, 9, block.width, block.width),
             (out_size, 1, block.width, block.out_features)]
  if block.has_projection:
    convs.append((out_size, 1, block.in_features, block.out_features))
  return convs
