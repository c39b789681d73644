"""Model variables on disk: an orbax checkpoint directory holding ``{'params', 'batch_stats'}``.

This is the format the converters write (``convert.mmaction2``, ``convert.torchvision``)
and ``init_recognizer`` reads. Arrays come back as numpy arrays on the host;
``check_variables`` compares them with what a model expects and names, in MMAction2's
dotted form, every missing, unexpected and mis-shaped entry.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax.core import unfreeze

from actionjax.models.common.param_names import torch_name

COLLECTIONS = ('params', 'batch_stats')


def _plain(tree: Any) -> Any:
    """Nested plain dicts of numpy arrays (orbax wants no FrozenDicts, users want numpy)."""
    tree = unfreeze(tree) if not isinstance(tree, dict) and isinstance(tree, Mapping) else tree
    if isinstance(tree, Mapping):
        return {str(k): _plain(v) for k, v in tree.items()}
    return np.asarray(tree)


def save_variables(path: str | os.PathLike, variables: Mapping[str, Any], *, overwrite: bool = False) -> str:
    """Write ``variables`` (``params`` and optionally ``batch_stats``) to the directory ``path``.

    Returns the absolute path. An existing directory is an error unless ``overwrite``.
    """
    if 'params' not in variables:
        raise KeyError(f'save_variables: variables need a "params" entry, got {sorted(variables)}')
    unknown = sorted(set(variables) - set(COLLECTIONS))
    if unknown:
        raise KeyError(f'save_variables: unexpected collections {unknown}; only {list(COLLECTIONS)}')
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f'{path} exists; pass overwrite=True (or --force) to replace it')
    tree = {k: _plain(v) for k, v in variables.items()}
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path, tree, force=overwrite)
    return path


def load_variables(path: str | os.PathLike) -> dict[str, Any]:
    """Read a directory written by ``save_variables``: ``{'params': ..., 'batch_stats': ...}`` of numpy."""
    path = os.path.abspath(os.fspath(path))
    if not os.path.isdir(path):
        raise FileNotFoundError(f'{path} is not a checkpoint directory; convert a .pth first with '
                                '`python -m convert.mmaction2 CKPT.pth --config CFG --out DIR`')
    with ocp.StandardCheckpointer() as checkpointer:
        tree = checkpointer.restore(path)
    if not isinstance(tree, Mapping) or 'params' not in tree:
        keys = sorted(tree) if isinstance(tree, Mapping) else type(tree).__name__
        raise ValueError(f'{path} is not a model checkpoint (expected params/batch_stats, got {keys})')
    return {k: _plain(v) for k, v in tree.items()}


def _shapes(variables: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """``{'backbone.conv1.conv.weight': shape, ...}`` over all collections (MMAction2 names)."""
    out = {}
    for collection, tree in variables.items():
        for key_path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
            path = tuple(str(k.key) for k in key_path)
            out[f'{torch_name(path, collection)} ({collection})'] = tuple(np.shape(leaf))
    return out


def check_variables(expected: Mapping[str, Any], loaded: Mapping[str, Any], source: str = 'checkpoint'
                    ) -> None:
    """Raise ``ValueError`` listing missing, unexpected and mis-shaped entries of ``loaded``.

    ``expected`` may hold arrays or ``jax.ShapeDtypeStruct`` (``jax.eval_shape(model.init, ...)``).
    """
    want, got = _shapes(expected), _shapes(loaded)
    missing = sorted(set(want) - set(got))
    unexpected = sorted(set(got) - set(want))
    shapes = sorted(f'{k}: model {want[k]}, {source} {got[k]}' for k in set(want) & set(got)
                    if want[k] != got[k])
    if missing or unexpected or shapes:
        lines = [f'{source} does not match the model:']
        for title, items in (('missing', missing), ('unexpected', unexpected), ('mis-shaped', shapes)):
            if items:
                lines.append(f'  {title} ({len(items)}): ' + ', '.join(items[:20])
                             + (f', ... {len(items) - 20} more' if len(items) > 20 else ''))
        raise ValueError('\n'.join(lines))
