"""Data parallelism with ``jax.sharding``: one mesh axis, batch split, state replicated.

Every device holds a full copy of the state; each one gets ``videos_per_gpu``
samples of the global batch. jit turns the mean over the batch (loss, BatchNorm
statistics) into all-reduces, so numbers equal a single device with the same
global batch. Across hosts each process loads its own slice of the batch and
``make_array_from_process_local_data`` stitches the slices into one global array.
"""

from __future__ import annotations

import collections
import itertools
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = 'data'


def init_distributed(dist_params: Mapping[str, Any] | None = None) -> None:
    """Start ``jax.distributed`` when launched as one of several processes.

    Multi-host runs set ``JAX_COORDINATOR_ADDRESS`` (plus ``JAX_NUM_PROCESSES`` and
    ``JAX_PROCESS_ID``) or run under a cluster jax auto-detects (SLURM, ...); then
    ``dist_params`` may add keyword arguments for ``jax.distributed.initialize``.
    MMAction2's ``dist_params=dict(backend='nccl')`` means nothing here and is ignored.
    """
    kwargs = {k: v for k, v in (dist_params or {}).items() if k != 'backend'}
    # jax reads JAX_COORDINATOR_ADDRESS itself but not these two (outside the clusters it detects)
    for key, env in (('num_processes', 'JAX_NUM_PROCESSES'), ('process_id', 'JAX_PROCESS_ID')):
        if key not in kwargs and os.environ.get(env):
            kwargs[key] = int(os.environ[env])
    if os.environ.get('JAX_COORDINATOR_ADDRESS') or kwargs.get('coordinator_address'):
        jax.distributed.initialize(**kwargs)


def make_mesh(devices: Iterable[jax.Device] | None = None) -> Mesh:
    """A one-axis mesh named 'data' over all devices of all processes."""
    devices = np.array(list(devices) if devices is not None else jax.devices())
    return Mesh(devices, (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def local_batch_size(videos_per_gpu: int, mesh: Mesh) -> int:
    """Samples this process loads per step: ``videos_per_gpu`` per local device."""
    local = sum(d.process_index == jax.process_index() for d in mesh.devices.flat)
    return videos_per_gpu * local


def to_device(batch: Mapping[str, np.ndarray], sharding: NamedSharding) -> dict[str, jax.Array]:
    """This process's part of a batch as global arrays sharded on the first axis (async copy)."""
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in batch.items()}


def to_host(x: jax.Array) -> np.ndarray:
    """A (possibly multi-host) global array as one numpy array on every process."""
    if jax.process_count() > 1:
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(jax.device_get(x))


def prefetch_to_device(items: Iterator[tuple[Mapping[str, np.ndarray], Any]], sharding: NamedSharding,
                       size: int = 2) -> Iterator[tuple[dict[str, jax.Array], Any]]:
    """Yield ``(device_batch, extra)`` while the next ``size - 1`` batches are already being copied.

    ``jax.make_array_from_process_local_data`` returns before the copy finishes, so
    keeping a short queue of put batches overlaps the transfer (and the host work of
    loading the batch after it) with the step running on the device.
    """
    queue: collections.deque = collections.deque()

    def enqueue(n: int) -> None:
        for batch, extra in itertools.islice(items, n):
            queue.append((to_device(batch, sharding), extra))

    enqueue(size)
    while queue:
        yield queue.popleft()
        enqueue(1)
