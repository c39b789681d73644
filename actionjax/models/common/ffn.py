"""mmcv's ``FFN``: Linear -> activation -> dropout -> Linear -> dropout, named as in torch.

mmcv keeps the layers in nested ``Sequential``s, so the keys are ``layers.0.0`` (first
Linear) and ``layers.1`` (last Linear) for the usual two layers; ``num_fcs > 2`` adds
``layers.1.0``, ... before the last one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import flax.linen as nn
import jax
import numpy as np
from flax.core import FrozenDict

from actionjax.models.common.attention import trunc_normal_02
from actionjax.models.common.drop_path import DropPath
from actionjax.models.common.module_list import ModuleList


def gelu(x: jax.Array) -> jax.Array:
    """torch's ``nn.GELU()``, the exact one, in torch's form ``x / 2 * (1 + erf(x / sqrt(2)))``.
    ``jax.nn.gelu(approximate=False)`` takes it through ``erfc``, which XLA:CPU computes
    1.6x slower forward and backward (on the activations of Swin-T's first MLP: 19 -> 11 ms
    forward)."""
    return x * 0.5 * (1 + jax.lax.erf(x * np.sqrt(0.5).astype(x.dtype)))


_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    'GELU': gelu,
    'ReLU': nn.relu,
    'SiLU': nn.silu,
    'Swish': nn.silu,
}


def build_activation(act_cfg: Mapping[str, Any] | None, key_path: str) -> Callable[[jax.Array], jax.Array]:
    """The activation function of an mmcv ``act_cfg`` (``GELU``, ``ReLU``, ``SiLU``)."""
    kind = (act_cfg or {}).get('type')
    if kind not in _ACTIVATIONS:
        raise NotImplementedError(f'{key_path}={dict(act_cfg or {})} is not supported; '
                                  f'choose type from {sorted(_ACTIVATIONS)}')
    return _ACTIVATIONS[kind]


class _LinearAct(nn.Module):
    """mmcv's ``Sequential(Linear, activation, Dropout)``: the Linear is child ``0``."""

    features: int
    act_cfg: Mapping[str, Any]
    drop: float

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        x = nn.Dense(self.features, kernel_init=trunc_normal_02, name='0')(x)
        x = build_activation(self.act_cfg, 'act_cfg')(x)
        return nn.Dropout(self.drop, deterministic=not train)(x)


class FFN(nn.Module):
    """mmcv's FFN with ``add_identity=False`` semantics: returns ``dropout_layer(fcs(x))``.

    ``drop_path`` is the rate of the ``DropPath`` ``dropout_layer`` (0: none); the residual
    sum is the caller's.
    """

    embed_dims: int
    feedforward_channels: int
    num_fcs: int = 2
    act_cfg: Mapping[str, Any] = FrozenDict(type='GELU')
    ffn_drop: float = 0.0
    drop_path: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        if self.num_fcs < 2:
            raise ValueError(f'FFN num_fcs must be >= 2, got {self.num_fcs}')
        layers = ModuleList(name='layers')
        for i in range(self.num_fcs - 1):
            hidden = partial(_LinearAct, self.feedforward_channels, self.act_cfg, self.ffn_drop, name=str(i))
            x = layers(hidden, x, train)
        last = partial(nn.Dense, self.embed_dims, kernel_init=trunc_normal_02, name=str(self.num_fcs - 1))
        x = layers(last, x)
        x = nn.Dropout(self.ffn_drop, deterministic=not train)(x)
        return DropPath(self.drop_path)(x, deterministic=not train)
