"""The one architecture table: the FLOP count derived from it, and the blocks it lists."""

import pytest

from ageflax.core.errors import ConfigError
from ageflax.model import architectures


def test_the_known_resnet_count_matches_the_published_one():
  # torchvision: ResNet50 4.09 and ResNet18 1.81 GMACs per 224x224 image; training is 3x.
  assert architectures.train_flops_per_image("resnet50", 224) == pytest.approx(
      6 * 4.09e9, rel=0.01)
  assert architectures.train_flops_per_image("resnet18", 224) == pytest.approx(
      6 * 1.81e9, rel=0.01)
  # The figure: about 8 GFLOP per 128x128 image per step.
  assert architectures.train_flops_per_image("resnet50", 128) == pytest.approx(
      8.0e9, rel=0.01)


def test_the_small_input_resnet18_costs_about_what_resnet18_does_on_finer_maps():
  small_input, plain = architectures.get("resnet18_small_input"), architectures.get("resnet18")
  assert small_input.pool_size == 0 and small_input.num_features == plain.num_features // 2
  # Half the channels on maps of twice the side: the blocks cost the same; the stem half.
  ratio = (architectures.train_flops_per_image("resnet18_small_input", 64)
           / architectures.train_flops_per_image("resnet18", 64))
  assert 0.9 < ratio < 1.0


def test_blocks_stride_and_project_at_each_new_stage():
  blocks = list(architectures.get("resnet50").blocks())
  assert len(blocks) == 16
  assert [(b.stage, b.strides) for b in blocks if b.has_projection] == [(0, 1), (1, 2), (2, 2),
                                                                        (3, 2)]
  assert blocks[0].in_features == 64 and blocks[-1].out_features == 2048
  assert architectures.get("resnet18").num_features == 512


def test_an_unknown_name_is_a_config_error():
  with pytest.raises(ConfigError, match=r"model.name must be one of \('resnet18'"):
    architectures.get("resnet7")
