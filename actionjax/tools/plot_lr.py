"""``python -m actionjax.tools.plot_lr --config CONFIG --out lr.png``: the run's lr as a picture.

The schedule is built exactly as training builds it, from an MMAction2 0.x config
(``optimizer.lr``, ``lr_config``, ``momentum_config``, ``total_epochs`` or ``runner``) or a
1.x one (``optim_wrapper.optimizer``, ``param_scheduler``, ``train_cfg``), and evaluated at
every iteration of the run; the x axis counts epochs. With a momentum schedule (or momentum
entries in ``param_scheduler``) a second panel shows the momentum.

An epoch is ``--iters-per-epoch`` iterations; without it the length of the training
annotation file is divided by the batch (``videos_per_gpu`` x ``--gpus``), as a distributed
MMAction2 run would split it, and when that file is not there 100 is assumed (the title
says so).
"""

from __future__ import annotations

import argparse
import math
import os
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from actionjax.config import DictAction, load_config

MAX_POINTS = 200_000  # longer runs are drawn every k-th iteration


def _get(cfg: Mapping[str, Any], *path: str, default: Any = None) -> Any:
    for key in path:
        if not isinstance(cfg, Mapping) or key not in cfg:
            return default
        cfg = cfg[key]
    return cfg


def _run_length(cfg: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """``(max_epochs, max_iters)`` from total_epochs / runner (0.x) or train_cfg (1.x)."""
    for loop in (_get(cfg, 'train_cfg'), _get(cfg, 'runner')):
        if isinstance(loop, Mapping):
            if 'IterBased' in str(loop.get('type', '')) or (loop.get('by_epoch') is False):
                return None, loop.get('max_iters')
            if loop.get('max_epochs') is not None:
                return loop['max_epochs'], None
    return cfg.get('total_epochs'), None


def _count_samples(ann_file: Any) -> int | None:
    if not isinstance(ann_file, str) or not os.path.isfile(ann_file):
        return None
    with open(ann_file) as f:
        return sum(1 for line in f if line.strip())


def iters_per_epoch_of(cfg: Mapping[str, Any], gpus: int) -> int | None:
    """Train loader length: ``ceil(ceil(samples / gpus) / videos_per_gpu)``, or None if unknown."""
    samples = _count_samples(_get(cfg, 'data', 'train', 'ann_file')) or _count_samples(
        _get(cfg, 'train_dataloader', 'dataset', 'ann_file'))
    batch = _get(cfg, 'data', 'videos_per_gpu') or _get(cfg, 'train_dataloader', 'batch_size')
    if not samples or not batch:
        return None
    return math.ceil(math.ceil(samples / gpus) / batch)


def schedule_curves(cfg: Mapping[str, Any], iters_per_epoch: int) -> dict[str, Any]:
    """``{'epochs', 'lr', 'momentum' (or None), 'max_epochs', 'max_iters'}`` for every iteration."""
    import jax
    import jax.numpy as jnp

    from actionjax.optim.schedules import build_lr_schedule, build_momentum_schedule

    optimizer = _get(cfg, 'optim_wrapper', 'optimizer') or cfg.get('optimizer') or {}
    if 'lr' not in optimizer:
        raise KeyError('the config has no optimizer lr (optimizer.lr or optim_wrapper.optimizer.lr)')
    param_scheduler = cfg.get('param_scheduler')
    lr_config = param_scheduler if param_scheduler is not None else cfg.get('lr_config')
    momentum_config = param_scheduler if param_scheduler is not None else cfg.get('momentum_config')
    max_epochs, max_iters = _run_length(cfg)
    if max_epochs is None and max_iters is None:
        raise KeyError('the config gives no run length (total_epochs, runner or train_cfg)')
    lengths = dict(max_epochs=max_epochs, max_iters=max_iters)
    key = 'param_scheduler' if param_scheduler is not None else None
    lr_fn = build_lr_schedule(lr_config, optimizer['lr'], iters_per_epoch, **lengths, key=key)
    momentum = optimizer.get('momentum', (optimizer.get('betas') or [None])[0])
    momentum_fn = None
    if momentum_config is not None and momentum is not None:
        momentum_fn = build_momentum_schedule(momentum_config, momentum, iters_per_epoch, **lengths, key=key)

    total = max_iters if max_iters is not None else max_epochs * iters_per_epoch
    stride = max(1, math.ceil(total / MAX_POINTS))
    steps = jnp.arange(0, total, stride, dtype=jnp.int32)
    lr = jax.jit(jax.vmap(lr_fn))(steps)
    mom = None if momentum_fn is None else jax.jit(jax.vmap(momentum_fn))(steps)
    return dict(epochs=np.asarray(steps) / iters_per_epoch, lr=np.asarray(lr, np.float64),
                momentum=None if mom is None else np.asarray(mom, np.float64),
                max_epochs=max_epochs, max_iters=total)


def _describe(schedule: Any) -> str:
    """A one-line summary of ``lr_config`` / ``param_scheduler`` for the title."""
    if isinstance(schedule, Mapping):
        return ', '.join(f'{k}={v!r}' for k, v in schedule.items())
    if isinstance(schedule, Sequence):
        return ' + '.join(str(s.get('type')) for s in schedule if isinstance(s, Mapping))
    return 'constant lr'


def _pick_scale(values: np.ndarray) -> str:
    """Log for staircases over decades (step, exp by epoch), linear for smooth curves (cosine,
    cyclic) whose shape a log axis would squash."""
    positive = values[values > 0]
    if not positive.size or positive.max() / positive.min() < 20:
        return 'linear'
    changes = np.count_nonzero(np.diff(values, axis=0)) / max(values.size, 1)
    return 'log' if changes < 0.02 else 'linear'


def draw(curves: dict[str, Any], out: str, title: str, yscale: str = 'auto') -> None:
    """Write the curves as a PNG: lr on top, momentum below when there is one."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    panels = [('learning rate', curves['lr'])]
    if curves['momentum'] is not None:
        panels.append(('momentum', curves['momentum']))
    fig, axes = plt.subplots(len(panels), 1, sharex=True, squeeze=False,
                             figsize=(9, 3.2 + 2.4 * len(panels)), constrained_layout=True)
    for ax, (label, values) in zip(axes[:, 0], panels, strict=True):
        for group in range(values.shape[1] if values.ndim == 2 else 1):
            line = values if values.ndim == 1 else values[:, group]
            ax.plot(curves['epochs'], line, drawstyle='steps-post', linewidth=1.6, color=f'C{group}')
        ax.set_yscale(_pick_scale(values) if yscale == 'auto' else yscale)
        ax.set_ylabel(label)
        ax.grid(True, which='major', alpha=0.4)
        ax.grid(True, which='minor', alpha=0.12)
        low, high = float(values.min()), float(values.max())
        ax.set_title(f'{label}: start {values.flat[0]:.4g}, max {high:.4g}, min {low:.4g}, '
                     f'end {values.flat[-1]:.4g}', fontsize=9, loc='left')
    axes[-1, 0].set_xlabel('epoch')
    axes[-1, 0].set_xlim(0, max(curves['epochs'][-1], 1e-9))
    fig.suptitle(title, fontsize=10)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog='python -m actionjax.tools.plot_lr', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', required=True, help='an MMAction2-style config file')
    parser.add_argument('--out', default='lr.png', help='the PNG to write')
    parser.add_argument('--iters-per-epoch', type=int, help='train loader length (default: from the data)')
    parser.add_argument('--gpus', type=int, default=8,
                        help='devices splitting each epoch when the length comes from the data (default 8, '
                             "the setting MMAction2's lrs are given for)")
    parser.add_argument('--yscale', choices=('auto', 'linear', 'log'), default='auto')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={}, metavar='KEY=VALUE',
                        help='override config keys, e.g. lr_config.step=[30,60]')
    args = parser.parse_args(argv)

    cfg = load_config(args.config, args.cfg_options)
    note = ''
    iters = args.iters_per_epoch or iters_per_epoch_of(cfg, args.gpus)
    if iters is None:
        iters, note = 100, ' (100 iters/epoch assumed: pass --iters-per-epoch)'
    curves = schedule_curves(cfg, iters)
    schedule = cfg.get('param_scheduler', cfg.get('lr_config'))
    title = '\n'.join(textwrap.wrap(f'{os.path.basename(args.config)}: {_describe(schedule)}', 110)
                      + [f'{curves["max_iters"]} iterations, {iters} per epoch{note}'])
    draw(curves, args.out, title, args.yscale)
    print(f'wrote {args.out}: lr from {curves["lr"].flat[0]:.4g} to {curves["lr"].flat[-1]:.4g} over '
          f'{curves["max_iters"]} iterations, {iters} per epoch{note}')
    return curves


if __name__ == '__main__':
    main()
