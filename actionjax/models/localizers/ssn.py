"""SSN, Structured Segment Networks (Zhao et al., ICCV 2017), as MMAction2 0.24.1's ``SSN``.

A 2D backbone embeds every sampled frame; a ``spatial_type`` pool (MMAction2's fixed 7x7
window: 224x224 frames through ResNet) and dropout give one feature per frame; ``SSNHead``
turns each proposal's starting / course / ending frames into activity, completeness and
regression scores (``actionjax.models.heads.ssn_head``).

* ``__call__(imgs, scale_factors=None, train=False)``: ``imgs`` ``(N, P * S, H, W, C)`` (or
  ``(N, P, S, H, W, C)``), ``S = sum(num_segments_list)`` frames per proposal, uint8 or
  float, not normalised; ``scale_factors`` ``(N, P, 2)`` (default: ones) -> the head's
  three outputs;
* ``loss(batch)``: ``imgs``, ``proposal_scale_factor``, ``proposal_type``,
  ``proposal_labels``, ``reg_targets`` (MMAction2's training keys) -> ``SSNLoss``'s terms;
* ``predict(batch)``: ``imgs`` ``(N, F, H, W, C)``, the frames of a video's test ticks ->
  ``{'test_scores': (N, F, D)}``, every tick scored for every STPP part, pooled per
  proposal on the host by ``stpp_test_pool``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.core import FrozenDict

from actionjax.models.builder import build_loss, build_parts
from actionjax.models.data_preprocessor import normalize_input
from actionjax.models.localizers.base import BaseLocalizer
from actionjax.registry import LOCALIZERS

POOL_WINDOW = 7  # MMAction2's nn.AvgPool2d((7, 7)) / nn.MaxPool2d((7, 7)), stride 1, no padding


@LOCALIZERS.register_module()
class SSN(BaseLocalizer):
    """Arguments as MMAction2 0.24.1's ``SSN``; ``loss_bbox`` replaces SSNLoss's regression term."""

    backbone: Any
    cls_head: Any
    in_channels: int = 3
    spatial_type: str | None = 'avg'
    dropout_ratio: float = 0.5
    loss_cls: Mapping[str, Any] = FrozenDict(type='SSNLoss')
    loss_bbox: Mapping[str, Any] | None = None
    train_cfg: Any = None
    test_cfg: Any = None
    data_preprocessor: Any = None

    def __post_init__(self) -> None:
        build_parts(self)
        if self.spatial_type not in ('avg', 'max', None):
            raise ValueError(f"model.spatial_type must be 'avg', 'max' or None, got {self.spatial_type!r}")
        super().__post_init__()

    def frame_features(self, imgs: jax.Array, train: bool = False) -> jax.Array:
        """``(N, ..., H, W, C)`` frames -> ``(frames, C')``: backbone, 7x7 pool, dropout."""
        x = normalize_input(imgs, self.data_preprocessor, jnp.float32)
        x = x.reshape((-1,) + x.shape[-3:])
        x = self.backbone(x, train=train)
        window = (POOL_WINDOW, POOL_WINDOW)
        if self.spatial_type == 'avg':
            x = nn.avg_pool(x, window, strides=(1, 1), padding='VALID')
        elif self.spatial_type == 'max':
            x = nn.max_pool(x, window, strides=(1, 1), padding='VALID')
        if x.shape[1:3] != (1, 1):
            raise ValueError(f'SSN pools {POOL_WINDOW}x{POOL_WINDOW} backbone maps to one feature per frame; '
                             f'the backbone gives {x.shape[1]}x{x.shape[2]} (use 224x224 frames with ResNet)')
        x = x.reshape(x.shape[0], -1)
        return self.dropout(x, deterministic=not train) if self.dropout_ratio != 0 else x

    def setup(self) -> None:
        self.dropout = nn.Dropout(self.dropout_ratio)

    def __call__(self, imgs: jax.Array, scale_factors: jax.Array | None = None, train: bool = False
                 ) -> tuple[jax.Array, jax.Array, jax.Array | None]:
        x = self.frame_features(imgs, train)
        segments = sum(self.cls_head.consensus.get('num_segments_list', (2, 5, 2)))
        if scale_factors is None:  # every starting / ending stage wholly inside the video
            scale_factors = jnp.ones((x.shape[0] // segments, 2), jnp.float32)
        return self.cls_head(x, jnp.asarray(scale_factors, jnp.float32).reshape(-1, 2), train=train)

    def loss(self, batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        if not self.train_cfg:
            raise ValueError('SSN needs model.train_cfg (ssn.sampler, ssn.loss_weight) to compute its loss')
        activity, completeness, bbox = self(batch['imgs'], batch['proposal_scale_factor'], train=True)
        loss_bbox = None if self.loss_bbox is None else build_loss(self.loss_bbox, 'model.loss_bbox')
        return build_loss(self.loss_cls, 'model.loss_cls')(
            activity, completeness, bbox, batch['proposal_type'], batch['proposal_labels'],
            batch['reg_targets'], self.train_cfg, loss_bbox=loss_bbox)

    def predict(self, batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        imgs = batch['imgs']
        x = self.frame_features(imgs)
        scores = self.cls_head.test_scores(x)
        return {'test_scores': scores.reshape(imgs.shape[0], -1, scores.shape[-1])}

    def example_input(self, batch_size: int = 1) -> np.ndarray:
        """One proposal's frames, sized so that the ResNet backbone's map is the 7x7 SSN pools."""
        segments = sum(self.cls_head.consensus.get('num_segments_list', (2, 5, 2)))
        size = POOL_WINDOW * 4 * int(np.prod(getattr(self.backbone, 'strides', (1, 2, 2, 2))))
        return np.zeros((batch_size, segments, size, size, self.in_channels), np.uint8)
