"""Subprocess body for the shared-evaluation test: one validation pass over prepared records.

Usage: python tests/records_eval_run.py RECORDS OUT [--coordinator_address=HOST:PORT
  --num_processes=N --process_id=I]  (device count from XLA_FLAGS). Process I writes
  OUT.I.npz: the sums and predictions all processes agree on, and the rows it read itself.
"""

import sys

import jax
import numpy as np
import optax

from ageflax.core import sharding
from ageflax.data import pipeline
from ageflax.evaluate import evaluator
from ageflax.model import predict
from ageflax.train import steps
from configs import tiny


def main(records: str, out_path: str, job_flags: list[str]) -> None:
  job = dict(flag.lstrip("-").split("=", 1) for flag in job_flags)
  if job:
    sharding.initialize_distributed(job["coordinator_address"], int(job["num_processes"]),
                                    int(job["process_id"]))
  config = tiny.get_config()
  config.data.update(dir=records, source="tfds")
  mesh = sharding.create_mesh()
  graphdef, state = steps.create_train_state(config, optax.sgd(0.1), mesh, head_bias=40.0)
  data = pipeline.prepare(config.data, None)
  rows = pipeline.HostRows(*sharding.host_rows(mesh, 8))
  batches = list(pipeline.as_numpy(pipeline.eval_dataset(
      data.store, data.indices("validation"), 8, rows, config.data), "records"))
  split_evaluator = evaluator.Evaluator(predict.make_predict_fn(graphdef), mesh, 8)
  sums = {"sum_abs_error": 0.0, "count": 0.0}
  predictions = {}
  for batch in batches:
    batch_sums, batch_rows = split_evaluator.evaluate_batch(state.variables, batch)
    for name in sums:
      sums[name] += float(batch_sums[name])
    predictions.update(zip(batch_rows["index"].tolist(), batch_rows["prediction"].tolist(),
                           strict=True))
  predictions.pop(-1, None)  # the padding rows
  np.savez(f"{out_path}.{jax.process_index()}.npz", **sums,
           rows_read=sum(int(np.sum(batch["index"] >= 0)) for batch in batches),
           index=np.array(sorted(predictions)),
           prediction=np.array([predictions[i] for i in sorted(predictions)], np.float32))


if __name__ == "__main__":
  main(sys.argv[1], sys.argv[2], sys.argv[3:])
