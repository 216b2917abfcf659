"""Subprocess body for the sharding test: a few train steps on the forced host devices.

Usage: python tests/sharded_run.py OUT.npz  (device count from XLA_FLAGS)
"""

import sys

import jax
import numpy as np
import optax

from ageflax.core import sharding
from ageflax.train import steps
from configs import tiny


def main(out_path: str) -> None:
  config = tiny.get_config()
  mesh = sharding.create_mesh()
  # SGD keeps float rounding at rounding size; Adam turns the rounding of near-zero
  # gradients into +-lr steps, so it would hide real differences behind noise.
  optimizer = optax.sgd(1e-4, momentum=0.9)
  graphdef, state = steps.create_train_state(config, optimizer, mesh, head_bias=40.0)
  train_step = steps.jit_train_step(graphdef, optimizer, config.train, mesh)
  rng = np.random.default_rng(0)
  losses = []
  for _ in range(3):
    batch = {"image": rng.integers(0, 255, (8, 32, 32, 3), np.uint8),
             "age": rng.uniform(1, 90, 8).astype(np.float32)}
    state, metrics = train_step(state, sharding.global_batch(batch, mesh, 8))
    losses.append(float(metrics["loss"]))
  leaves = jax.tree.leaves(jax.device_get((state.params, state.batch_stats)))
  np.savez(out_path, losses=np.array(losses), devices=mesh.size,
           traces=train_step._cache_size(), **{f"leaf{i}": leaf for i, leaf in enumerate(leaves)})


if __name__ == "__main__":
  main(sys.argv[1])
