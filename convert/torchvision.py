"""torchvision ImageNet ResNet weights as an actionjax backbone initialisation.

    python -m convert.torchvision resnet50.pth --out DIR

MMAction2 configs start TSN / TSM from ``pretrained='torchvision://resnet50'``, which
downloads. Here nothing downloads: convert a local torchvision ``resnet50.pth`` once
and point ``model.backbone.pretrained`` at the output directory; the model builder
then calls :func:`load_pretrained_backbone`.

torchvision names its layers as plain convs and BNs; MMAction2's ResNet wraps each
conv+BN pair in a ``ConvModule`` (MMAction2's ``ResNet._load_torchvision_checkpoint``
does the same renaming):

==============================  =====================================
torchvision                     MMAction2 / actionjax
==============================  =====================================
``conv1.weight``                ``conv1.conv.weight``
``bn1.*``                       ``conv1.bn.*``
``layer1.0.conv2.weight``       ``layer1.0.conv2.conv.weight``
``layer1.0.bn2.*``              ``layer1.0.conv2.bn.*``
``layer1.0.downsample.0.*``     ``layer1.0.downsample.conv.*``
``layer1.0.downsample.1.*``     ``layer1.0.downsample.bn.*``
``fc.*``                        dropped (the recognizer has its own head)
==============================  =====================================

The output holds the variables of a standalone ``ResNet`` (``params/conv1/conv/kernel``,
...): no ``backbone`` prefix.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np

from actionjax.models.pretrained import load_pretrained_backbone as load_backbone
from convert.mmaction2 import (
    iter_leaves,
    read_checkpoint,
    set_leaf,
    to_flax_layout,
)

logger = logging.getLogger(__name__)

_BN_LEAVES = {'weight': ('params', 'scale'), 'bias': ('params', 'bias'),
              'running_mean': ('batch_stats', 'mean'), 'running_var': ('batch_stats', 'var')}
_STEM = re.compile(r'^(conv1|bn1)\.(\w+)$')
_BLOCK = re.compile(r'^(layer\d+\.\d+)\.(?:(conv|bn)(\d+)|downsample\.([01]))\.(\w+)$')
INFO_FILE = 'torchvision.json'


def mmaction2_name(key: str) -> str | None:
    """MMAction2's ResNet key for a torchvision ResNet key; ``None`` for the classifier ``fc``.

    Raises ``KeyError`` for a key that is not part of a torchvision ResNet.
    """
    if key.startswith('fc.'):
        return None
    stem = _STEM.match(key)
    if stem:
        module = 'conv1.conv' if stem[1] == 'conv1' else 'conv1.bn'
        return f'{module}.{stem[2]}'
    block = _BLOCK.match(key)
    if block:
        prefix, kind, index, down, leaf = block.groups()
        if down is not None:
            return f'{prefix}.downsample.{"conv" if down == "0" else "bn"}.{leaf}'
        return f'{prefix}.conv{index}.{kind if kind == "bn" else "conv"}.{leaf}'
    raise KeyError(key)


def torchvision_to_variables(state_dict: Mapping[str, np.ndarray]) -> dict[str, dict]:
    """Variables of MMAction2's ``ResNet`` (no ``backbone`` prefix) from a torchvision state_dict.

    ``fc.*`` and ``num_batches_tracked`` are dropped; any other unknown key is an error,
    since the file is then not a torchvision ResNet.
    """
    variables: dict[str, dict] = {}
    unknown = []
    for key, value in state_dict.items():
        if key.endswith('.num_batches_tracked'):
            continue
        try:
            name = mmaction2_name(key)
        except KeyError:
            unknown.append(key)
            continue
        if name is None:
            continue
        *modules, leaf = name.split('.')
        if modules[-1] == 'bn':
            collection, flax_leaf = _BN_LEAVES[leaf]
        else:
            collection, flax_leaf = 'params', 'kernel' if leaf == 'weight' else leaf
        array = to_flax_layout(flax_leaf, np.asarray(value, dtype=np.float32))
        set_leaf(variables.setdefault(collection, {}), (*modules, flax_leaf), np.ascontiguousarray(array))
    if unknown:
        raise ValueError(f'not a torchvision ResNet state_dict; unknown keys ({len(unknown)}): '
                         + ', '.join(unknown))
    if 'params' not in variables:
        raise ValueError('the state_dict holds no ResNet weights')
    return variables


def convert_torchvision(checkpoint: str | os.PathLike, out: str | os.PathLike | None = None,
                        overwrite: bool = False) -> dict[str, dict]:
    """Convert a local torchvision ResNet ``.pth``; save the backbone variables to ``out`` if given."""
    state_dict, _ = read_checkpoint(checkpoint)
    variables = torchvision_to_variables(state_dict)
    if out is not None:
        from actionjax.models.checkpoint_io import save_variables

        out = os.path.abspath(os.fspath(out))
        save_variables(out, variables, overwrite=overwrite)
        with open(os.path.join(out, INFO_FILE), 'w') as f:
            json.dump(dict(source=os.path.abspath(os.fspath(checkpoint)), format='torchvision ResNet'), f)
    return variables


def load_pretrained_backbone(variables: Mapping[str, Any], path: str | os.PathLike) -> dict[str, Any]:
    """``actionjax.models.pretrained.load_pretrained_backbone`` that also takes a torchvision
    ``.pth`` (converted on the fly, which needs torch)."""
    path = os.fspath(path)
    if os.path.isfile(path):
        return load_backbone(variables, convert_torchvision(path), source=path)
    return load_backbone(variables, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m convert.torchvision',
        description='Convert a local torchvision ResNet .pth to an actionjax backbone checkpoint directory.')
    parser.add_argument('checkpoint', help='torchvision ResNet state_dict (e.g. resnet50-11ad3fa6.pth)')
    parser.add_argument('--out', required=True, help='output directory')
    parser.add_argument('--force', action='store_true', help='replace an existing --out')
    args = parser.parse_args(argv)
    try:
        variables = convert_torchvision(args.checkpoint, args.out, overwrite=args.force)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    count = sum(np.size(v) for _, v in iter_leaves(variables['params']))
    print(f'wrote {count:,} backbone parameters to {args.out}; '
          f'set model.backbone.pretrained={os.path.abspath(args.out)!r}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
