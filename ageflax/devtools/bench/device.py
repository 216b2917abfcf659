"""Accelerator figures in one run: ageflax's train step and its MFU, beside torchvision's.

What `scripts/benchmark_device.py` (and `scripts/device_benchmark.sh` on a lent H100 or
H200) prints, one line per figure, on synthetic batches made in the run:

- `train_step ageflax`: images/s of the jitted step on a fixed device-resident batch, and
  `mfu ageflax`: those images times `architectures.train_flops_per_image` over the
  device's peak dense bf16 FLOP/s (`PEAK_BF16_FLOPS` by device kind, or --peak_flops);
- `train_step ageflax_device_augment`: the step that augments its batch first;
- `train_step torch`: torchvision's ResNet as people train it on a GPU (channels_last,
  bf16 autocast where ageflax computes in bfloat16), Adam and MSE, on the same device,
  timed in the same rounds, and `ratio train_step ageflax/torch`;
- `end_to_end ageflax_host_fed`: steps each fed a new host batch, the copy included: the
  end to end that needs no input pipeline (the shell script adds train.py's where
  TensorFlow is installed).

Nothing here imports TensorFlow, which the lent GPU machines lack.
"""

import dataclasses
import importlib
import itertools

import jax
import ml_collections

from ageflax.core import sharding
from ageflax.devtools.bench import sections
from ageflax.devtools.bench.report import Figure, cores
from ageflax.devtools.bench.timing import compile_ageflax_step, interleaved_rates, synthetic_batch
from ageflax.model import architectures

# Peak dense bf16 FLOP/s by a fragment of `jax.Device.device_kind`; the first match wins.
PEAK_BF16_FLOPS = (
    ("H100 PCIe", 756e12),
    ("H100", 989e12),  # SXM
    ("H200", 989e12),
    ("A100", 312e12),
    ("L4", 121e12),
    ("TPU v4", 275e12),
    ("TPU v5 lite", 197e12),
    ("TPU v5p", 459e12),
)
# Distinct host batches cycled through by the host-fed figure, so each step copies anew.
HOST_BATCHES = 4


@dataclasses.dataclass(frozen=True)
class DeviceOptions:
  """How long to time, the peak to credit and whether to run the torch peer."""

  repeats: int = 3  # Timed rounds of every figure.
  steps: int = 10  # Train steps per round.
  warmup_steps: int = 2  # Untimed steps of each contender after compilation.
  peak_flops: float = 0.0  # The device's peak bf16 FLOP/s; 0: from PEAK_BF16_FLOPS.
  torch: bool = True  # Time torchvision's ResNet beside ageflax.
  torch_compile: bool = False  # Run it through torch.compile.


def peak_flops(device_kind: str, override: float = 0.0) -> float | None:
  """`override` if set, else the peak bf16 FLOP/s of `device_kind`; None if unknown."""
  if override > 0:
    return override
  kind = device_kind.lower()
  return next((peak for fragment, peak in PEAK_BF16_FLOPS if fragment.lower() in kind), None)


class TorchvisionPeer:
  """torchvision's `model.name` with one output, trained with Adam and MSE on the device
  ageflax uses (CUDA where JAX has a GPU, else the CPU), channels_last, bf16 autocast when
  ageflax computes in bfloat16."""

  def __init__(self, config: ml_collections.ConfigDict, batch: dict, compile_model: bool):
    import torch
    import torchvision

    self._torch = torch
    on_gpu = jax.devices()[0].platform == "gpu" and torch.cuda.is_available()
    self.device = torch.device("cuda" if on_gpu else "cpu")
    torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest kernels once
    torch.set_num_threads(cores())
    model = torchvision.models.get_model(config.model.name, num_classes=1)
    model = model.to(self.device, memory_format=torch.channels_last).train()
    self.optimizer = torch.optim.Adam(model.parameters(), lr=config.optim.learning_rate,
                                      eps=config.optim.eps)
    self.model = torch.compile(model) if compile_model else model
    self.autocast = config.model.dtype == "bfloat16"
    images = torch.from_numpy(batch["image"]).to(self.device).permute(0, 3, 1, 2).float() / 255
    self.images = images.contiguous(memory_format=torch.channels_last)
    self.ages = torch.from_numpy(batch["age"]).to(self.device)
    self.description = (f"torchvision {config.model.name}, channels_last"
                        f"{', bf16 autocast' if self.autocast else ''}"
                        f"{', torch.compile' if compile_model else ''}, Adam, {self.device.type}")

  def run(self, num_steps: int) -> None:
    torch = self._torch
    for _ in range(num_steps):
      self.optimizer.zero_grad(set_to_none=True)
      with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
        predictions = self.model(self.images)[:, 0]
      torch.nn.functional.mse_loss(predictions.float(), self.ages).backward()
      self.optimizer.step()
    if self.device.type == "cuda":
      torch.cuda.synchronize()


def run(config: ml_collections.ConfigDict, options: DeviceOptions) -> list[str]:
  """Measures the figures above for `config` (see `benchmarks.configure`); the lines."""
  mesh = sharding.create_mesh()
  batch_size, size = config.train.batch_size, config.data.image_size
  sharding.check_batch_size(batch_size, mesh, "train.batch_size")
  host_batch = synthetic_batch(batch_size, size, config.seed)
  batch = sharding.global_batch(host_batch, mesh, batch_size)
  plain = _warm_step(config, mesh, batch, options)
  augmenting = _warm_step(sections.with_placement(config, "device"), mesh, batch, options)
  lines = [_header(config, mesh)]
  runners = {"ageflax": lambda num_steps: plain.run(batch, num_steps),
             "ageflax_device_augment": lambda num_steps: augmenting.run(batch, num_steps)}
  peer = _torch_peer(config, host_batch, options, lines)
  if peer is not None:
    runners["torch"] = peer.run
  figures = interleaved_rates(runners, options.steps, options.repeats, batch_size)
  whats = {"ageflax": f"jitted step, compile {plain.compile_seconds:.1f} s",
           "ageflax_device_augment": f"+ {sections.augmentation_name(config.data)} on device, "
                                     f"compile {augmenting.compile_seconds:.1f} s",
           "torch": peer.description if peer is not None else ""}
  lines += [_figure_line("train_step", name, figure, whats[name]) for name, figure in
            figures.items()]
  lines += _mfu_lines(config, options, figures)
  if peer is not None:
    lines.append(f"ratio train_step ageflax/torch: "
                 f"{figures['ageflax'].median / figures['torch'].median:.2f}")
  host_batches = itertools.cycle([synthetic_batch(batch_size, size, config.seed + index)
                                  for index in range(HOST_BATCHES)])
  plain.run_stream(host_batches, options.warmup_steps)
  fed = interleaved_rates({"host_fed": lambda num_steps: plain.run_stream(host_batches, num_steps)},
                          options.steps, options.repeats, batch_size)["host_fed"]
  lines.append(_figure_line("end_to_end", "ageflax_host_fed", fed,
                            "a new host batch copied in every step, no input pipeline"))
  return lines


def _warm_step(config, mesh, batch, options: DeviceOptions):
  step = compile_ageflax_step(config, mesh, batch)
  step.run(batch, options.warmup_steps)
  return step


def _header(config: ml_collections.ConfigDict, mesh) -> str:
  device = jax.devices()[0]
  size = config.data.image_size
  return (f"device benchmark: {config.model.name} at {size}x{size}, batch "
          f"{config.train.batch_size}, {config.model.dtype}, conv_impl {config.model.conv_impl}; "
          f"{device.device_kind} ({device.platform}), {sharding.describe(mesh)}; "
          f"jax {jax.__version__}")


def _torch_peer(config, host_batch, options: DeviceOptions, lines: list[str]):
  """The warmed-up torchvision peer, or None with a line saying why it is skipped."""
  if not options.torch:
    return None
  for module in ("torch", "torchvision"):
    try:
      importlib.import_module(module)
    except ImportError:
      lines.append(f"train_step torch: skipped: {module} not installed")
      return None
  try:
    peer = TorchvisionPeer(config, host_batch, options.torch_compile)
  except ValueError as e:  # torchvision has no such model (the test-only tiny ResNet)
    lines.append(f"train_step torch: skipped: {e}")
    return None
  peer.run(options.warmup_steps)
  return peer


def _figure_line(section: str, name: str, figure: Figure, what: str) -> str:
  return (f"{section} {name}: {figure.median:.1f} images/s (min-max {min(figure.values):.1f}-"
          f"{max(figure.values):.1f}; {what})")


def _mfu_lines(config, options: DeviceOptions, figures: dict[str, Figure]) -> list[str]:
  """Each step's model FLOP utilisation: known FLOPs per image x images/s over the peak."""
  kind = jax.devices()[0].device_kind
  peak = peak_flops(kind, options.peak_flops)
  per_image = architectures.train_flops_per_image(config.model.name, config.data.image_size)
  if peak is None:
    return [f"mfu {name}: n/a (no peak bf16 FLOP/s known for device kind {kind!r}; pass "
            "--peak_flops)" for name in figures]
  return [f"mfu {name}: {figure.median * per_image / peak:.3f} ({per_image / 1e9:.2f} GFLOP "
          f"per image, peak {peak / 1e12:.0f} TFLOP/s bf16 for {kind!r})"
          for name, figure in figures.items()]
