"""What a run tells a person: log lines, the history files and the pieces of its TensorBoard."""

import csv
import json
import logging

import numpy as np

from ageflax.train import summaries


def test_log_lines_name_the_module_that_logs(caplog):
  caplog.set_level(logging.INFO)
  caplog.set_level(logging.INFO, logger="absl")  # other tests in this process may lower it
  summaries.log("validated %d photos", 15)
  record = caplog.records[-1]
  assert record.getMessage() == "validated 15 photos"
  assert (record.filename, record.funcName) == ("test_summaries.py",
                                                "test_log_lines_name_the_module_that_logs")


def test_history_csv_holds_every_record_and_column(tmp_path):
  summaries.append_history(tmp_path / "history.json", {"step": 5, "train_mae": 9.5})
  history = summaries.append_history(tmp_path / "history.json",
                                     {"step": 10, "train_mae": 8.0, "validation_mae": 7.25})
  summaries.write_history_csv(tmp_path / "history.csv", history)
  with open(tmp_path / "history.csv", newline="") as f:
    rows = list(csv.DictReader(f))
  assert rows == [{"step": "5", "train_mae": "9.5", "validation_mae": ""},
                  {"step": "10", "train_mae": "8.0", "validation_mae": "7.25"}]
  assert json.loads((tmp_path / "history.json").read_text()) == history


def test_sample_grid_shows_eight_photos_above_their_ages():
  images = np.full((10, 20, 16, 3), 128, np.uint8)
  grid = summaries.sample_grid(images, np.arange(10, dtype=np.float32) + 20.5)
  assert grid.shape == (20 + 12, 8 * 16, 3) and grid.dtype == np.uint8
  assert (grid[:20] == 128).all()
  captions = grid[20:]
  for column in range(8):  # every caption strip has its number drawn in it
    assert captions[:, column * 16:(column + 1) * 16].min() < 100


def test_hyper_parameters_are_the_config_fields_by_dotted_name():
  config = {"seed": 0, "optim": {"learning_rate": 1e-3, "name": "adamw", "nesterov": False},
            "data": {"mean": (0.5, 0.4), "dir": None}}
  assert summaries.hyper_parameters(config) == {
      "seed": 0, "optim.learning_rate": 1e-3, "optim.name": "adamw", "optim.nesterov": False,
      "data.mean": "(0.5, 0.4)"}


def test_config_text_is_a_markdown_code_block():
  text = summaries.config_markdown({"model": {"name": "_resnet_tiny"}})
  assert all(line.startswith("    ") for line in text.splitlines())
  assert json.loads(text) == {"model": {"name": "_resnet_tiny"}}
