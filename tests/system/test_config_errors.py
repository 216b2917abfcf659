"""A bad config through train.py: one line naming the field or file, exit 1, before any data."""

import pytest
from conftest import error_line, run_entry_point


@pytest.mark.parametrize("args, message", [
    (["--config.data.image_size=-4"],
     "error: --config.data.image_size must be a whole number >= 1, not -4"),
    (["--config.train.num_epochs=0"],
     "error: --config.train.num_epochs must be None or a finite number > 0, not 0.0"),
    (["--config.optim.learning_rate=-1"],
     "error: --config.optim.learning_rate must be a finite number > 0, not -1.0"),
    (["--config=configs/nope.py"],
     "error: cannot load the config file: No such file or directory: 'configs/nope.py'"),
])
def test_a_bad_config_is_one_line_before_any_data_is_read(tmp_path, args, message):
  # The data folder does not exist: the config is refused before anything reads it.
  result = run_entry_point(["train.py", "--config=configs/tiny.py",
                            f"--config.data.dir={tmp_path / 'absent'}",
                            f"--workdir={tmp_path / 'run'}", *args])
  assert error_line(result) == message
  assert not (tmp_path / "run").exists()
