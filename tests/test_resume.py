"""Exact resume: a run SIGKILLed mid-epoch and restarted with --auto-resume matches an uninterrupted run.

Three ``python -m actionjax.train`` processes on the tiny synthetic set (2 epochs of 16
iterations, a checkpoint every 4 iterations): the reference and the victim start
together; the victim is killed as soon as it has logged iteration 5 (so in the middle of
epoch 1, after its first checkpoint, possibly during a later save) and is resumed from
its latest checkpoint. The final parameters and every logged loss must agree.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
from engine_utils import TINY_CONFIG, cli_env, json_records, losses_by_iter, run_module, tiny_workspace

from actionjax.engine.build import read_variables
from actionjax.engine.checkpoint import find_latest, read_meta

ARGS = ['--config', TINY_CONFIG, '--no-validate', '--cfg-options', 'data.videos_per_gpu=1',  # 16 per epoch
        'checkpoint_config.interval_iters=4']
ITERS = 16


def _train_cmd(work_dir: str, *extra: str) -> list[str]:
    return [sys.executable, '-m', 'actionjax.train', *ARGS, '--work-dir', work_dir, *extra]


def _wait_for_iteration(work_dir: str, proc: subprocess.Popen, iteration: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f'the run ended (exit {proc.returncode}) before iteration {iteration}: '
                                 f'{proc.stderr.read()}')
        if any(r['global_iter'] >= iteration for r in json_records(work_dir)):
            return
        time.sleep(0.005)
    raise AssertionError(f'no iteration {iteration} logged within {timeout} s')


def test_sigkill_mid_epoch_then_auto_resume_matches_an_uninterrupted_run(tmp_path):
    root = tiny_workspace(str(tmp_path))
    env = cli_env()
    reference = subprocess.Popen(_train_cmd('reference'), cwd=root, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    victim = subprocess.Popen(_train_cmd('victim'), cwd=root, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_iteration(os.path.join(root, 'victim'), victim, 5)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    finally:
        if victim.poll() is None:
            victim.kill()
    assert victim.returncode == -signal.SIGKILL

    latest = find_latest(os.path.join(root, 'victim'))
    assert latest is not None and os.path.basename(latest).startswith('iter_'), latest
    meta = read_meta(latest)
    assert meta['epoch'] == 0 and 0 < meta['inner_iter'] < ITERS  # the kill came in the middle of epoch 1
    killed_at = max(r['global_iter'] for r in json_records(os.path.join(root, 'victim')))
    assert killed_at < 2 * ITERS

    run_module('actionjax.train', [*ARGS, '--work-dir', 'victim', '--auto-resume'], cwd=root)
    assert reference.wait(timeout=600) == 0, reference.stderr.read()

    ref_losses = losses_by_iter(os.path.join(root, 'reference'))
    resumed_losses = losses_by_iter(os.path.join(root, 'victim'))  # both runs' logs; repeats must agree
    assert sorted(ref_losses) == list(range(1, 2 * ITERS + 1)) == sorted(resumed_losses)
    for it in ref_losses:
        assert resumed_losses[it] == ref_losses[it], (it, resumed_losses[it], ref_losses[it])

    ref_vars = read_variables(os.path.join(root, 'reference', 'epoch_2'))
    resumed_vars = read_variables(os.path.join(root, 'victim', 'epoch_2'))
    for collection in ('params', 'batch_stats'):
        ref_leaves, res_leaves = (jax_leaves(v[collection]) for v in (ref_vars, resumed_vars))
        assert len(ref_leaves) == len(res_leaves)
        for a, b in zip(ref_leaves, res_leaves, strict=True):
            np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)


def jax_leaves(tree: dict) -> list[np.ndarray]:
    import jax

    return [np.asarray(x) for x in jax.tree.leaves(tree)]
