"""X3D's head: pool over time and space, then two fully connected layers (MMAction2's ``X3DHead``).

``fc1`` widens the pooled features to 2048 (with a bias only if ``fc1_bias``), ReLU,
dropout, then ``fc2`` gives the class scores. Unlike I3D's head the dropout sits
between the two layers, after the ReLU, as in MMAction2.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import flax.linen as nn
import jax
from flax.core import FrozenDict

from actionjax.models.heads.base import BaseHead
from actionjax.registry import HEADS

_POOLS = {'avg': lambda x: x.mean(axis=(1, 2, 3)), 'max': lambda x: x.max(axis=(1, 2, 3))}


@HEADS.register_module()
class X3DHead(BaseHead):
    """Class head for X3D; arguments as MMAction2's ``X3DHead``.

    ``x``: ``(B, T, H, W, in_channels)`` (B = clips x crops of every sample); returns
    ``(B, num_classes)``, one row per view. ``num_segs`` is ignored, as in MMAction2.
    ``spatial_type`` is 'avg' or 'max' (pooling over T, H and W).
    """

    mid_channels: ClassVar[int] = 2048

    loss_cls: Mapping[str, Any] = FrozenDict(type='CrossEntropyLoss')
    spatial_type: str = 'avg'
    dropout_ratio: float = 0.5
    init_std: float = 0.01
    fc1_bias: bool = False

    def __post_init__(self) -> None:
        if self.spatial_type not in _POOLS:
            raise ValueError(f"cls_head.spatial_type must be 'avg' or 'max' for X3DHead, "
                             f'got {self.spatial_type!r}')
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, num_segs: int | None = None, train: bool = False) -> jax.Array:
        if isinstance(x, tuple) or x.ndim != 5:
            raise ValueError(f'X3DHead takes one (N, T, H, W, C) feature map, got '
                             f'{type(x).__name__ if isinstance(x, tuple) else x.shape}')
        if x.shape[-1] != self.in_channels:
            raise ValueError(f'X3DHead: the backbone gives {x.shape[-1]} channels, '
                             f'cls_head.in_channels is {self.in_channels}')
        init = dict(kernel_init=nn.initializers.normal(self.init_std), bias_init=nn.initializers.zeros)
        x = _POOLS[self.spatial_type](x)
        x = nn.relu(nn.Dense(self.mid_channels, use_bias=self.fc1_bias, **init, name='fc1')(x))
        if self.dropout_ratio != 0:
            x = nn.Dropout(self.dropout_ratio, deterministic=not train, name='dropout')(x)
        return nn.Dense(self.num_classes, **init, name='fc2')(x)
