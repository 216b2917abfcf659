"""Result files are written whole or not at all; an output path is refused before any work."""

import os

import pytest

from ageflax.core import atomic_files
from ageflax.core.errors import ConfigError


def test_a_write_replaces_the_file_whole(tmp_path):
  target = tmp_path / "metrics.json"
  target.write_text("old")
  atomic_files.write_text_atomically(target, '{"mae": 5.9}')
  assert target.read_text() == '{"mae": 5.9}' and os.listdir(tmp_path) == ["metrics.json"]
  assert target.stat().st_mode & 0o777 == 0o644


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path):
  target = tmp_path / "rows.csv"
  target.write_text("complete,old\n")
  with pytest.raises(KeyboardInterrupt), atomic_files.open_atomically(target, newline="") as f:
    f.write("half,a,ro")
    raise KeyboardInterrupt
  assert target.read_text() == "complete,old\n" and os.listdir(tmp_path) == ["rows.csv"]


def test_an_output_path_that_cannot_be_written_is_refused(tmp_path):
  (tmp_path / "x.csv").mkdir()
  with pytest.raises(ConfigError, match=r"^--output=.*x\.csv is a folder: name a file in it$"):
    atomic_files.check_writable(tmp_path / "x.csv", "--output")
  with pytest.raises(ConfigError, match=r"folder .*nowhere does not exist"):
    atomic_files.check_writable(tmp_path / "nowhere" / "x.csv", "--output")
  atomic_files.check_writable(tmp_path / "new.csv", "--output")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_folder_is_refused(tmp_path):
  tmp_path.chmod(0o555)
  try:
    with pytest.raises(ConfigError, match="is not writable"):
      atomic_files.check_writable(tmp_path / "x.csv", "--output")
  finally:
    tmp_path.chmod(0o755)
