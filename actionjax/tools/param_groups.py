"""``python -m actionjax.tools.param_groups --config CONFIG [--json]``: what your rules did.

Prints every parameter of the config's model with its shape, ``lr_mult``,
``decay_mult`` and optimizer group (MMAction2 dotted names, model order), then one line
per group with its lr and weight decay, as ``build_optimizer`` will set them up. Frozen
parameters (frozen_stages, partial_bn, ``lr_mult=0``) are in group ``frozen``; their
multipliers are still what the rules gave them, as mmcv assigns them too.

The model is traced abstractly (``jax.eval_shape``): nothing is compiled or allocated,
so this is quick even for large models.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from actionjax.optim.constructors import FROZEN, ParamAssignment, build_constructor
from actionjax.optim.param_info import describe_model


def param_groups(cfg: Mapping[str, Any], shape: Sequence[int] | None = None) -> list[ParamAssignment]:
    """Every parameter of ``build_model(cfg)`` with its rule and group for ``cfg.optimizer``."""
    from actionjax.models import build_model
    from actionjax.runtime_config import NO_OPTIMIZER, sample_shape

    if cfg.get('optimizer') is None:
        raise KeyError(NO_OPTIMIZER)
    model = build_model(cfg)
    imgs = jax.ShapeDtypeStruct(tuple(shape or sample_shape(cfg)), jnp.uint8)
    return build_constructor(cfg['optimizer']).assign(describe_model(model, None, imgs))


def as_records(assignments: Sequence[ParamAssignment]) -> list[dict[str, Any]]:
    return [dict(name=a.info.name, shape=list(a.info.shape), lr_mult=a.lr_mult, decay_mult=a.decay_mult,
                 group=a.group, frozen=a.info.frozen) for a in assignments]


def format_table(assignments: Sequence[ParamAssignment], optimizer_cfg: Mapping[str, Any]) -> str:
    """One line per parameter, then one per group with its lr and weight decay."""
    width = max((len(a.info.name) for a in assignments), default=4)
    lines = [f'{"name":<{width}}  {"shape":<20} {"lr_mult":>8} {"decay_mult":>10}  group']
    for a in assignments:
        shape = 'x'.join(map(str, a.info.shape)) or 'scalar'
        lines.append(f'{a.info.name:<{width}}  {shape:<20} {a.lr_mult:>8g} {a.decay_mult:>10g}  {a.group}')
    base_lr, base_wd = optimizer_cfg.get('lr'), optimizer_cfg.get('weight_decay')
    lines.append('')
    lines.append(f'{"group":<16} {"params":>6} {"elements":>12} {"lr":>12} {"weight_decay":>12}')
    groups: dict[str, list[ParamAssignment]] = {}
    for a in assignments:
        groups.setdefault(a.group, []).append(a)
    for group, members in groups.items():
        numel = sum(math.prod(a.info.shape) for a in members)
        if group == FROZEN:
            lr_text, wd_text = 'no update', '-'
        else:
            lr_text = f'{base_lr * members[0].lr_mult:g}' if base_lr is not None else 'default'
            wd_text = f'{base_wd * members[0].decay_mult:g}' if base_wd is not None else 'default'
        lines.append(f'{group:<16} {len(members):>6} {numel:>12} {lr_text:>12} {wd_text:>12}')
    return '\n'.join(lines)


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    from actionjax.config import DictAction
    from actionjax.runtime_config import load_config

    parser = argparse.ArgumentParser(prog='python -m actionjax.tools.param_groups', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', required=True, help='config file (.py)')
    parser.add_argument('--json', action='store_true', help='print JSON records instead of a table')
    parser.add_argument('--shape', help='input shape to trace, e.g. 1,8,224,224,3 (default: from the config)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config keys, e.g. optimizer.paramwise_cfg.fc_lr5=False')
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    shape = tuple(int(s) for s in args.shape.split(',')) if args.shape else None
    assignments = param_groups(cfg, shape)
    records = as_records(assignments)
    if args.json:
        json.dump(records, sys.stdout, indent=1)
        sys.stdout.write('\n')
    else:
        print(format_table(assignments, cfg['optimizer']))
    return records


if __name__ == '__main__':
    main()
