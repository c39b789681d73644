"""I3D's head: average pool over time and space, dropout, fc (MMAction2's ``I3DHead``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
from flax.core import FrozenDict

from actionjax.models.heads.base import BaseHead
from actionjax.registry import HEADS


def spatiotemporal_features(x: jax.Array, spatial_type: str | None, owner: str) -> jax.Array:
    """``(B, T, H, W, C)`` -> ``(B, C)`` by average pooling, or ``(B, C * T * H * W)`` unpooled.

    Without pooling the map goes channels-first before flattening, so the features
    are ordered as torch's ``x.view(N, -1)`` orders an NCTHW map and a converted fc
    sees them in the same order.
    """
    if isinstance(x, tuple):
        raise ValueError(f'{owner} takes one feature map, got a tuple; give the backbone a single '
                         'out_indices entry (or use SlowFastHead for a SlowFast backbone)')
    if x.ndim == 2 and spatial_type is None:  # already flat: C3D's fc7 feature (C3D recipe)
        return x
    if x.ndim != 5:
        raise ValueError(f'{owner} takes (N, T, H, W, C) features, got shape {x.shape}')
    if spatial_type == 'avg':
        return x.mean(axis=(1, 2, 3))
    return x.transpose(0, 4, 1, 2, 3).reshape(x.shape[0], -1)


class ClassifierHead3D(BaseHead):
    """Pool -> dropout -> ``fc_cls``: the part I3DHead and SlowFastHead share."""

    loss_cls: Mapping[str, Any] = FrozenDict(type='CrossEntropyLoss')
    spatial_type: str | None = 'avg'
    dropout_ratio: float = 0.5
    init_std: float = 0.01

    def classify(self, x: jax.Array, train: bool) -> jax.Array:
        """``(B, features)`` -> ``(B, num_classes)``; dropout only in training."""
        if self.dropout_ratio != 0:
            x = nn.Dropout(self.dropout_ratio, deterministic=not train, name='dropout')(x)
        return nn.Dense(self.num_classes, kernel_init=nn.initializers.normal(self.init_std),
                        bias_init=nn.initializers.zeros, name='fc_cls')(x)


@HEADS.register_module()
class I3DHead(ClassifierHead3D):
    """Class head for I3D-style 3D backbones; arguments as MMAction2's ``I3DHead``.

    ``x``: ``(B, T, H, W, in_channels)`` (B = clips x crops of every sample); returns
    ``(B, num_classes)``, one row per view. ``num_segs`` is ignored, as in MMAction2.
    """

    @nn.compact
    def __call__(self, x: jax.Array, num_segs: int | None = None, train: bool = False) -> jax.Array:
        x = spatiotemporal_features(x, self.spatial_type, 'I3DHead')
        if self.spatial_type == 'avg' and x.shape[-1] != self.in_channels:
            raise ValueError(f'I3DHead: the backbone gives {x.shape[-1]} channels, '
                             f'cls_head.in_channels is {self.in_channels}')
        return self.classify(x, train)
