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


def _start_both_and_kill_the_victim(root: str, env: dict, reference_cmd: list[str],
                                    victim_cmd: list[str]) -> subprocess.Popen:
    """Start an uninterrupted reference run and a victim run (work dir ``victim``) side by
    side, SIGKILL the victim once it logged iteration 5; the reference keeps running."""
    reference = subprocess.Popen(reference_cmd, cwd=root, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    victim = subprocess.Popen(victim_cmd, cwd=root, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_iteration(os.path.join(root, 'victim'), victim, 5)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    finally:
        if victim.poll() is None:
            victim.kill()
    assert victim.returncode == -signal.SIGKILL
    return reference


def test_sigkill_mid_epoch_then_auto_resume_matches_an_uninterrupted_run(tmp_path):
    root = tiny_workspace(str(tmp_path))
    env = cli_env()
    reference = _start_both_and_kill_the_victim(root, env, _train_cmd('reference'), _train_cmd('victim'))

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


# --------------------------------------------------------------------------- iteration-based

ITER_DEMO = os.path.join(os.path.dirname(TINY_CONFIG), '..', '..', '..', 'configs', 'tsn_demo_iter.py')
# the iteration-based demo on 16 videos at 64x64: 8 iterations per epoch, 12 in all (the run
# crosses an epoch boundary), validation and a checkpoint every 4 iterations
ITER_ARGS = ['--config', os.path.abspath(ITER_DEMO), '--cfg-options',
             'train_cfg.max_iters=12', 'train_cfg.val_interval=4', 'default_hooks.checkpoint.interval=4',
             'default_hooks.logger.interval=1', 'train_dataloader.batch_size=2',
             'val_dataloader.batch_size=4',
             'param_scheduler.1.T_max=12', 'param_scheduler.1.end=12', 'param_scheduler.0.end=4',
             *(f'{split}_dataloader.dataset.{key}={value}' for split in ('train', 'val', 'test')
               for key, value in (('ann_file', f'demo64/appearance/{"train" if split == "train" else "val"}'
                                               '_list.txt'),
                                  ('data_prefix', 'demo64/appearance/videos'), ('synthetic_root', 'demo64')))]


def test_iteration_based_demo_validates_and_resumes_exactly_after_sigkill(tmp_path):
    from actionjax.data.synthetic import make_synthetic

    root = str(tmp_path)
    make_synthetic(os.path.join(root, 'demo64'), sets=('appearance',), num_train=16, num_val=10, size=64,
                   num_frames=8)
    env = cli_env()
    cmd = [sys.executable, '-m', 'actionjax.train', *ITER_ARGS]
    reference = _start_both_and_kill_the_victim(root, env, [*cmd, '--work-dir', 'reference'],
                                                [*cmd, '--work-dir', 'victim'])
    latest = find_latest(os.path.join(root, 'victim'))
    assert latest is not None and os.path.basename(latest).startswith('iter_'), latest
    run_module('actionjax.train', [*ITER_ARGS, '--work-dir', 'victim', '--auto-resume'], cwd=root)
    assert reference.wait(timeout=600) == 0, reference.stderr.read()

    ref_losses = losses_by_iter(os.path.join(root, 'reference'))
    resumed_losses = losses_by_iter(os.path.join(root, 'victim'))
    assert sorted(ref_losses) == list(range(1, 13)) == sorted(resumed_losses)
    for it in ref_losses:
        assert resumed_losses[it] == ref_losses[it], (it, resumed_losses[it], ref_losses[it])
    ref_val = {r['iter']: r['top1_acc'] for r in json_records(os.path.join(root, 'reference'), 'val')}
    resumed_val = {r['iter']: r['top1_acc'] for r in json_records(os.path.join(root, 'victim'), 'val')}
    assert sorted(ref_val) == [4, 8, 12] and resumed_val == ref_val
    assert {'iter_8', 'iter_12'} <= set(os.listdir(os.path.join(root, 'reference')))
