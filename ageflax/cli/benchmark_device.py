"""Accelerator figures of the train step in one run: images/s, MFU and torchvision's beside.

  python scripts/benchmark_device.py                    # ResNet50, 224x224, batch 256, bf16
  python scripts/benchmark_device.py --peak_flops=989e12 --torch_compile

Prints `train_step ageflax: X images/s`, `mfu ageflax: X`, the step with device
augmentation, torchvision's ResNet (channels_last, bf16 autocast) with
`ratio train_step ageflax/torch: X`, and the host-fed end to end; see
`ageflax.devtools.bench.device`. Needs no TensorFlow. On a lent H100/H200 run
`scripts/device_benchmark.sh`, which also installs what the machine lacks and adds
train.py's end to end where TensorFlow is present.
"""

import os

from absl import flags
from ml_collections import config_flags

from ageflax.cli import common
from ageflax.cli import flags as shared_flags
from ageflax.core.errors import ConfigError
from ageflax.devtools.bench import benchmarks, device

_CONFIG = config_flags.DEFINE_config_file(
    "config", common.experiment_file("resnet50.py"), "Training config file.", lock_config=True)
_MODEL = flags.DEFINE_string("model", "", "model.name; default: the config's.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 224, "data.image_size; 0: the config's.")
_BATCH_SIZE = shared_flags.define_batch_size("train.batch_size; 0: the config's.", default=256)
_DTYPE = flags.DEFINE_enum("dtype", "bfloat16", ["float32", "bfloat16"], "model.dtype.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed rounds of every figure.", lower_bound=1)
_STEPS = flags.DEFINE_integer("steps", 10, "Train steps per timed round.", lower_bound=1)
_WARMUP_STEPS = flags.DEFINE_integer("warmup_steps", 2, "Untimed steps after compilation.",
                                     lower_bound=1)
_PEAK_FLOPS = flags.DEFINE_float("peak_flops", 0.0, "The device's peak bf16 FLOP/s for the "
                                 "MFU; 0: from the table of device kinds.")
_TORCH = flags.DEFINE_bool("torch", True, "Time torchvision's ResNet beside ageflax.")
_TORCH_COMPILE = flags.DEFINE_bool("torch_compile", False,
                                   "Run torchvision's model through torch.compile.")


@common.exit_on_user_error
def main(argv: list[str]) -> None:
  common.refuse_arguments(argv)
  if _PEAK_FLOPS.value < 0:
    raise ConfigError(f"--peak_flops must be positive (or 0: the table's), not {_PEAK_FLOPS.value}")
  # JAX would otherwise take 75% of the GPU's memory at start, leaving torch too little.
  os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
  config = _CONFIG.value.copy_and_resolve_references()
  config.model.dtype = _DTYPE.value
  config = benchmarks.configure(config, model=_MODEL.value, image_size=_IMAGE_SIZE.value,
                                batch_size=_BATCH_SIZE.value)
  options = device.DeviceOptions(_REPEATS.value, _STEPS.value, _WARMUP_STEPS.value,
                                 _PEAK_FLOPS.value, _TORCH.value, _TORCH_COMPILE.value)
  print("\n".join(device.run(config, options)))


def run() -> None:
  """The console entry point: parses the flags and runs main."""
  common.run(main, __name__)
