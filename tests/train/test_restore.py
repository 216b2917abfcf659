"""The one restore of a run: the best checkpoint, a requested one, and damaged ones."""

import logging
import os
import shutil

import jax
import numpy as np
import optax
import pytest

from ageflax.core import run_files, sharding
from ageflax.core.errors import CheckpointError
from ageflax.train import checkpoints, restore, steps
from configs import tiny


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
  """A workdir with checkpoints 1, 2 and 3; step 2 has the lowest validation MAE."""
  workdir = tmp_path_factory.mktemp("run")
  config = tiny.get_config()
  _, state = steps.create_train_state(config, optax.adam(1e-3), sharding.create_mesh(), 30.0)
  checkpointer = checkpoints.Checkpointer(workdir, keep_latest=3)
  for step, mae in [(1, 9.0), (2, 5.0), (3, 7.0)]:
    params = jax.tree.map(lambda p, s=step: p + s, state.params)
    checkpointer.save(state.replace(step=jax.numpy.asarray(step, jax.numpy.int32),
                                    params=params),
                      config, {checkpoints.VALIDATION_METRIC: mae})
  checkpointer.wait()
  checkpointer.close()
  return workdir, state


def _damage(workdir, step: int) -> None:
  """Truncates the model files of checkpoint `step`, as a disk or a copy gone wrong would."""
  for root, _, files in os.walk(os.path.join(run_files.checkpoints_dir(workdir), str(step),
                                             "model")):
    for name in files:
      with open(os.path.join(root, name), "r+b") as f:
        f.truncate(max(os.path.getsize(f.name) // 3, 1))


def _copy(saved_run, tmp_path):
  shutil.copytree(saved_run[0], tmp_path / "run")
  return tmp_path / "run"


def _first_param(run: restore.RestoredRun):
  return np.asarray(jax.tree.leaves(run.state.params)[0])


def test_restores_the_best_checkpoint_with_its_config(saved_run):
  workdir, state = saved_run
  run = restore.restore_run(str(workdir))
  assert run.step == 2 and run.config.model.name == "_resnet_tiny"
  assert "max_image_megapixels" in run.config.data  # brought to today's fields
  first_saved = np.asarray(jax.tree.leaves(state.params)[0])
  np.testing.assert_array_equal(_first_param(run), first_saved + 2)
  assert set(run.variables) == {"params", "batch_stats"} and run.state.opt_state is None


def test_restores_a_requested_step(saved_run):
  assert restore.restore_run(str(saved_run[0]), step=3).step == 3


def test_a_missing_step_lists_the_steps_there_are(saved_run):
  with pytest.raises(CheckpointError, match=r"^no checkpoint 7 in .*checkpoints "
                                            r"\(there are: 1, 2, 3\)$"):
    restore.restore_run(str(saved_run[0]), step=7)


def test_no_checkpoint_is_one_line(tmp_path):
  with pytest.raises(CheckpointError, match=r"^no checkpoints in "):
    restore.restore_run(str(tmp_path))
  (tmp_path / run_files.CHECKPOINTS).mkdir()
  with pytest.raises(CheckpointError, match=r"^no finished checkpoint in "):
    restore.restore_run(str(tmp_path))


def test_an_unreadable_best_falls_back_with_trainings_warning(saved_run, tmp_path, caplog):
  workdir = _copy(saved_run, tmp_path)
  _damage(workdir, 2)
  with caplog.at_level(logging.WARNING):
    run = restore.restore_run(str(workdir))
  assert run.step == 3
  assert any("checkpoint 2 in" in r.getMessage() and "is unreadable" in r.getMessage()
             and "falling back to the previous one" in r.getMessage() for r in caplog.records)
  assert (workdir / run_files.CHECKPOINTS / "2").is_dir()  # a restore only reads the run


def test_an_unreadable_requested_step_is_one_line(saved_run, tmp_path):
  workdir = _copy(saved_run, tmp_path)
  _damage(workdir, 3)
  with pytest.raises(CheckpointError, match=r"^checkpoint 3 in .* is unreadable \(\w+: .*\)$"):
    restore.restore_run(str(workdir), step=3)


def test_no_readable_checkpoint_is_one_line(saved_run, tmp_path):
  workdir = _copy(saved_run, tmp_path)
  for step in (1, 2, 3):
    _damage(workdir, step)
  with pytest.raises(CheckpointError) as raised:
    restore.restore_run(str(workdir))
  assert str(raised.value).startswith("no readable checkpoint in ")
  assert "steps 1, 2, 3 are all unreadable" in str(raised.value)
  assert "\n" not in str(raised.value)
