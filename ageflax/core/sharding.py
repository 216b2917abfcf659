"""Devices, hosts and the data-parallel mesh: one program for 1 CPU, 8 GPUs or many hosts.

Batches are sharded over the `data` axis of a mesh of every device; parameters and
optimizer state are replicated. Each process feeds its own rows of the global batch,
which `jax.make_array_from_process_local_data` assembles into one global array.
"""

import os

import jax
import numpy as np
from absl import logging
from jax.sharding import NamedSharding, PartitionSpec

from ageflax.core.errors import ConfigError

DATA_AXIS = "data"


def initialize_distributed(
    coordinator_address: str = "", num_processes: int = 0, process_id: int = -1
) -> None:
  """Joins a multi-host job: explicit coordinator flags, else SLURM auto-detection.

  On one host with no flags and no multi-task SLURM job this does nothing.
  """
  in_slurm_job = int(os.environ.get("SLURM_NTASKS", "1")) > 1
  if not coordinator_address and not in_slurm_job:
    return
  # CPU processes need a collectives backend to all-reduce across hosts; GPUs use NCCL.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  if coordinator_address:
    jax.distributed.initialize(coordinator_address, num_processes=num_processes,
                               process_id=process_id)
  else:
    jax.distributed.initialize()
  logging.info("joined a %d-process job as process %d", jax.process_count(), jax.process_index())


def create_mesh() -> jax.sharding.Mesh:
  """A 1-D data-parallel mesh over every device of every process, in process order."""
  devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
  return jax.make_mesh((len(devices),), (DATA_AXIS,),
                       axis_types=(jax.sharding.AxisType.Auto,), devices=devices)


def describe(mesh: jax.sharding.Mesh) -> str:
  """E.g. '4 devices (cpu), mesh data=4, 2 processes'."""
  platform = mesh.devices.flat[0].platform
  processes = jax.process_count()
  shape = ", ".join(f"{name}={size}" for name, size in mesh.shape.items())
  return (f"{mesh.size} device{'s' * (mesh.size > 1)} ({platform}), mesh {shape}, "
          f"{processes} process{'es' * (processes > 1)}")


def batch_sharding(mesh: jax.sharding.Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def check_batch_size(batch_size: int, mesh: jax.sharding.Mesh, field: str) -> None:
  """Raises ConfigError unless the global batch splits evenly over the devices."""
  if batch_size < 1 or batch_size % mesh.size:
    raise ConfigError(f"{field}={batch_size} is not a positive multiple of the "
                      f"{mesh.size} devices it is split over")


def host_rows(mesh: jax.sharding.Mesh, global_batch_size: int) -> tuple[int, int]:
  """(first row, number of rows) of each global batch that this process feeds."""
  index_map = batch_sharding(mesh).addressable_devices_indices_map((global_batch_size,))
  starts = [index[0].start or 0 for index in index_map.values()]
  stops = [index[0].stop or global_batch_size for index in index_map.values()]
  first, last = min(starts), max(stops)
  if last - first != sum(b - a for a, b in zip(starts, stops, strict=True)):
    raise ValueError("this process's devices do not hold contiguous rows of the batch")
  return first, last - first


def global_batch(
    local_batch: dict[str, np.ndarray], mesh: jax.sharding.Mesh, global_batch_size: int
) -> dict[str, jax.Array]:
  """Assembles each process's rows into global arrays sharded over the data axis."""
  sharding = batch_sharding(mesh)
  return {
      name: jax.make_array_from_process_local_data(
          sharding, value, (global_batch_size, *value.shape[1:]))
      for name, value in local_batch.items()
  }
