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
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from convert.mmaction2 import (
    get_leaf,
    iter_leaves,
    match_keys,
    read_checkpoint,
    set_leaf,
    to_flax_layout,
    torch_key,
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


def _read_pretrained(path: str) -> Mapping[str, Any]:
    if '://' in path:
        raise ValueError(
            f'model.backbone.pretrained={path!r} would download; actionjax never downloads. Fetch the '
            'torchvision ResNet .pth yourself, run "python -m convert.torchvision resnet50.pth --out DIR" '
            'and set model.backbone.pretrained=DIR')
    if not os.path.exists(path):
        raise FileNotFoundError(f'model.backbone.pretrained={path!r} does not exist; convert a torchvision '
                                'ResNet with "python -m convert.torchvision resnet50.pth --out DIR"')
    if os.path.isfile(path):  # a torchvision .pth, converted on the fly (needs torch)
        return convert_torchvision(path)
    from actionjax.models.checkpoint_io import load_variables

    pretrained = load_variables(path)
    if 'backbone' in pretrained.get('params', {}):  # a whole recognizer: take its backbone
        pretrained = {c: tree['backbone'] for c, tree in pretrained.items() if 'backbone' in tree}
    return pretrained


def _copy_tree(tree: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _copy_tree(v) if isinstance(v, Mapping) else v for k, v in tree.items()}


def inflate_kernel(kernel: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A 2D conv kernel ``(kh, kw, I, O)`` inflated to the 3D ``shape`` ``(t, kh, kw, I, O)``.

    MMAction2's ``pretrained2d`` rule (``ResNet3d._inflate_conv_params``): the 2D kernel is
    repeated ``t`` times along time and divided by ``t``, so a clip of identical frames
    gives the 2D network's response. Any other shape pair is returned unchanged (the
    caller then keeps the model's value, as MMAction2 does after its shape warning).
    """
    if kernel.ndim != 4 or len(shape) != 5 or tuple(shape[1:]) != kernel.shape:
        return kernel
    return np.broadcast_to(kernel[None], shape) / np.asarray(shape[0], kernel.dtype)


def load_pretrained_backbone(variables: Mapping[str, Any], path: str | os.PathLike) -> dict[str, Any]:
    """``variables`` with the backbone initialised from ``path``, MMAction2's semantics.

    ``path`` is a directory written by ``python -m convert.torchvision`` (or any actionjax
    checkpoint; a whole recognizer contributes its backbone), or a torchvision ``.pth``.
    A 2D kernel loaded into a 3D backbone (I3D, SlowOnly: ``pretrained2d``) is inflated in
    time by :func:`inflate_kernel`; BatchNorm is copied as it is. As MMAction2's
    ``_load_torchvision_checkpoint`` does, a tensor whose shape differs from the model's
    otherwise (e.g. ``conv1`` of a flow model) is skipped with a warning, and backbone
    variables the file lacks (e.g. non-local blocks) keep their initial values. TSM's
    wrapper names (``conv1.conv.net``) are matched as in ``convert.mmaction2``.
    Returns new dicts; ``variables`` is not modified.
    """
    path = os.fspath(path)
    pretrained = _read_pretrained(path)
    if 'backbone' not in variables.get('params', {}):
        raise ValueError('variables have no "backbone" params; load_pretrained_backbone expects the '
                         'variables of a recognizer (model.init output)')
    source = {torch_key(c, p): (c, p) for c, tree in pretrained.items() for p, _ in iter_leaves(tree)}
    target = {torch_key(c, p): (c, p) for c in ('params', 'batch_stats')
              for p, _ in iter_leaves(variables.get(c, {}).get('backbone', {}))}
    pairs, missing, unused, ambiguous = match_keys(list(source), list(target))
    if ambiguous:
        raise ValueError(f'{path}: ambiguous backbone keys: {ambiguous}')
    out = _copy_tree(variables)
    skipped = []
    for key, src in pairs.items():
        (collection, path_t), (src_collection, path_s) = target[key], source[src]
        new = np.asarray(get_leaf(pretrained[src_collection], path_s))
        old = get_leaf(out[collection]['backbone'], path_t)
        if tuple(new.shape) != tuple(old.shape) and path_t[-1] == 'kernel':
            new = inflate_kernel(new, tuple(old.shape))
        if tuple(new.shape) != tuple(old.shape):
            skipped.append(f'{key} {tuple(new.shape)} vs model {tuple(old.shape)}')
            continue
        set_leaf(out[collection]['backbone'], path_t, new.astype(old.dtype))
    if skipped:
        warnings.warn(f'{path}: shapes differ, kept the initial values of backbone.'
                      + ', backbone.'.join(skipped), stacklevel=2)
    if unused:
        logger.info('%s: these pretrained parameters are not loaded: %s', path, ', '.join(unused))
    if missing:
        logger.info('%s: backbone variables not in the pretrained file keep their init: %s', path,
                    ', '.join(missing))
    return out


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
