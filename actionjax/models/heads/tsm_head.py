"""TSM's head: fc on every frame, then average over the ``num_segments`` frames of a clip."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
from flax.core import FrozenDict

from actionjax.models.heads.base import BaseHead
from actionjax.models.heads.consensus import build_consensus
from actionjax.models.heads.tsn_head import spatial_features
from actionjax.registry import HEADS


@HEADS.register_module()
class TSMHead(BaseHead):
    """Class head for TSM; arguments as MMAction2's ``TSMHead``.

    ``x``: ``(N * K * num_segments, H, W, in_channels)`` (halved frames with
    ``temporal_pool``); returns ``(N * K, num_classes)``, one row per clip/crop K.
    ``num_segs`` is ignored, as in MMAction2: clips are cut by ``num_segments``.
    """

    num_segments: int = 8
    loss_cls: Mapping[str, Any] = FrozenDict(type='CrossEntropyLoss')
    spatial_type: str | None = 'avg'
    consensus: Mapping[str, Any] = FrozenDict(type='AvgConsensus', dim=1)
    dropout_ratio: float = 0.8
    init_std: float = 0.001
    is_shift: bool = True
    temporal_pool: bool = False

    @property
    def segments_per_clip(self) -> int:
        return self.num_segments // 2 if self.is_shift and self.temporal_pool else self.num_segments

    @nn.compact
    def __call__(self, x: jax.Array, num_segs: int | None = None, train: bool = False) -> jax.Array:
        x = spatial_features(x, self.spatial_type)
        x = x.reshape(x.shape[0], -1)
        if self.dropout_ratio != 0:
            x = nn.Dropout(self.dropout_ratio, deterministic=not train, name='dropout')(x)
        cls_score = nn.Dense(self.num_classes, kernel_init=nn.initializers.normal(self.init_std),
                             bias_init=nn.initializers.zeros, name='fc_cls')(x)
        segs = self.segments_per_clip
        if cls_score.shape[0] % segs:
            pooled = ' // 2, temporal_pool' if segs != self.num_segments else ''
            raise ValueError(f'TSMHead: {cls_score.shape[0]} frames are not a multiple of {segs} '
                             f'(cls_head.num_segments{pooled}); the number of views must be '
                             'num_segments x clips x crops')
        cls_score = cls_score.reshape(-1, segs, self.num_classes)
        return build_consensus(self.consensus)(cls_score).squeeze(1)
