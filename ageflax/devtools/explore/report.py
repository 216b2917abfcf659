"""The overview in words: the Markdown report.md and the block `scripts/explore.py` prints."""

import os
import textwrap
from collections.abc import Sequence

SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.md"
PROBLEMS_FILE = "problems.csv"
HISTOGRAM_FILE = "age_histogram.png"
SAMPLES_FILE = "samples.png"
# Terminal and report lists stop here; summary.json and problems.csv hold them all.
SHOWN_PROBLEMS = 20
SHOWN_DUPLICATE_GROUPS = 5
_INDENT = " " * 18  # where the values of the terminal summary start


def report_markdown(summary: dict) -> str:
  """A short Markdown report of the summary, with the two plots embedded."""
  photos, ages, images = summary["photos"], summary["ages"], summary["images"]
  lines = [f"# Data overview: {summary['directory']}", "",
           f"Layout `{summary['format']}` ({summary['source']}); "
           f"made in {summary['seconds']:.1f} s.", "", "## Photos", "",
           _table(["rows listed", "usable", "set aside", "problems"],
                  [[f"{photos['rows_listed']:,}", f"{photos['usable']:,}",
                    f"{photos['set_aside']:,}", f"{summary['problems']['count']:,}"]]),
           "## Missing values", ""]
  for table, counts in summary["missing_values"].items():
    lines += [f"`{table}` ({counts['rows']:,} rows):", "",
              _table(list(counts["missing"]), [list(counts["missing"].values())])]
  lines += ["## Ages", "", _table(["min", "mean", "median", "max", "std"],
                                  [[ages[k] for k in ("min", "mean", "median", "max", "std")]]),
            f"![Age histogram]({HISTOGRAM_FILE})", "", "Most frequent ages:", "",
            _table(["age", "photos", "share"],
                   [[t["age"], f"{t['count']:,}", _percent(t["share"])]
                    for t in summary["top_ages"]]),
            "Age bands (by the floor of the age):", "",
            _table(["band", "photos", "share"],
                   [[b["band"], f"{b['count']:,}", _percent(b["share"])]
                    for b in summary["age_bands"]])]
  lines += ["## Images", "", _images_paragraph(images), "",
            _table(["width x height", "photos", "share"],
                   [[f"{s['width']}x{s['height']}", f"{s['count']:,}", _percent(s["share"])]
                    for s in images["sizes"]]),
            f"![Sample photos]({SAMPLES_FILE})", ""]
  return "\n".join(lines + _problem_sections(summary))


def _images_paragraph(images: dict) -> str:
  return (f"{images['count']:,} readable images, {images['megabytes']:,} MB; "
          f"{images['distinct_sizes']} distinct sizes, width {images['width']['min']}-"
          f"{images['width']['max']}, height {images['height']['min']}-"
          f"{images['height']['max']}; formats {_counts(images['formats'])}; "
          f"modes {_counts(images['modes'])}; {_channels(images['channels'])}; "
          f"{images['exif_rotated']:,} turned by EXIF orientation.")


def _problem_sections(summary: dict) -> list[str]:
  duplicates, problems = summary["duplicates"], summary["problems"]
  lines = ["## Unreadable files", ""]
  lines += [f"- `{u['file_name']}`: {u['reason']}" for u in summary["unreadable"]] or ["None."]
  lines += ["", "## Exact duplicates (same bytes)", "",
            f"{duplicates['groups']:,} groups, {duplicates['extra_copies']:,} extra copies; "
            f"{duplicates['groups_with_different_ages']:,} groups label the same photo with "
            "different ages."]
  lines += ["- " + " = ".join(f"`{d['file_name']}` (age {d['age']})" for d in group)
            for group in duplicates["list"][:SHOWN_PROBLEMS]]
  if duplicates["groups"] > SHOWN_PROBLEMS:
    lines.append(f"- ... and {duplicates['groups'] - SHOWN_PROBLEMS:,} more groups")
  lines += ["", f"## Problems ({problems['count']:,}, all listed in {PROBLEMS_FILE})", ""]
  lines += [f"- {p['text']}" for p in problems["list"][:SHOWN_PROBLEMS]] or ["None."]
  if problems["count"] > SHOWN_PROBLEMS:
    lines.append(f"- ... and {problems['count'] - SHOWN_PROBLEMS:,} more")
  return [*lines, ""]


def _table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
  lines = ["| " + " | ".join(str(h) for h in header) + " |",
           "|" + "---|" * len(header)]
  lines += ["| " + " | ".join("-" if v is None else str(v) for v in row) + " |" for row in rows]
  return "\n".join(lines) + "\n"


def _percent(share: float) -> str:
  return f"{100 * share:.1f}%"


def _counts(counts: dict) -> str:
  return ", ".join(f"{key} {value:,}" for key, value in counts.items()) or "none"


def _channels(counts: dict) -> str:
  return ", ".join(f"{n:,} with {c} channel{'s' * (c != '1')}" for c, n in counts.items())


def format_summary(summary: dict, out_dir: str | os.PathLike) -> str:
  """The summary as a compact block for the terminal, wrapped at 100 columns."""
  photos = summary["photos"]
  lines = [f"Data overview of {summary['directory']} ({summary['format']} layout, "
           f"{summary['source']})",
           _field("photos", f"{photos['usable']:,} usable of {photos['rows_listed']:,} listed "
                  f"({photos['set_aside']:,} set aside)")]
  lines += [_field("missing values", f"{table} ({counts['rows']:,} rows): "
                   f"{_counts(counts['missing'])}")
            for table, counts in summary["missing_values"].items()]
  lines += _age_and_image_lines(summary) if photos["usable"] else [_field("ages", "none usable")]
  return "\n".join(lines + _problem_lines(summary, out_dir))


def _age_and_image_lines(summary: dict) -> list[str]:
  ages, images = summary["ages"], summary["images"]
  return [
      _field("age (years)", f"min {ages['min']}, mean {ages['mean']}, median {ages['median']}, "
             f"max {ages['max']}, std {ages['std']}"),
      _field("most frequent", ", ".join(f"{t['age']} ({t['count']:,})"
                                        for t in summary["top_ages"])),
      _field("age bands", ", ".join(f"{b['band']} {b['count']:,} ({_percent(b['share'])})"
                                    for b in summary["age_bands"])),
      _field("image sizes", ", ".join(f"{s['width']}x{s['height']} ({s['count']:,})"
                                      for s in images["sizes"][:5])
             + f"; {images['distinct_sizes']} distinct; width {images['width']['min']}-"
             f"{images['width']['max']}, height {images['height']['min']}-"
             f"{images['height']['max']}"),
      _field("formats", f"{_counts(images['formats'])}; modes {_counts(images['modes'])}; "
             f"{_channels(images['channels'])}; {images['megabytes']:,} MB"),
  ]


def _field(name: str, text: str) -> str:
  return textwrap.fill(text, width=100, initial_indent=f"  {name:<16}",
                       subsequent_indent=_INDENT, break_on_hyphens=False)


def _problem_lines(summary: dict, out_dir: str | os.PathLike) -> list[str]:
  duplicates, problems = summary["duplicates"], summary["problems"]
  lines = [_field("unreadable", f"{len(summary['unreadable']):,} images"),
           _field("duplicates", f"{duplicates['groups']:,} groups of identical files, "
                  f"{duplicates['extra_copies']:,} extra copies; "
                  f"{duplicates['groups_with_different_ages']:,} groups with different ages")]
  lines += [_INDENT + " = ".join(f"{d['file_name']} (age {d['age']})" for d in group)
            for group in duplicates["list"][:SHOWN_DUPLICATE_GROUPS]]
  if duplicates["groups"] > SHOWN_DUPLICATE_GROUPS:
    lines.append(f"{_INDENT}... and {duplicates['groups'] - SHOWN_DUPLICATE_GROUPS:,} more groups")
  by_kind = ", ".join(f"{k.replace('_', ' ')} {n:,}" for k, n in problems["by_kind"].items())
  lines.append(_field("problems", f"{problems['count']:,}" + (f" ({by_kind})" if by_kind else "")))
  lines += [f"    {p['text']}" for p in problems["list"][:SHOWN_PROBLEMS]]
  if problems["count"] > SHOWN_PROBLEMS:
    lines.append(f"    ... and {problems['count'] - SHOWN_PROBLEMS:,} more in "
                 f"{os.path.join(out_dir, PROBLEMS_FILE)}")
  outputs = ", ".join(summary["outputs"][k] for k in ("histogram", "samples", "summary",
                                                      "report", "problems"))
  lines.append(f"wrote {out_dir}/: {outputs} ({summary['seconds']:.1f} s)")
  return lines
