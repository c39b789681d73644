"""Data parallelism: 2 devices, or 2 processes, give the losses of 1 device for the same global batch.

``XLA_FLAGS=--xla_force_host_platform_device_count=2`` makes the CPU two devices, and
``JAX_COORDINATOR_ADDRESS``/``JAX_NUM_PROCESSES``/``JAX_PROCESS_ID`` make two processes
of one device each a multi-host run (``jax.distributed``, each process loading its
own shard of every batch). The same tiny run goes through ``python -m actionjax.train``
side by side: on one device with ``videos_per_gpu=4``, and on two devices or two
processes with ``videos_per_gpu=2`` (global batch 4 every time). BatchNorm statistics
are over the global batch in all, so the losses, evaluation and final weights agree up
to float rounding (reductions split in two).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
from engine_utils import TINY_CONFIG, cli_env, json_records, losses_by_iter, tiny_workspace

from actionjax.engine.build import read_variables


def _start(root: str, work_dir: str, devices: int, per_device: int, **env: str) -> subprocess.Popen:
    env = cli_env(XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}', **env)
    cmd = [sys.executable, '-m', 'actionjax.train', '--config', TINY_CONFIG, '--work-dir', work_dir,
           '--cfg-options', f'data.videos_per_gpu={per_device}']
    return subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def _header(work_dir: str) -> dict:
    path = next(os.path.join(work_dir, n) for n in os.listdir(work_dir) if n.endswith('.log.json'))
    with open(path) as f:
        return json.loads(f.readline())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_devices_and_two_processes_match_one_device_for_the_same_global_batch(tmp_path):
    root = tiny_workspace(str(tmp_path))
    coordinator = f'127.0.0.1:{_free_port()}'
    runs = {'one': _start(root, 'one', 1, 4), 'two': _start(root, 'two', 2, 2)}
    for process in range(2):  # one multi-host run: two processes, one device each, one work dir
        runs[f'hosts{process}'] = _start(root, 'hosts', 1, 2, JAX_COORDINATOR_ADDRESS=coordinator,
                                         JAX_NUM_PROCESSES='2', JAX_PROCESS_ID=str(process))
    for name, proc in runs.items():
        assert proc.wait(timeout=600) == 0, f'{name}: {proc.stderr.read()}'
    one = os.path.join(root, 'one')
    assert _header(one)['env_info']['devices'] == 1
    losses_one = losses_by_iter(one)
    assert sorted(losses_one) == list(range(1, 9))
    for name in ('two', 'hosts'):
        other = os.path.join(root, name)
        assert _header(other)['env_info']['devices'] == 2, name
        assert len([n for n in os.listdir(other) if n.endswith('.log.json')]) == 1  # process 0 logs
        losses = losses_by_iter(other)
        assert sorted(losses) == list(range(1, 9)), name
        np.testing.assert_allclose([losses[i] for i in range(1, 9)], [losses_one[i] for i in range(1, 9)],
                                   rtol=2e-5, err_msg=name)
        for a, b in zip(json_records(one), json_records(other), strict=True):
            assert a['top1_acc'] == b['top1_acc'], name
        # evaluation on 2 devices: 10 videos in global batches of 4, padding masked, same scores
        val_one, val_other = json_records(one, 'val'), json_records(other, 'val')
        assert [(v['top1_acc'], v['mean_class_accuracy']) for v in val_one] == \
               [(v['top1_acc'], v['mean_class_accuracy']) for v in val_other], name

        import jax

        params_one = jax.tree.leaves(read_variables(os.path.join(one, 'epoch_2')))
        params_other = jax.tree.leaves(read_variables(os.path.join(other, 'epoch_2')))
        for a, b in zip(params_one, params_other, strict=True):
            np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=1e-5, err_msg=name)
