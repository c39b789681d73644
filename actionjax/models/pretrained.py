"""``model.backbone.pretrained``: initialise a backbone from a converted checkpoint.

MMAction2 loads ImageNet weights into a recognizer's backbone from a torchvision file.
actionjax never downloads and keeps torch out of the library: the file is converted once
(``python -m convert.torchvision resnet50.pth --out DIR``) and ``DIR`` is what the config
names. Any actionjax checkpoint works too; a whole recognizer contributes its backbone.

A backbone class may load its weights its own way, as MMAction2's ``init_weights(pretrained)``
does: ``init_weights(self, variables, pretrained)`` receives the backbone's freshly
initialised variables (``{'params': ..., 'batch_stats': ...}``, names relative to the
backbone) and ``model.backbone.pretrained``, and returns new variables of the same
structure; ``init_backbone_weights`` calls it when training starts.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from actionjax.models.common.param_names import get_leaf, iter_leaves, match_keys, set_leaf, torch_key

logger = logging.getLogger('actionjax')

CONVERT_HINT = ('convert the torchvision file once with "python -m convert.torchvision resnet50.pth '
                '--out DIR" and set model.backbone.pretrained=DIR')


def read_pretrained(path: str | os.PathLike) -> dict[str, Any]:
    """The backbone variables stored in a converted checkpoint directory."""
    from actionjax.models.checkpoint_io import load_variables

    path = os.fspath(path)
    if '://' in path:
        raise ValueError(f'model.backbone.pretrained={path!r} would download; actionjax never downloads: '
                         + CONVERT_HINT)
    if not os.path.exists(path):
        raise FileNotFoundError(f'model.backbone.pretrained={path!r} does not exist; ' + CONVERT_HINT)
    if os.path.isfile(path):
        raise ValueError(f'model.backbone.pretrained={path!r} is a file, not a converted checkpoint; '
                         + CONVERT_HINT)
    pretrained = load_variables(path)
    if 'backbone' in pretrained.get('params', {}):  # a whole recognizer: take its backbone
        pretrained = {c: tree['backbone'] for c, tree in pretrained.items() if 'backbone' in tree}
    return pretrained


def init_backbone_weights(variables: Mapping[str, Any], model_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """``variables`` with the backbone initialised as ``model_cfg`` (the config's ``model``) says.

    A backbone class with an ``init_weights(variables, pretrained)`` method gets its own
    variables and ``backbone.pretrained`` (None when unset) and returns new ones; any other
    backbone is loaded from the converted checkpoint ``backbone.pretrained`` names
    (``load_pretrained_backbone``), or left as initialised when it names none.
    """
    from actionjax.models.builder import build_backbone
    from actionjax.registry import BACKBONES

    backbone_cfg = model_cfg.get('backbone')
    if not isinstance(backbone_cfg, Mapping):
        return dict(variables)
    pretrained = backbone_cfg.get('pretrained')
    kind = backbone_cfg.get('type')
    backbone_cls = BACKBONES.get(kind, 'model.backbone.type') if isinstance(kind, str) else kind
    if not callable(getattr(backbone_cls, 'init_weights', None)):
        if not pretrained:
            return dict(variables)
        logger.info('backbone initialised from %s', pretrained)
        return load_pretrained_backbone(variables, pretrained)
    where = f'{backbone_cls.__name__}.init_weights'
    own = {c: tree['backbone'] for c, tree in variables.items()
           if isinstance(tree, Mapping) and 'backbone' in tree}
    new = build_backbone(backbone_cfg).init_weights(_copy_tree(own), pretrained)
    expected, got = _shapes(own), _shapes(new) if isinstance(new, Mapping) else None
    if got != expected:
        raise ValueError(f'{where}(variables, pretrained={pretrained!r}) must return variables of the '
                         'structure and shapes it was given (names relative to the backbone: '
                         f'{{"params": ..., "batch_stats": ...}}); ' + _first_difference(expected, got))
    out = _copy_tree(variables)
    for collection, tree in own.items():
        for path, old in iter_leaves(tree):
            value = np.asarray(get_leaf(new[collection], path), np.asarray(old).dtype)
            set_leaf(out[collection]['backbone'], path, value)
    logger.info('backbone initialised by %s (pretrained=%s)', where, pretrained)
    return out


def _shapes(tree: Mapping[str, Any]) -> dict[tuple[str, ...], tuple[int, ...]]:
    return {(c, *path): tuple(np.shape(leaf)) for c, sub in tree.items() for path, leaf in iter_leaves(sub)}


def _first_difference(expected: Mapping[tuple, Any], got: Mapping[tuple, Any] | None) -> str:
    if got is None:
        return 'it returned something that is not a dict of collections'
    for key in expected:
        if key not in got:
            return f'{"/".join(key)} is missing'
        if got[key] != expected[key]:
            return f'{"/".join(key)} has shape {got[key]}, the model has {expected[key]}'
    extra = next(k for k in got if k not in expected)
    return f'{"/".join(extra)} is not a variable of the backbone'


def load_pretrained_backbone(variables: Mapping[str, Any], pretrained: str | os.PathLike | Mapping[str, Any],
                             source: str | None = None) -> dict[str, Any]:
    """``variables`` with the backbone initialised from ``pretrained``, MMAction2's semantics.

    ``pretrained`` is a converted checkpoint directory or its backbone variables. A 2D
    kernel loaded into a 3D backbone (I3D, SlowOnly: ``pretrained2d``) is inflated in time
    by :func:`inflate_kernel`; BatchNorm is copied as it is. As MMAction2's
    ``_load_torchvision_checkpoint`` does, a tensor whose shape differs from the model's
    otherwise (e.g. ``conv1`` of a flow model) is skipped with a warning, and backbone variables
    the file lacks (e.g. non-local blocks) keep their initial values. TSM's wrapper names
    (``conv1.conv.net``) are matched as in ``convert.mmaction2``. Returns new dicts;
    ``variables`` is not modified.
    """
    if not isinstance(pretrained, Mapping):
        source = source or os.fspath(pretrained)
        pretrained = read_pretrained(pretrained)
    source = source or 'pretrained backbone'
    if 'backbone' not in variables.get('params', {}):
        raise ValueError('variables have no "backbone" params; load_pretrained_backbone expects the '
                         'variables of a recognizer (model.init output)')
    found = {torch_key(c, p): (c, p) for c, tree in pretrained.items() for p, _ in iter_leaves(tree)}
    target = {torch_key(c, p): (c, p) for c in ('params', 'batch_stats')
              for p, _ in iter_leaves(variables.get(c, {}).get('backbone', {}))}
    pairs, missing, unused, ambiguous = match_keys(list(found), list(target))
    if ambiguous:
        raise ValueError(f'{source}: ambiguous backbone keys: {ambiguous}')
    out = _copy_tree(variables)
    skipped = []
    for key, src in pairs.items():
        (collection, path_t), (src_collection, path_s) = target[key], found[src]
        new = np.asarray(get_leaf(pretrained[src_collection], path_s))
        old = get_leaf(out[collection]['backbone'], path_t)
        if tuple(new.shape) != tuple(old.shape) and path_t[-1] == 'kernel':
            new = inflate_kernel(new, tuple(old.shape))
        if tuple(new.shape) != tuple(old.shape):
            skipped.append(f'{key} {tuple(new.shape)} vs model {tuple(old.shape)}')
            continue
        set_leaf(out[collection]['backbone'], path_t, new.astype(old.dtype))
    if skipped:
        warnings.warn(f'{source}: shapes differ, kept the initial values of backbone.'
                      + ', backbone.'.join(skipped), stacklevel=2)
    if unused:
        logger.info('%s: these pretrained parameters are not loaded: %s', source, ', '.join(unused))
    if missing:
        logger.info('%s: backbone variables not in the pretrained file keep their init: %s', source,
                    ', '.join(missing))
    return out


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


def _copy_tree(tree: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _copy_tree(v) if isinstance(v, Mapping) else v for k, v in tree.items()}
