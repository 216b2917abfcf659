"""The benchmark's settings (`Options`), its figures and the report it prints and writes."""

import dataclasses
import json
import os
import statistics

from ageflax.train import summaries

SECTIONS = ("input_pipeline", "train_step", "end_to_end", "utilisation", "peers")
PEERS = ("keras", "torch")


@dataclasses.dataclass(frozen=True)
class Options:
  """What to measure and for how long; the model, resolution and batch come from the config."""

  sections: tuple[str, ...] = SECTIONS
  peers: tuple[str, ...] = PEERS
  repeats: int = 3  # Timed repetitions of every figure.
  steps: int = 2  # Train steps per repetition.
  warmup_steps: int = 1  # Untimed steps of each contender after compilation.
  pipeline_batches: int = 20  # Batches per repetition of the input-pipeline figures.
  synthetic_faces: int = 512  # Faces written to a temp dir when no data folder is given.
  matmul_size: int = 2048  # Side of the square matrices of the peak-rate product.
  torch_compile: bool = False  # The torch peer runs its model through torch.compile.


@dataclasses.dataclass(frozen=True)
class Figure:
  """The repeated measurements of one rate."""

  values: tuple[float, ...]
  unit: str = "images/s"

  @property
  def median(self) -> float:
    return statistics.median(self.values)

  def scaled(self, factor: float, unit: str) -> "Figure":
    return Figure(tuple(value * factor for value in self.values), unit)

  def to_dict(self) -> dict:
    return {"median": self.median, "min": min(self.values), "max": max(self.values),
            "values": list(self.values), "unit": self.unit}


@dataclasses.dataclass
class Report:
  """Figures by section, ratio lines and notes; printed as a table and written as JSON."""

  settings: dict
  sections: dict[str, dict[str, dict]] = dataclasses.field(default_factory=dict)
  ratios: dict[str, float] = dataclasses.field(default_factory=dict)
  notes: list[str] = dataclasses.field(default_factory=list)
  _rows: list[tuple[str, str, Figure, str]] = dataclasses.field(default_factory=list)

  def add(self, section: str, name: str, what: str, figure: Figure, extra: str = "",
          **fields) -> None:
    """Records one figure; `fields` go to the JSON beside it, `extra` to the table."""
    self.sections.setdefault(section, {})[name] = {"what": what, **figure.to_dict(), **fields}
    self._rows.append((section, what, figure, extra))

  def add_ratio(self, section: str, numerator: str, denominator: str) -> None:
    """Median over median of two figures of `section`, when both were measured."""
    figures = self.sections.get(section, {})
    if numerator in figures and denominator in figures:
      ratio = figures[numerator]["median"] / figures[denominator]["median"]
      self.ratios[f"{section} {numerator}/{denominator}"] = ratio

  def note(self, text: str) -> None:
    self.notes.append(text)
    summaries.log("%s", text)

  def text(self) -> str:
    """The table, the notes and one `ratio SECTION A/B: X.XX` line per ratio."""
    settings = self.settings
    lines = [settings["title"], f"data: {settings.get('data', 'none read (fixed batch only)')}",
             f"timing: median and min-max of {settings['repeats']} repetitions of "
             f"{settings['steps']} step(s) ({settings['pipeline_batches']} batches for "
             f"pipelines) after {settings['warmup_steps']} warm-up step(s), taking turns",
             f"{'section':<15}{'what':<58}{'median':>10}  {'min-max':<19}{'unit':<10}"]
    for section, what, figure, extra in self._rows:
      spread = f"{_number(min(figure.values))}-{_number(max(figure.values))}"
      lines.append(f"{section:<15}{what:<58}{_number(figure.median):>10}  {spread:<19}"
                   f"{figure.unit:<10}{extra}")
    lines += [f"note: {note}" for note in self.notes]
    lines += [f"ratio {name}: {value:.2f}" for name, value in self.ratios.items()]
    return "\n".join(lines)

  def to_json(self) -> dict:
    return {"settings": self.settings, "sections": self.sections, "ratios": self.ratios,
            "notes": self.notes}

  def write_json(self, path: str) -> None:
    with open(path, "w") as f:
      json.dump(self.to_json(), f, indent=2)


def write_reports(path: str, reports: dict[str, Report]) -> None:
  """Writes one report as `Report.write_json` does, several by setting under "reports"."""
  if len(reports) == 1:
    next(iter(reports.values())).write_json(path)
    return
  with open(path, "w") as f:
    json.dump({"reports": {name: report.to_json() for name, report in reports.items()}}, f,
              indent=2)


def _number(value: float) -> str:
  return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3g}"


def cores() -> int:
  """The CPU cores this process may run on."""
  return len(os.sched_getaffinity(0))


def per_core(figure: Figure) -> str:
  """The figure's median per CPU core, as the table's extra column says it."""
  return f"{figure.median / cores():.1f} per core"
