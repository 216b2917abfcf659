"""The training loop: data, state, checkpoints and validation, wired together.

`train_and_evaluate(config, workdir)` is what `train.py` calls. A rerun of the same
command resumes from the latest committed checkpoint; the data stream is a function of
(seed, step), so a resumed run trains on exactly what an uninterrupted one would.
"""

import contextlib
import dataclasses
import json
import time
from collections.abc import Callable

import jax
import ml_collections
import numpy as np

from ageflax.config import schema
from ageflax.core import atomic_files, run_files, sharding
from ageflax.core.errors import ConfigError, TrainingError
from ageflax.core.progress import Progress
from ageflax.data import jax_augment, pipeline
from ageflax.data.augment_spec import AugmentSpec
from ageflax.evaluate import evaluator, plots
from ageflax.model import predict, pretrained
from ageflax.train import age_balance, checkpoints, optimizers, preemption, summaries
from ageflax.train import steps as steps_lib
from ageflax.train import workdir as workdir_lib


@dataclasses.dataclass
class _Run:
  """What the loop needs besides the state: compiled steps, data and bookkeeping."""

  config: ml_collections.ConfigDict
  workdir: str
  mesh: jax.sharding.Mesh
  data: pipeline.PreparedData
  steps_per_epoch: int
  total_steps: int
  eval_every_steps: int
  schedule: object
  train_step: object
  evaluator: evaluator.Evaluator
  checkpointer: checkpoints.Checkpointer
  writer: summaries.SummaryWriter


def train_and_evaluate(
    config: ml_collections.ConfigDict, workdir: str, allow_config_change: bool = False
) -> dict[str, float]:
  """Trains `config` in `workdir`, resuming if it holds a checkpoint; returns final metrics.

  Args:
    config: the experiment config (see configs/).
    workdir: the run directory.
    allow_config_change: resume even if the saved config differs in fields that change
      the results.
  """
  schema.check(config)
  mesh = sharding.create_mesh()
  summaries.log("%s", sharding.describe(mesh))
  _check_batch_sizes(config, mesh)
  workdir_lib.check_writable(workdir)
  with _run_lock(workdir):
    checkpointer = checkpoints.Checkpointer(workdir, config.checkpoint.keep_latest,
                                              config.checkpoint.keep_best)
    if checkpointer.latest_step() is not None:
      workdir_lib.check_same_config(workdir, config, allow_config_change)
    elif config.model.init_from:  # a wrong init_from fails before the data is read
      pretrained.read_backbone_info(config.model)
    _write_json(run_files.path(workdir, run_files.CONFIG), config.to_dict())
    # Every host may meet a bad photo in the records it reads; `prepare` decides who writes.
    problems_path = run_files.path(workdir, run_files.SKIPPED_ROWS)
    data = pipeline.prepare(config.data, problems_path, jax.process_index())
    _write_json(run_files.path(workdir, run_files.DATA_SUMMARY), data.summary())
    run, state = _set_up(config, workdir, mesh, data, checkpointer)
    try:
      state, metrics = _train(run, state)
      run.writer.hparams(summaries.hyper_parameters(config.to_dict()),
                         [f"validation/{name.removeprefix('validation_')}" for name in metrics
                          if name.startswith("validation_")])
    finally:
      run.checkpointer.wait()
      run.checkpointer.close()
      run.writer.close()
  return metrics


def _run_lock(workdir: str):
  """Process 0 holds the workdir's lock; the other processes of the job share it."""
  return workdir_lib.RunLock(workdir) if jax.process_index() == 0 else contextlib.nullcontext()


def _check_batch_sizes(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh) -> None:
  """Fails fast, before any data is read, on batch sizes the devices cannot split evenly."""
  sharding.check_batch_size(config.train.batch_size, mesh, "train.batch_size")
  sharding.check_batch_size(config.eval.batch_size, mesh, "eval.batch_size")


def _set_up(config, workdir, mesh, data, checkpointer) -> tuple[_Run, steps_lib.TrainState]:
  num_train = data.num_examples("train")
  per_epoch = pipeline.steps_per_epoch(num_train, config.train.batch_size)
  if per_epoch == 0:
    raise ConfigError(f"train.batch_size={config.train.batch_size} is larger than the "
                      f"{num_train} training photos")
  total_steps = optimizers.resolve_steps(config.train, "num", per_epoch)
  schedule = optimizers.create_learning_rate_schedule(config.optim, total_steps, per_epoch)
  optimizer = optimizers.create_optimizer(config.optim, schedule)
  head_bias = data.summary()["train_mean_age"]
  graphdef, state = _initial_state(config, optimizer, mesh, head_bias, checkpointer)
  summaries.log("%s: %d training, %d validation photos; %d steps of %d (%d per epoch)",
                config.model.name, num_train, data.num_examples("validation"),
                total_steps, config.train.batch_size, per_epoch)
  run = _Run(
      config=config, workdir=workdir, mesh=mesh, data=data, steps_per_epoch=per_epoch,
      total_steps=total_steps,
      eval_every_steps=max(1, round(config.eval.every_epochs * per_epoch)),
      schedule=schedule,
      train_step=steps_lib.jit_train_step(graphdef, optimizer, config.train, mesh,
                                          config.data.augment, config.seed,
                                          _age_weights(config.train, data)),
      evaluator=evaluator.Evaluator(predict.make_predict_fn(graphdef), mesh,
                                    config.eval.batch_size),
      checkpointer=checkpointer, writer=summaries.SummaryWriter(workdir),
  )
  return run, state


def _age_weights(train_config, data) -> np.ndarray | None:
  """The loss's weight per whole age with `train.age_balance` on, else None."""
  if not train_config.age_balance:
    return None
  return age_balance.age_weight_table(data.ages("train"), train_config.age_balance)


def _initial_state(config, optimizer, mesh, head_bias, checkpointer):
  if checkpointer.latest_step() is None:
    return _fresh_state(config, optimizer, mesh, head_bias)
  graphdef, abstract_state = steps_lib.abstract_train_state(config, optimizer, mesh, head_bias)
  step, state = checkpointer.restore_latest_readable(abstract_state)
  if step is None:
    summaries.log("no readable checkpoint in %s: starting afresh", checkpointer.directory)
    return _fresh_state(config, optimizer, mesh, head_bias)
  summaries.log("resumed from step %d (%s)", step, checkpointer.directory)
  return graphdef, state


def _fresh_state(config, optimizer, mesh, head_bias):
  """A new state; its backbone from `model.init_from` when set (a resumed run ignores it)."""
  if config.model.init_from:
    summaries.log("backbone from %s; the head starts afresh", config.model.init_from)
  return steps_lib.create_train_state(config, optimizer, mesh, head_bias)


def _train(run: _Run, state: steps_lib.TrainState):
  config, mesh = run.config, run.mesh
  start_step = int(state.step)
  rows = pipeline.HostRows(*sharding.host_rows(mesh, config.train.batch_size))
  dataset = run.data.train_dataset(config.train.batch_size, rows, config.seed, start_step,
                                   run.total_steps, config.data)
  progress = Progress(run.total_steps, "step {done}/{total}", done=start_step,
                      items_per_unit=config.train.batch_size)
  log_window, epoch_window, metrics = [], [], {}
  stop_requests = preemption.StopRequests()
  with stop_requests:
    for step, batch in enumerate(pipeline.as_numpy(dataset, config.data.dir),
                                 start_step + 1):
      state, step_metrics = run.train_step(
          state, sharding.global_batch(batch, mesh, config.train.batch_size))
      if step == start_step + 1:
        progress.restart(step)  # the first call compiled the step: keep it out of images/s
        _write_first_summaries(run, batch, start_step, rows.start)
      log_window.append(step_metrics)
      epoch_window.append(step_metrics)
      is_last = step == run.total_steps
      if step % config.train.log_every_steps == 0 or is_last:
        _log_train_window(run, progress, step, _mean_metrics(log_window, step))
        log_window = []
      if step % run.eval_every_steps == 0 or is_last:
        metrics = {f"train_{k}": v for k, v in _mean_metrics(epoch_window, step).items()}
        epoch_window = []
        metrics.update(_validate(run, state, step, metrics["train_mae"]))
        _record_history(run, step, metrics)
        run.checkpointer.save(state, config, _checkpoint_metrics(metrics))
      elif step % config.checkpoint.every_steps == 0:
        _mean_metrics(log_window, step)
        run.checkpointer.save(state, config)
      if stop_requests.should_stop(step, run.checkpointer.reached_preemption):
        _stop_with_checkpoint(run, state, step, log_window, stop_requests.signal_name)
        return state, metrics
  return state, metrics


def _stop_with_checkpoint(run: _Run, state, step: int, log_window, reason: str) -> None:
  """Saves the current step (unless just saved), waits for the commit and says so."""
  _mean_metrics(log_window, step)
  if run.checkpointer.latest_step() != step:
    run.checkpointer.save(state, run.config)
  run.checkpointer.wait()
  summaries.log("stopped by %s after step %d of %d; checkpoint committed, rerun the same "
                "command to resume", reason, step, run.total_steps)


def _mean_metrics(window: list, step: int) -> dict[str, float]:
  """Means of the step metrics in `window`; stops the run on a non-finite loss or gradient.

  Called before every save, so a checkpoint never holds a state past a non-finite step.
  """
  if not window:
    return {}
  values = jax.device_get(window)
  for offset, metrics in enumerate(values):
    if not (np.isfinite(metrics["loss"]) and np.isfinite(metrics["grad_norm"])):
      bad_step = step - len(values) + 1 + offset
      raise TrainingError(f"non-finite loss or gradient at step {bad_step}; the latest "
                          "checkpoint is the last good one (lower optim.learning_rate?)")
  return {name: float(np.mean([m[name] for m in values])) for name in values[0]}


def _log_train_window(run: _Run, progress: Progress, step: int, means) -> None:
  run.writer.scalars(step, {f"train/{name}": value for name, value in means.items()})
  run.writer.scalars(step, {"train/learning_rate": float(run.schedule(step - 1))})
  values = " | ".join(f"{name} {means[name]:.4g}" for name in ("loss", "mae"))
  epoch = step / run.steps_per_epoch
  summaries.log("%s", progress.line(step, f" (epoch {epoch:.2f}) | {values}"))


def _checkpoint_metrics(metrics: dict[str, float]) -> dict[str, float] | None:
  if "validation_mae" not in metrics:
    return None
  return {checkpoints.VALIDATION_METRIC: metrics["validation_mae"]}


def _validate(run: _Run, state, step: int, train_mae: float) -> dict[str, float]:
  config = run.config
  epoch = step / run.steps_per_epoch
  if not len(run.data.splits["validation"]):
    summaries.log("epoch %.2f: train MAE %.3f (no validation split)", epoch, train_mae)
    return {}
  started = time.perf_counter()
  result = evaluate_split(run.evaluator, state.variables, run.data, "validation", config)
  metrics = dict(result.metrics)
  # The dex loss needs the bins' probabilities, which evaluation does not keep: its
  # validation curve is the MAE's alone.
  if config.train.loss in steps_lib.REGRESSION_LOSSES:
    metrics["loss"] = _validation_loss(run, result)
  run.writer.scalars(step, {f"validation/{k}": v for k, v in metrics.items()})
  summaries.log("epoch %.2f: train MAE %.3f | validation MAE %.3f, RMSE %.3f, bias %+.3f "
                "on %d photos (%.1fs)", epoch, train_mae, result.metrics["mae"],
                result.metrics["rmse"], result.metrics["mean_error"], result.metrics["count"],
                time.perf_counter() - started)
  _write_validation_summaries(run, state, step, result)
  return {f"validation_{name}": value for name, value in metrics.items()}


def _validation_loss(run: _Run, result: evaluator.EvalResult) -> float:
  """The training loss on the validation photos, from their predictions (for the curves)."""
  ages, predictions = _validation_predictions(run, result)
  losses = steps_lib.per_example_loss(predictions, ages, run.config.train.loss,
                                      run.config.train.huber_delta)
  return float(np.mean(losses))


def _validation_predictions(run: _Run, result: evaluator.EvalResult
                            ) -> tuple[np.ndarray, np.ndarray]:
  """(true ages, predictions) of the validation photos, in the split's order."""
  indices = run.data.indices("validation")
  predictions = np.array([result.predictions[int(i)] for i in indices], np.float32)
  return run.data.store.ages[indices], predictions


def _write_first_summaries(run: _Run, batch: dict[str, np.ndarray], start_step: int,
                           first_row: int) -> None:
  """The config as text, and a grid of this process's first training photos as augmented."""
  if not run.writer.active:
    return
  run.writer.text("config", summaries.config_markdown(run.config.to_dict()), start_step)
  images = batch["image"][:summaries.GRID_PHOTOS]
  augment = AugmentSpec.from_config(run.config.data.augment)
  if augment.on_device:  # the batch came unaugmented: draw what the train step drew
    images = np.asarray(jax_augment.augment_batch(images, run.config.seed, start_step, augment,
                                                  first_row))
  run.writer.image("train/augmented_samples", summaries.sample_grid(images, batch["age"]),
                   start_step + 1)


def _write_validation_summaries(run: _Run, state, step: int,
                                result: evaluator.EvalResult) -> None:
  """Redraws WORKDIR/validation_predicted_vs_true.png; sends it and the weights to TensorBoard."""
  if not run.writer.active:
    return
  ages, predictions = _validation_predictions(run, result)
  path = run_files.path(run.workdir, run_files.VALIDATION_PREDICTED_VS_TRUE)
  plots.plot_predicted_vs_true(ages, predictions, path, f"validation photos at step {step:,}",
                               run.config.eval.legal_age, run.config.eval.challenge_age)
  run.writer.image_file("validation/predicted_vs_true", path, step)
  run.writer.histograms(step, summaries.weight_histograms(state.params))


def _record_history(run: _Run, step: int, metrics: dict[str, float]) -> None:
  """Appends this validation to WORKDIR/history.json and redraws train_curves.png."""
  if jax.process_index() != 0:
    return
  record = {"step": step, "epoch": step / run.steps_per_epoch, **metrics}
  history = summaries.append_history(run_files.path(run.workdir, run_files.HISTORY), record)
  summaries.write_history_csv(run_files.path(run.workdir, run_files.HISTORY_CSV), history)
  plots.plot_train_curves(history, run_files.path(run.workdir, run_files.TRAIN_CURVES),
                          run.config.train.loss)


def evaluate_split(
    split_evaluator: evaluator.Evaluator, variables, data: pipeline.PreparedData, split: str,
    config: ml_collections.ConfigDict, on_progress: Callable[[int], None] | None = None,
) -> evaluator.EvalResult:
  """Evaluates `variables` on every photo of `split`, each counted once, on any number of hosts.

  Args:
    split_evaluator: the evaluator (its predict function, mesh and global batch size).
    variables: the model's {'params', 'batch_stats'}.
    data: the prepared data.
    split: 'train', 'validation', 'test' or 'all'.
    config: the run's config (its `data` section).
    on_progress: called after each batch with the photos evaluated so far.
  """
  batch_size = split_evaluator.global_batch_size
  rows = pipeline.HostRows(*sharding.host_rows(split_evaluator.mesh, batch_size))
  dataset = pipeline.eval_dataset(data.store, data.indices(split), batch_size, rows,
                                  config.data)
  return split_evaluator.run(variables, pipeline.as_numpy(dataset, config.data.dir), on_progress)


def _write_json(path: str, values: dict) -> None:
  if jax.process_index() == 0:
    atomic_files.write_text_atomically(path, json.dumps(values, indent=2))
