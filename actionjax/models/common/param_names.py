"""MMAction2-style dotted names for Flax variables.

Flax modules in actionjax are named exactly as the torch modules of MMAction2
(``backbone`` / ``layer1`` / ``0`` / ``conv1`` / ``conv``), so a variable's path maps
to the torch state_dict key by joining with dots and renaming the leaf:

================  ==================  =========================
collection        Flax leaf           torch leaf
================  ==================  =========================
params            kernel (conv/fc)    weight (OIHW / out,in)
params            scale (norm)        weight
params            bias                bias
batch_stats       mean                running_mean
batch_stats       var                 running_var
================  ==================  =========================

``backbone.layer1.0.conv1.conv.weight`` is therefore
``variables['params']['backbone']['layer1']['0']['conv1']['conv']['kernel']``.
Optimizer ``custom_keys`` written for MMAction2 match these names unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import jax

FLAX_TO_TORCH_LEAF = {
    ('params', 'kernel'): 'weight',
    ('params', 'scale'): 'weight',
    ('params', 'bias'): 'bias',
    ('params', 'embedding'): 'weight',
    ('batch_stats', 'mean'): 'running_mean',
    ('batch_stats', 'var'): 'running_var',
}


def torch_name(path: tuple[str, ...], collection: str = 'params') -> str:
    """The MMAction2 state_dict key of the variable at ``path`` in ``collection``."""
    *modules, leaf = path
    leaf = FLAX_TO_TORCH_LEAF.get((collection, leaf), leaf)
    return '.'.join([*modules, leaf])


def path_names(tree: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """Every leaf path of a nested dict, in flattening order, as tuples of strings."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return [tuple(str(k.key) for k in key_path) for key_path, _ in leaves]


def named_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``{'backbone.conv1.conv.weight': array, ...}`` for a ``params`` tree."""
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    return {torch_name(tuple(str(k.key) for k in kp)): leaf for kp, leaf in leaves}


# Module names MMAction2's ResNetTSM inserts when it wraps already-built modules.
WRAPPERS = ('net', 'block')


def strip_wrappers(key: str) -> str:
    """``key`` without ResNetTSM's wrapper module names (``net``, ``block``)."""
    return '.'.join(part for part in key.split('.') if part not in WRAPPERS)


def iter_leaves(tree: Mapping[str, Any],
                prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """``(path, leaf)`` for every leaf of a nested dict, in the dict's order."""
    for key, value in tree.items():
        if isinstance(value, Mapping):
            yield from iter_leaves(value, (*prefix, str(key)))
        else:
            yield (*prefix, str(key)), value


def torch_key(collection: str, path: tuple[str, ...]) -> str:
    """The MMAction2 state_dict key of a Flax variable (``params``/``batch_stats`` leaf rename)."""
    *modules, leaf = path
    torch_leaf = FLAX_TO_TORCH_LEAF.get((collection, leaf))
    if torch_leaf is None:
        if collection != 'params':
            raise ValueError(f'no MMAction2 name for {collection}/{"/".join(path)}: only params and '
                             'batch_stats (mean, var) have torch counterparts')
        torch_leaf = leaf
    return '.'.join([*modules, torch_leaf])


def match_keys(source: list[str], target: list[str]) -> tuple[dict[str, str], list[str], list[str],
                                                             list[tuple[str, list[str]]]]:
    """Pair checkpoint keys with target keys: exactly, else with wrapper names removed.

    Returns ``(target -> source, missing targets, unexpected sources, ambiguous)``.
    """
    pairs: dict[str, str] = {}
    used: set[str] = set()
    source_set = set(source)
    for key in target:
        if key in source_set:
            pairs[key] = key
            used.add(key)
    by_stripped: dict[str, list[str]] = {}
    for key in source:
        if key not in used:
            by_stripped.setdefault(strip_wrappers(key), []).append(key)
    missing, ambiguous = [], []
    for key in target:
        if key in pairs:
            continue
        candidates = by_stripped.get(strip_wrappers(key), [])
        if len(candidates) == 1:
            pairs[key] = candidates[0]
            used.add(candidates[0])
            by_stripped[strip_wrappers(key)] = []
        elif candidates:
            ambiguous.append((key, candidates))
        else:
            missing.append(key)
    unexpected = [key for key in source if key not in used]
    return pairs, missing, unexpected, ambiguous


def set_leaf(tree: dict, path: tuple[str, ...], value: Any) -> None:
    """``tree[path[0]][path[1]]... = value``, creating dicts on the way."""
    for part in path[:-1]:
        tree = tree.setdefault(part, {})
    tree[path[-1]] = value


def get_leaf(tree: Mapping, path: tuple[str, ...]) -> Any:
    """``tree[path[0]][path[1]]...``."""
    for part in path:
        tree = tree[part]
    return tree


# ------------------------------------------------------------------- conversion
