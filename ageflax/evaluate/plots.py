"""The PNGs of a run: training curves, predicted against true age, and error by age band.

Figures are drawn on matplotlib `Figure` objects (the Agg canvas, no pyplot and no global
state), so plotting works on servers without a display and inside the training loop.
"""

import os
from collections.abc import Sequence

import numpy as np
from matplotlib import ticker
from matplotlib.figure import Figure

from ageflax.core import atomic_files

_BLUE, _ORANGE, _RED, _GREY = "#1f77b4", "#ff7f0e", "#d62728", "#555555"


def plot_predicted_vs_true(
    ages: np.ndarray, predictions: np.ndarray, path: str | os.PathLike, title: str,
    legal_age: float | None = None, challenge_age: float | None = None,
) -> None:
  """Scatter of estimated against true age, with the diagonal and the mean per year of age.

  Args:
    ages: true ages.
    predictions: estimated ages, in the order of `ages`.
    path: the PNG to write.
    title: what was evaluated, the title's second line (the first gives the MAE).
    legal_age: if set, a vertical line at the legal age (of the true age).
    challenge_age: if set, a horizontal line at the challenge age (of the estimate); with
      the legal age it marks the alcohol check's quadrants.
  """
  ages, predictions = np.asarray(ages, np.float64), np.asarray(predictions, np.float64)
  figure = Figure(figsize=(8, 7.6), dpi=110, layout="constrained")
  axes = figure.add_subplot()
  top = max(float(np.max(ages, initial=0)), float(np.max(predictions, initial=0)), 10) * 1.05
  bottom = min(0.0, float(np.min(predictions, initial=0)) - 1)
  axes.fill_between([bottom, top], [bottom - 5, top - 5], [bottom + 5, top + 5], color=_GREY,
                    alpha=0.12, linewidth=0, label="within 5 years")
  # Dense scatters need faint points to show where most photos lie.
  alpha = float(np.clip(20 / np.sqrt(max(len(ages), 1)), 0.06, 0.8))
  points = axes.scatter(ages, predictions, s=7, alpha=alpha, color=_BLUE, linewidths=0,
                        label=f"one photo (n = {len(ages):,})", rasterized=True)
  axes.plot([bottom, top], [bottom, top], color="black", linewidth=1.2, label="perfect estimate")
  years, means = _mean_per_year(ages, predictions)
  if len(years):
    axes.plot(years, means, color=_ORANGE, linewidth=2, label="mean estimate per year of age")
  _mark_alcohol_check(axes, legal_age, challenge_age)
  mae = float(np.mean(np.abs(predictions - ages))) if len(ages) else float("nan")
  axes.set_title(f"Estimated vs true age: MAE {mae:.2f} years on {len(ages):,} photos\n{title}",
                 fontsize=12)
  axes.set_xlabel("True age (years)", fontsize=12)
  axes.set_ylabel("Estimated age (years)", fontsize=12)
  axes.set_xlim(bottom, top)
  axes.set_ylim(bottom, top)
  axes.set_aspect("equal")
  axes.grid(alpha=0.3)
  # Upper left stays almost empty: few children are estimated old.
  legend = axes.legend(loc="upper left", fontsize=9, framealpha=0.9)
  legend.legend_handles[axes.get_legend_handles_labels()[0].index(points)].set_alpha(1)
  figure.savefig(path)


def _mark_alcohol_check(axes, legal_age: float | None, challenge_age: float | None) -> None:
  """The legal age (of the true age) and the challenge age (of the estimate), where set."""
  if legal_age is not None:
    axes.axvline(legal_age, color=_RED, linestyle=":", linewidth=1.3,
                 label=f"legal age {legal_age:g} (true age)")
  if challenge_age is not None:
    axes.axhline(challenge_age, color=_RED, linestyle="--", linewidth=1.3,
                 label=f"challenge age {challenge_age:g} (estimate below: ID check)")


def _mean_per_year(ages: np.ndarray, predictions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean estimate per whole year of true age, for years with enough photos to be steady."""
  years = np.floor(ages).astype(int)
  if not len(years):
    return np.zeros(0), np.zeros(0)
  counts = np.bincount(years)
  sums = np.bincount(years, weights=predictions)
  present = np.flatnonzero(counts >= 10)
  return present + 0.5, sums[present] / counts[present]


def plot_error_by_age(bands: Sequence[dict], path: str | os.PathLike, title: str) -> None:
  """MAE and mean signed error per band of true age, photo counts under the bands.

  Args:
    bands: `evaluator.band_errors` entries: band, count, mae and mean_error (None if empty).
    path: the PNG to write.
    title: the figure's title.
  """
  figure = Figure(figsize=(10, 5.8), dpi=110, layout="constrained")
  axes = figure.add_subplot()
  positions = np.arange(len(bands))
  width = 0.38
  mae = np.array([np.nan if b["mae"] is None else b["mae"] for b in bands])
  signed = np.array([np.nan if b["mean_error"] is None else b["mean_error"] for b in bands])
  mae_bars = axes.bar(positions - width / 2, np.nan_to_num(mae), width, color=_BLUE,
                      label="MAE (mean absolute error)")
  signed_bars = axes.bar(positions + width / 2, np.nan_to_num(signed), width, color=_ORANGE,
                         label="mean signed error (+: estimated too old)")
  # An empty band is said once (on its MAE bar); the tick below also counts 0 photos.
  axes.bar_label(mae_bars, ["no photos" if np.isnan(v) else f"{v:.1f}" for v in mae],
                 padding=2, fontsize=9)
  axes.bar_label(signed_bars, ["" if np.isnan(v) else f"{v:+.1f}" for v in signed],
                 padding=2, fontsize=9)
  axes.axhline(0, color="black", linewidth=0.8)
  low = min(0.0, float(np.nanmin(signed, initial=0)))
  high = max(1.0, float(np.nanmax(mae, initial=0)), float(np.nanmax(signed, initial=0)))
  span = high - low
  axes.set_ylim(low - 0.08 * span if low < 0 else 0, high + 0.12 * span)
  axes.set_xticks(positions, [f"{b['band']}\n{b['count']:,} photo{'s' * (b['count'] != 1)}"
                              for b in bands], fontsize=10)
  axes.set_xlabel("True age band (years)", fontsize=12)
  axes.set_ylabel("Error (years)", fontsize=12)
  axes.set_title(title, fontsize=13)
  axes.grid(axis="y", alpha=0.3)
  # Above the axes: inside, the legend would hide the bar labels of a tall first band.
  figure.legend(loc="outside upper center", ncols=2, fontsize=10)
  figure.savefig(path)


def plot_train_curves(history: Sequence[dict], path: str | os.PathLike, loss_name: str) -> None:
  """Loss and MAE per epoch, train and validation, from the trainer's history records.

  Args:
    history: one record per validation, with 'epoch' and train_/validation_ metrics
      (loss, mae; validation rmse); a metric absent from a record is left out there.
    path: the PNG to write.
    loss_name: the training loss (l2, l1, huber, dex), for the loss panel's label.
  """
  figure = Figure(figsize=(13, 5), dpi=110, layout="constrained")
  loss_axes, mae_axes = figure.subplots(1, 2)
  _curve(loss_axes, history, "train_loss", "train (mean over the epoch)", _BLUE, "-")
  _curve(loss_axes, history, "validation_loss", "validation", _ORANGE, "-")
  _curve(mae_axes, history, "train_mae", "train MAE (mean over the epoch)", _BLUE, "-")
  _curve(mae_axes, history, "validation_mae", "validation MAE", _ORANGE, "-")
  _curve(mae_axes, history, "validation_rmse", "validation RMSE", _ORANGE, "--")
  best = [r for r in history if r.get("validation_mae") is not None]
  if best:
    best = min(best, key=lambda r: r["validation_mae"])
    mae_axes.plot(best["epoch"], best["validation_mae"], "*", color=_RED, markersize=15,
                  label=f"best validation MAE {best['validation_mae']:.2f} "
                        f"(epoch {best['epoch']:.3g})", zorder=3)
  loss_axes.set_title(f"Loss ({loss_name}) per epoch", fontsize=13)
  loss_axes.set_ylabel(f"{loss_name} loss", fontsize=12)
  if _spans_decades(history, ("train_loss", "validation_loss")):
    loss_axes.set_yscale("log")
  mae_axes.set_title("Error per epoch", fontsize=13)
  mae_axes.set_ylabel("Years", fontsize=12)
  last = history[-1] if history else {"step": 0, "epoch": 0}
  for axes in (loss_axes, mae_axes):
    axes.set_xlabel("Epoch", fontsize=12)
    axes.set_xlim(0, max(1.0, last["epoch"]) * 1.04)  # from the start, even with one point
    axes.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    axes.margins(y=0.1)
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize=10)
  figure.suptitle(f"Training curves: {len(history)} validation{'s' * (len(history) != 1)}, "
                  f"step {last['step']:,} (epoch {last['epoch']:.3g})", fontsize=14)
  figure.savefig(path)


def _curve(axes, history, name: str, label: str, colour: str, style: str) -> None:
  points = [(r["epoch"], r[name]) for r in history if r.get(name) is not None]
  if points:
    epochs, values = zip(*points, strict=True)
    axes.plot(epochs, values, style, marker="o", markersize=4, color=colour, label=label)


def _spans_decades(history, names) -> bool:
  """True when the values differ by more than 10x: a log scale shows both ends."""
  values = [r[n] for r in history for n in names if r.get(n) is not None and r[n] > 0]
  return bool(values) and max(values) > 10 * min(values)



def plot_policy_tradeoff(curves: Sequence[tuple[str, np.ndarray, np.ndarray]],
                         marks: Sequence[tuple[str, float, float]], target: float,
                         protected: str, path: str | os.PathLike, title: str) -> None:
  """Protected customers passed without ID against adults asked, over every threshold.

  Args:
    curves: (rule name, share of adults asked, share of protected passed) per rule family.
    marks: (label, adults asked, protected passed) of single rules: the chosen one first,
      then e.g. Challenge 25.
    target: the largest pass rate the store accepts, drawn as a line.
    protected: the protected ages in words, e.g. '13-17'.
    path: the PNG to write (whole or not at all).
    title: the figure's title.
  """
  figure = Figure(figsize=(8.5, 6.5), dpi=110, layout="constrained")
  axes = figure.add_subplot()
  for (name, asked, passed), colour in zip(curves, (_BLUE, _ORANGE, _GREY), strict=False):
    axes.step(100 * np.asarray(asked), 100 * np.asarray(passed), where="post", color=colour,
              linewidth=1.8, label=f"rule: {name} (every threshold)")
  axes.axhline(100 * target, color=_RED, linestyle="--", linewidth=1.2,
               label=f"target: at most {100 * target:g}% of {protected}-year-olds pass")
  for (label, asked, passed), (marker, colour) in zip(marks, (("*", _RED), ("o", "black")),
                                                      strict=False):
    axes.plot(100 * asked, 100 * passed, marker=marker, markersize=14 if marker == "*" else 9,
              color=colour, linestyle="none", label=label)
  axes.set_xlabel("adults asked for ID (% of customers 18 and over)", fontsize=11)
  axes.set_ylabel(f"{protected}-year-olds sold alcohol without an ID check (%)", fontsize=11)
  axes.set_xlim(0, 100)
  axes.set_ylim(bottom=0)
  axes.grid(alpha=0.3)
  axes.set_title(title, fontsize=11)
  axes.legend(loc="upper right", fontsize=9, framealpha=0.9)
  with atomic_files.open_atomically(path, "wb") as f:
    figure.savefig(f, format="png")
