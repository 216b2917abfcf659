"""Measures the face normaliser on a data folder: photos/s per core, faces found, doubles.

  python scripts/benchmark_faces.py --data_dir=../shared/data/cacd [--num_photos=1000]
"""

from ageflax.cli import benchmark_faces as benchmark_faces_cli

if __name__ == "__main__":
  benchmark_faces_cli.run()
