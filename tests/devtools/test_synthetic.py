"""Synthetic faces: the study's layout, determinism, plausible ages, and the script's errors."""

import pathlib

import numpy as np
from conftest import run_entry_point

from ageflax.data import layouts
from ageflax.devtools.synthetic import portraits


def test_writes_a_readable_folder_deterministically(tmp_path):
  first = portraits.write_synthetic_faces(tmp_path / "a", 12, seed=3, image_size=48)
  second = portraits.write_synthetic_faces(tmp_path / "b", 12, seed=3, image_size=48)
  other = portraits.write_synthetic_faces(tmp_path / "c", 12, seed=4, image_size=48)
  assert first.read_text() == second.read_text() != other.read_text()
  faces = layouts.read_labels_csv(tmp_path / "a")
  assert len(faces.records) == 12 and not faces.problems
  for record in faces.records:
    twin = tmp_path / "b" / "final_files" / record.file_name
    assert twin.read_bytes() == pathlib.Path(record.path).read_bytes()


def test_ages_cover_children_to_the_old_and_centre_on_adults():
  ages = portraits.sample_ages(20_000, np.random.default_rng(0))
  assert ages.min() >= 1 and ages.max() <= 100
  assert 25 <= np.median(ages) <= 40
  assert (ages < 18).mean() > 0.03 and (ages >= 65).mean() > 0.03


def test_faces_change_with_age():
  young = np.asarray(portraits.draw_face(20, np.random.default_rng(0), 64), np.float32)
  old = np.asarray(portraits.draw_face(85, np.random.default_rng(0), 64), np.float32)
  assert young.shape == (64, 64, 3)
  assert np.abs(young - old).mean() > 5


def test_script_refuses_to_overwrite_without_asking(tmp_path):
  args = ["scripts/make_synthetic_faces.py", str(tmp_path / "f"), "--n", "3", "--image_size",
          "32"]
  assert run_entry_point(args).returncode == 0
  again = run_entry_point(args)
  assert again.returncode == 1 and "Traceback" not in again.stderr
  assert "already exists; pass --overwrite" in again.stderr
