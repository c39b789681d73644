"""TimeSformer's head (also VideoMAE's): dropout and ``fc_cls`` on the backbone's feature vector."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
from flax.core import FrozenDict

from actionjax.models.heads.base import BaseHead
from actionjax.registry import HEADS


@HEADS.register_module()
class TimeSformerHead(BaseHead):
    """Class head for vector features; arguments as MMAction2's ``TimeSformerHead``.

    ``x``: ``(B, in_channels)`` (B = clips x crops of every sample); returns
    ``(B, num_classes)``, one row per view. ``num_segs`` is ignored, as in MMAction2.
    """

    loss_cls: Mapping[str, Any] = FrozenDict(type='CrossEntropyLoss')
    init_std: float = 0.02
    dropout_ratio: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array, num_segs: int | None = None, train: bool = False) -> jax.Array:
        if x.ndim != 2 or x.shape[-1] != self.in_channels:
            raise ValueError(f'TimeSformerHead takes (B, {self.in_channels}) features '
                             f'(cls_head.in_channels), got shape {x.shape}')
        if self.dropout_ratio != 0:
            x = nn.Dropout(self.dropout_ratio, deterministic=not train, name='dropout')(x)
        return nn.Dense(self.num_classes, kernel_init=nn.initializers.truncated_normal(self.init_std),
                        bias_init=nn.initializers.zeros, name='fc_cls')(x)
