"""Writes a folder of synthetic, age-labelled face pictures.

Usage: python scripts/make_synthetic_faces.py DIR [--n 2000] [--seed 0]
           [--image_size 128] [--overwrite]

DIR receives labels.csv (file_name,real_age) and final_files/*.jpg. The same
seed always gives byte-identical files.
"""

from ageflax.cli import make_synthetic_faces as make_synthetic_faces_cli

if __name__ == "__main__":
  make_synthetic_faces_cli.run()
