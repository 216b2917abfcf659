"""Reading prepared TFDS records against reading the photo folder they were written from.

  python scripts/benchmark_records.py --data_dir=../shared/data/faces --records_dir=/tmp/rec

Writes the records first when --records_dir holds none (timed separately). Then, in
turns, times the two ways a run reads its photos: `prepare` (check every row, decode
every image once into the in-memory cache) and, with the cache off, the training
stream (decode + full augmentation + batch each step). Prints images/s, the median of
--repeats rounds with min-max, and `ratio ... records/folder` lines.
"""

from ageflax.cli import benchmark_records as benchmark_records_cli

if __name__ == "__main__":
  benchmark_records_cli.run()
