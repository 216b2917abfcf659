"""Data overview of a face-age folder, the first look before training.

  python scripts/explore.py ../shared/data/faces --out /tmp/explore_faces

Counts the photos, missing values, ages, age bands, image sizes and formats, finds
unreadable files and exact duplicates, lists every problem at once, prints a summary and
writes OUT/age_histogram.png, OUT/samples.png, OUT/summary.json, OUT/problems.csv and
OUT/report.md. The layout is told from the files unless --format names it.
"""

from ageflax.cli import explore as explore_cli

if __name__ == "__main__":
  explore_cli.run()
