"""The lever table: ageflax's train step under each speed lever, side by side in one run.

A lever changes one thing of the configured step (the baseline): the compute dtype, the
convolution algorithm, the batch size, `jax.default_matmul_precision`, or XLA's CPU
flags. Levers without XLA flags are compiled in this process and timed in rounds taking
turns with the baseline, one lever at a time, so that each ratio compares figures taken
side by side. XLA reads its flags once, when JAX starts, so each XLA-flag lever times the
baseline in a child process started with those flags (`child_command`); its ratio is to
this process' baseline. Every figure is images/s of the jitted step on a fixed
device-resident batch. This module never imports TensorFlow.
"""

import contextlib
import dataclasses
import json
import os
import subprocess

import jax
import ml_collections

from ageflax.config import schema
from ageflax.core import sharding
from ageflax.core.errors import ConfigError
from ageflax.devtools.bench.report import Figure, cores
from ageflax.devtools.bench.timing import compile_ageflax_step, interleaved_rates, synthetic_batch

BASELINE = "baseline"
# The line a child process prints its figure on, for the parent to read.
CHILD_PREFIX = "lever figure: "


@dataclasses.dataclass(frozen=True)
class Lever:
  """One change to the baseline step: config overrides, a matmul precision or XLA flags."""

  what: str
  overrides: tuple[tuple[str, object], ...] = ()  # (dotted config field, value)
  matmul_precision: str = ""  # jax.default_matmul_precision while tracing; '': JAX's
  xla_flags: str = ""  # added to XLA_FLAGS of a child process; '': timed in this process


LEVERS = {
    BASELINE: Lever("the config as it is"),
    "bfloat16": Lever("model.dtype=bfloat16 (float32 params and loss)",
                      (("model.dtype", "bfloat16"),)),
    "conv_xla": Lever("model.conv_impl=xla", (("model.conv_impl", "xla"),)),
    "conv_matmul": Lever("model.conv_impl=matmul", (("model.conv_impl", "matmul"),)),
    "conv_auto": Lever("model.conv_impl=auto", (("model.conv_impl", "auto"),)),
    "batch32": Lever("train.batch_size=32", (("train.batch_size", 32),)),
    "batch128": Lever("train.batch_size=128", (("train.batch_size", 128),)),
    "precision_bf16": Lever("jax.default_matmul_precision('bfloat16')",
                            matmul_precision="bfloat16"),
    "xla_onednn": Lever("XLA_FLAGS --xla_cpu_use_onednn=true",
                        xla_flags="--xla_cpu_use_onednn=true"),
    "xla_xnnpack": Lever("XLA_FLAGS --xla_cpu_use_xnnpack=true",
                         xla_flags="--xla_cpu_use_xnnpack=true"),
    "xla_ynn_dot": Lever("XLA_FLAGS --xla_cpu_experimental_ynn_fusion_type=dot",
                         xla_flags="--xla_cpu_experimental_ynn_fusion_type=dot"),
    "xla_fast_math": Lever("XLA_FLAGS --xla_cpu_enable_fast_math=true",
                           xla_flags="--xla_cpu_enable_fast_math=true"),
    "xla_one_eigen_thread": Lever("XLA_FLAGS --xla_cpu_multi_thread_eigen=false",
                                  xla_flags="--xla_cpu_multi_thread_eigen=false"),
}


@dataclasses.dataclass(frozen=True)
class Timing:
  """How long to time each lever."""

  repeats: int = 2  # Rounds; each lever and the baseline are timed once per round.
  steps: int = 2  # Train steps per round.
  warmup_steps: int = 1  # Untimed steps after compilation.


@dataclasses.dataclass
class LeverTable:
  """Each lever's images/s (or why it failed) beside the baseline's; printed as a table."""

  title: str
  rows: dict[str, dict] = dataclasses.field(default_factory=dict)

  def add(self, name: str, figure: Figure | None, baseline: Figure | None,
          compile_seconds: float = 0.0, failure: str = "") -> None:
    """Records one lever; its ratio is its median over the baseline's taken beside it."""
    row = {"what": LEVERS[name].what, "compile_seconds": compile_seconds, "failure": failure}
    if figure is not None:
      row.update(figure.to_dict(), ratio=figure.median / baseline.median if baseline else None)
    self.rows[name] = row

  def text(self) -> str:
    lines = [self.title, f"{'lever':<22}{'what':<56}{'images/s':>9}  {'min-max':<14}"
             f"{'x baseline':>10}  compile"]
    for name, row in self.rows.items():
      if row["failure"]:
        lines.append(f"{name:<22}{row['what']:<56}  failed: {row['failure']}")
        continue
      spread = f"{row['min']:.1f}-{row['max']:.1f}"
      ratio = "" if row["ratio"] is None else f"{row['ratio']:.2f}"
      lines.append(f"{name:<22}{row['what']:<56}{row['median']:>9.1f}  {spread:<14}"
                   f"{ratio:>10}  {row['compile_seconds']:.1f} s")
    return "\n".join(lines)

  def write_json(self, path: str) -> None:
    with open(path, "w") as f:
      json.dump({"title": self.title, "levers": self.rows}, f, indent=2)


def check_levers(names: list[str]) -> None:
  """Raises ConfigError on an unknown lever name."""
  unknown = set(names) - set(LEVERS)
  if unknown:
    raise ConfigError(f"--levers: unknown {sorted(unknown)}; choose from {tuple(LEVERS)}")


def with_lever(config: ml_collections.ConfigDict, lever: Lever) -> ml_collections.ConfigDict:
  """A copy of `config` with the lever's overrides, checked by the config schema."""
  config = config.copy_and_resolve_references()
  for field, value in lever.overrides:
    *parents, key = field.split(".")
    section = config
    for parent in parents:
      section = section[parent]
    section[key] = value
  schema.check(config)
  return config


def measure(config: ml_collections.ConfigDict, names: list[str], timing: Timing,
            child_command: list[str]) -> LeverTable:
  """Times the levers `names` beside the baseline `config` (see `benchmarks.configure`).

  Args:
    config: the baseline's config.
    names: keys of `LEVERS`, in the table's order after the baseline.
    timing: rounds and steps.
    child_command: the command that prints the baseline's figure on a `CHILD_PREFIX` line
      (`child_figure_line`), run with each XLA-flag lever's flags added to XLA_FLAGS.
  """
  check_levers(names)
  mesh = sharding.create_mesh()
  table = LeverTable(_title(config, mesh, timing))
  baseline_run, baseline = _compiled_runner(config, LEVERS[BASELINE], mesh, timing)
  baseline_values, rows = [], {}
  for name in (name for name in names if name != BASELINE):
    lever = LEVERS[name]
    if lever.xla_flags:
      rows[name] = _child_row(lever, child_command, timing)
      continue
    try:
      lever_run, step = _compiled_runner(with_lever(config, lever), lever, mesh, timing)
    except (ConfigError, jax.errors.JaxRuntimeError) as e:
      rows[name] = {"failure": str(e).splitlines()[0]}
      continue
    rates = interleaved_rates({BASELINE: baseline_run, name: lever_run}, timing.steps,
                              timing.repeats, baseline.batch_size)
    baseline_values += rates[BASELINE].values
    rows[name] = {"figure": rates[name].scaled(step.batch_size / baseline.batch_size, "images/s"),
                  "beside": rates[BASELINE], "compile_seconds": step.compile_seconds}
  if not baseline_values:
    baseline_values = interleaved_rates({BASELINE: baseline_run}, timing.steps, timing.repeats,
                                        baseline.batch_size)[BASELINE].values
  pooled = Figure(tuple(baseline_values))
  table.add(BASELINE, pooled, pooled, baseline.compile_seconds)
  for name, row in rows.items():
    table.add(name, row.get("figure"), row.get("beside", pooled), row.get("compile_seconds", 0.0),
              row.get("failure", ""))
  return table


def child_figure_line(config: ml_collections.ConfigDict, timing: Timing) -> str:
  """The baseline's figure as the `CHILD_PREFIX` line that `measure` reads from a child."""
  mesh = sharding.create_mesh()
  run, step = _compiled_runner(config, LEVERS[BASELINE], mesh, timing)
  figure = interleaved_rates({BASELINE: run}, timing.steps, timing.repeats, step.batch_size)
  return CHILD_PREFIX + json.dumps({"values": figure[BASELINE].values,
                                    "compile_seconds": step.compile_seconds})


def _compiled_runner(config, lever: Lever, mesh, timing: Timing):
  """(run(num_steps), the compiled step) of `config` under the lever's matmul precision."""
  sharding.check_batch_size(config.train.batch_size, mesh, "train.batch_size")
  host_batch = synthetic_batch(config.train.batch_size, config.data.image_size, config.seed)
  batch = sharding.global_batch(host_batch, mesh, config.train.batch_size)
  precision = (jax.default_matmul_precision(lever.matmul_precision) if lever.matmul_precision
               else contextlib.nullcontext())
  with precision:
    step = compile_ageflax_step(config, mesh, batch)
  step.run(batch, timing.warmup_steps)
  return (lambda num_steps: step.run(batch, num_steps)), step


def _child_row(lever: Lever, child_command: list[str], timing: Timing) -> dict:
  """The baseline timed in a child process that XLA starts with the lever's flags."""
  env = dict(os.environ, XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} {lever.xla_flags}".strip())
  # Compilation alone can take minutes on a loaded 2-core machine.
  timeout = 600 + 60 * timing.repeats * timing.steps
  try:
    result = subprocess.run(child_command, env=env, capture_output=True, text=True,
                            timeout=timeout, check=False)
  except subprocess.TimeoutExpired:
    return {"failure": f"no figure within {timeout} s"}
  for line in result.stdout.splitlines():
    if line.startswith(CHILD_PREFIX):
      measured = json.loads(line[len(CHILD_PREFIX):])
      return {"figure": Figure(tuple(measured["values"])),
              "compile_seconds": measured["compile_seconds"]}
  last = [line for line in result.stderr.splitlines() if line.strip()][-1:] or ["no output"]
  return {"failure": f"exit {result.returncode}: {last[0][:120]}"}


def _title(config: ml_collections.ConfigDict, mesh, timing: Timing) -> str:
  size = config.data.image_size
  return (f"ageflax levers: {config.model.name} at {size}x{size}, batch "
          f"{config.train.batch_size}, {config.model.dtype}, conv_impl {config.model.conv_impl}; "
          f"{sharding.describe(mesh)}; {cores()} CPU cores; XLA_FLAGS="
          f"{os.environ.get('XLA_FLAGS', '')!r}\ntiming: median and min-max of {timing.repeats} "
          f"round(s) of {timing.steps} step(s) after {timing.warmup_steps} warm-up step(s); each "
          "lever in this process takes turns with the baseline, and its ratio is to the baseline "
          "beside it; an XLA_FLAGS lever runs in a child process, its ratio to the baseline here")
