"""``python -m actionjax.tools.plot_lr --config CONFIG [--out lr.png] [--json OUT]``: the run's
lr and momentum, per param group, at every iteration.

The values come from the optimizer that training builds: the same param groups (the
config's optimizer constructor and ``paramwise_cfg`` over the model's parameters) and the
same schedules (``lr_config`` / ``momentum_config`` in MMAction2 0.x, ``param_scheduler``
in 1.x), each group's built from its own base value. So the picture is what trains, and
``--json`` writes exactly ``{"lr": {group: [one float per iteration]}, "momentum": {group:
[...]}}``.

An epoch is the training set's length divided by the batch (``batch_size`` per device x
the devices here, last incomplete batch dropped, as ``actionjax.train`` runs it) when the
annotation file exists, else ``--iters-per-epoch`` iterations; with neither the tool stops
and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from actionjax.config import DictAction
from actionjax.runtime_config import load_config

MAX_POINTS = 200_000  # longer runs are drawn every k-th iteration


def iters_per_epoch_of(cfg: Mapping[str, Any]) -> int | None:
    """The train loader's length as ``actionjax.train`` would build it, or None without the data."""
    import jax

    from actionjax.data import build_dataset

    train = cfg['data'].get('train')
    dataset_cfg = (train or {}).get('dataset') or {}
    inner = dataset_cfg.get('dataset', dataset_cfg)  # RepeatDataset
    ann_file = os.path.join(inner.get('data_root') or '', inner.get('ann_file') or '')
    if not train or not inner.get('ann_file') or not os.path.isfile(ann_file):
        return None
    return len(build_dataset(cfg, 'data.train')) // (train['batch_size'] * jax.device_count())


def schedule_curves(cfg: Mapping[str, Any], iters_per_epoch: int) -> dict[str, Any]:
    """``{'lr': {group: values}, 'momentum': {group: values}, 'epochs', 'max_iters'}`` for every
    iteration, from the param groups and schedules training builds (``engine.build``)."""
    import jax
    import jax.numpy as jnp

    from actionjax.engine.build import schedule_configs
    from actionjax.models import build_model
    from actionjax.optim import ParamRule, build_constructor, describe_params
    from actionjax.runtime_config import sample_shape

    lr, momentum = schedule_configs(cfg, iters_per_epoch)
    constructor = build_constructor(cfg['optimizer'])
    if cfg['model'] is None:  # a schedule-only config: one group at the optimizer's own lr
        groups = {'default': (ParamRule(), constructor.group_hyperparams(ParamRule(), lr, momentum))}
    else:
        shape = sample_shape(cfg, size=64)
        params = describe_params(build_model(cfg), None, jax.ShapeDtypeStruct(shape, jnp.uint8))
        groups = constructor.groups(params, lr, momentum)
    loop = cfg['train_loop']
    total = loop['max_epochs'] * iters_per_epoch if loop['by_epoch'] else loop['max_iters']
    steps = jnp.arange(total, dtype=jnp.int32)

    def values(fn: Any) -> list[float]:
        if callable(fn):
            return np.asarray(jax.jit(jax.vmap(fn))(steps), np.float64).tolist()
        return [float(fn)] * total

    curves: dict[str, Any] = {'lr': {}, 'momentum': {}}
    for group, (_, hyperparams) in groups.items():
        if hyperparams['lr'] is not None:  # None: an optimizer without an lr argument
            curves['lr'][group] = values(hyperparams['lr'])
        if 'momentum' in hyperparams:
            curves['momentum'][group] = values(hyperparams['momentum'])
    return dict(curves, epochs=np.arange(total) / iters_per_epoch, max_iters=total)


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
    if curves['momentum']:
        panels.append(('momentum', curves['momentum']))
    fig, axes = plt.subplots(len(panels), 1, sharex=True, squeeze=False,
                             figsize=(9, 3.2 + 2.4 * len(panels)), constrained_layout=True)
    stride = max(1, -(-len(curves['epochs']) // MAX_POINTS))
    epochs = curves['epochs'][::stride]
    for ax, (label, per_group) in zip(axes[:, 0], panels, strict=True):
        values = np.stack([np.asarray(v)[::stride] for v in per_group.values()], axis=1)
        for i, group in enumerate(per_group):
            ax.plot(epochs, values[:, i], drawstyle='steps-post', linewidth=1.6, color=f'C{i}', label=group)
        if len(per_group) > 1:
            ax.legend(fontsize=8)
        ax.set_yscale(_pick_scale(values) if yscale == 'auto' else yscale)
        ax.set_ylabel(label)
        ax.grid(True, which='major', alpha=0.4)
        ax.grid(True, which='minor', alpha=0.12)
        low, high = float(values.min()), float(values.max())
        ax.set_title(f'{label}: start {values.flat[0]:.4g}, max {high:.4g}, min {low:.4g}, '
                     f'end {values.flat[-1]:.4g}', fontsize=9, loc='left')
    axes[-1, 0].set_xlabel('epoch')
    axes[-1, 0].set_xlim(0, max(epochs[-1], 1e-9))
    fig.suptitle(title, fontsize=10)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog='python -m actionjax.tools.plot_lr', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', required=True, help='an MMAction2-style config file')
    parser.add_argument('--out', default='lr.png', help='the PNG to write')
    parser.add_argument('--json', help='also write every iteration\'s lr and momentum per group here')
    parser.add_argument('--iters-per-epoch', type=int,
                        help='train loader length (default: from the training annotation file)')
    parser.add_argument('--yscale', choices=('auto', 'linear', 'log'), default='auto')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={}, metavar='KEY=VALUE',
                        help='override config keys, e.g. lr_config.step=[30,60]')
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    iters = args.iters_per_epoch or iters_per_epoch_of(cfg)
    if iters is None:
        raise SystemExit('error: the training annotation file (data.train.ann_file / '
                         'train_dataloader.dataset.ann_file) does not exist here, so the epoch length is '
                         'unknown; pass --iters-per-epoch N (the number of batches per epoch)')
    curves = schedule_curves(cfg, iters)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'lr': curves['lr'], 'momentum': curves['momentum']}, f)
    title = '\n'.join(textwrap.wrap(f'{os.path.basename(args.config)}: {_describe(cfg["lr_schedule"])}', 110)
                      + [f'{curves["max_iters"]} iterations, {iters} per epoch'])
    draw(curves, args.out, title, args.yscale)
    first = next(iter(curves['lr'].values()))
    print(f'wrote {args.out}' + (f' and {args.json}' if args.json else '')
          + f': lr from {first[0]:.4g} to {first[-1]:.4g} over {curves["max_iters"]} iterations, '
          f'{iters} per epoch')
    return curves


if __name__ == '__main__':
    main()
