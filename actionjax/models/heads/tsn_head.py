"""TSN's head: spatial average pool, average over segments, dropout, fc."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
from flax.core import FrozenDict

from actionjax.models.heads.base import BaseHead
from actionjax.models.heads.consensus import build_consensus
from actionjax.registry import HEADS


def spatial_features(x: jax.Array, spatial_type: str | None) -> jax.Array:
    """``(B, H, W, C)`` -> ``(B, C)`` by average pooling, or ``(B, C, H, W)`` kept whole.

    Without pooling the map goes channels-first so that flattening it orders the
    features as torch does (C, H, W), and a converted fc sees them in the same order.
    """
    if isinstance(x, tuple):
        raise ValueError('the head takes one feature map, got a tuple; give the backbone a single '
                         'out_indices entry')
    if spatial_type == 'avg':
        return x.mean(axis=(1, 2))
    return x.transpose(0, 3, 1, 2)


@HEADS.register_module()
class TSNHead(BaseHead):
    """Class head for TSN; arguments as MMAction2's ``TSNHead``.

    ``x``: ``(N * num_segs, H, W, in_channels)``; returns ``(N, num_classes)``.
    """

    loss_cls: Mapping[str, Any] = FrozenDict(type='CrossEntropyLoss')
    spatial_type: str | None = 'avg'
    consensus: Mapping[str, Any] = FrozenDict(type='AvgConsensus', dim=1)
    dropout_ratio: float = 0.4
    init_std: float = 0.01

    @nn.compact
    def __call__(self, x: jax.Array, num_segs: int, train: bool = False) -> jax.Array:
        x = spatial_features(x, self.spatial_type)
        if x.shape[0] % num_segs:
            raise ValueError(f'TSNHead: {x.shape[0]} feature maps are not a multiple of num_segs={num_segs}')
        x = x.reshape((-1, num_segs) + x.shape[1:])
        x = build_consensus(self.consensus)(x).squeeze(1)
        if self.dropout_ratio != 0:
            x = nn.Dropout(self.dropout_ratio, deterministic=not train, name='dropout')(x)
        x = x.reshape(x.shape[0], -1)
        return nn.Dense(self.num_classes, kernel_init=nn.initializers.normal(self.init_std),
                        bias_init=nn.initializers.zeros, name='fc_cls')(x)
