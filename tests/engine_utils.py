"""Shared helpers of the engine tests: tiny synthetic data, the tiny TSN config, CLI runs, logs.

The tiny config (tests/fixtures/engine/tiny_tsn.py) reads ``tiny_synthetic/`` relative to
the working directory; ``tiny_workspace`` writes that folder (16 train / 10 val videos of
8 frames at 32x32, a few seconds) and tests run with it as their working directory.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_CONFIG = os.path.join(REPO, 'tests', 'fixtures', 'engine', 'tiny_tsn.py')
NUM_TRAIN, NUM_VAL = 16, 10


def tiny_workspace(root: str) -> str:
    """Write ``root/tiny_synthetic`` (the appearance set only) and return ``root``."""
    from actionjax.data.synthetic import make_synthetic

    make_synthetic(os.path.join(root, 'tiny_synthetic'), sets=('appearance',), num_train=NUM_TRAIN,
                   num_val=NUM_VAL, size=32, num_frames=8)
    return root


def cli_env(**extra: str) -> dict[str, str]:
    """Environment for ``python -m actionjax.*`` subprocesses: the repo importable, one CPU thread pool."""
    env = dict(os.environ)
    env['PYTHONPATH'] = REPO + os.pathsep + env.get('PYTHONPATH', '')
    env.update(extra)
    return env


def run_module(module: str, args: list[str], cwd: str, timeout: float = 600, **env: str
               ) -> subprocess.CompletedProcess:
    """``python -m module args`` in ``cwd``; fails the test with the output if it exits non-zero."""
    proc = subprocess.run([sys.executable, '-m', module, *args], cwd=cwd, env=cli_env(**env),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f'{module} {args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}'
    return proc


def json_records(work_dir: str, mode: str = 'train') -> list[dict]:
    """Records of ``mode`` from every ``*.log.json`` of a work dir, oldest file first."""
    records = []
    for path in sorted(glob.glob(os.path.join(work_dir, '*.log.json'))):
        with open(path) as f:
            records += [r for r in map(json.loads, f) if r.get('mode') == mode]
    return records


def losses_by_iter(work_dir: str) -> dict[int, float]:
    """``{global_iter: loss}`` of the train records; a repeated iteration must repeat its loss."""
    out: dict[int, float] = {}
    for record in json_records(work_dir):
        it, loss = record['global_iter'], record['loss']
        assert out.get(it, loss) == loss, f'iteration {it} logged twice with different losses'
        out[it] = loss
    return out
