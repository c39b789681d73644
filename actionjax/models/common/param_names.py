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

from collections.abc import Mapping
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
