"""Data parallelism: 2 CPU devices give the losses of 1 device for the same global batch.

``XLA_FLAGS=--xla_force_host_platform_device_count=2`` makes the CPU two devices. The
same tiny run goes through ``python -m actionjax.train`` twice, side by side: on one
device with ``videos_per_gpu=4`` and on two with ``videos_per_gpu=2`` (global batch 4
both times). BatchNorm statistics are over the global batch in both, so the losses,
evaluation and final weights agree up to float rounding (reductions split in two).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
from engine_utils import TINY_CONFIG, cli_env, json_records, losses_by_iter, tiny_workspace

from actionjax.engine.build import read_variables


def _start(root: str, work_dir: str, devices: int, per_device: int) -> subprocess.Popen:
    env = cli_env(XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}')
    cmd = [sys.executable, '-m', 'actionjax.train', '--config', TINY_CONFIG, '--work-dir', work_dir,
           '--cfg-options', f'data.videos_per_gpu={per_device}']
    return subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def _header(work_dir: str) -> dict:
    path = next(os.path.join(work_dir, n) for n in os.listdir(work_dir) if n.endswith('.log.json'))
    with open(path) as f:
        return json.loads(f.readline())


def test_two_devices_match_one_device_for_the_same_global_batch(tmp_path):
    root = tiny_workspace(str(tmp_path))
    runs = {'one': _start(root, 'one', 1, 4), 'two': _start(root, 'two', 2, 2)}
    for name, proc in runs.items():
        assert proc.wait(timeout=600) == 0, f'{name}: {proc.stderr.read()}'
    one, two = os.path.join(root, 'one'), os.path.join(root, 'two')
    assert _header(one)['env_info']['devices'] == 1 and _header(two)['env_info']['devices'] == 2

    losses_one, losses_two = losses_by_iter(one), losses_by_iter(two)
    assert sorted(losses_one) == sorted(losses_two) == list(range(1, 9))
    np.testing.assert_allclose([losses_two[i] for i in range(1, 9)], [losses_one[i] for i in range(1, 9)],
                               rtol=2e-5)
    for a, b in zip(json_records(one), json_records(two), strict=True):
        assert a['top1_acc'] == b['top1_acc']
    # evaluation on 2 devices: 10 videos in global batches of 4, padding masked, same scores
    val_one, val_two = json_records(one, 'val'), json_records(two, 'val')
    assert [(v['top1_acc'], v['mean_class_accuracy']) for v in val_one] == \
           [(v['top1_acc'], v['mean_class_accuracy']) for v in val_two]

    import jax

    params_one = jax.tree.leaves(read_variables(os.path.join(one, 'epoch_2')))
    params_two = jax.tree.leaves(read_variables(os.path.join(two, 'epoch_2')))
    for a, b in zip(params_one, params_two, strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=1e-5)
