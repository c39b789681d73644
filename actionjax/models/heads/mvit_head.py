"""MViT's head: the class token (or the mean of the patch tokens) of the last stage, dropout, fc."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
from flax.core import FrozenDict

from actionjax.models.heads.base import BaseHead
from actionjax.registry import HEADS


@HEADS.register_module()
class MViTHead(BaseHead):
    """Class head for MViT; arguments as MMAction2's ``MViTHead``.

    ``x``: the backbone's tuple of stage outputs; the last one is ``(patch_tokens,
    cls_token)`` with ``with_cls_token``, else the ``(B, T, H, W, C)`` patch tokens, which
    are averaged. Returns ``(B, num_classes)``, one row per view.
    """

    loss_cls: Mapping[str, Any] = FrozenDict(type='CrossEntropyLoss')
    dropout_ratio: float = 0.5
    init_std: float = 0.02
    init_scale: float = 1.0
    with_cls_token: bool = True

    @nn.compact
    def __call__(self, x: Any, num_segs: int | None = None, train: bool = False) -> jax.Array:
        last = x[-1]
        if self.with_cls_token:
            if not isinstance(last, tuple):
                raise ValueError('MViTHead(with_cls_token=True) needs the class token: set '
                                 'backbone.output_cls_token=True or cls_head.with_cls_token=False')
            features = last[1]
        else:
            features = (last[0] if isinstance(last, tuple) else last).mean(axis=(1, 2, 3))
        if self.dropout_ratio != 0:
            features = nn.Dropout(self.dropout_ratio, deterministic=not train, name='dropout')(features)
        scale = self.init_scale
        return nn.Dense(self.num_classes,
                        kernel_init=lambda *a: nn.initializers.truncated_normal(self.init_std)(*a) * scale,
                        bias_init=nn.initializers.constant(0.02 * scale), name='fc_cls')(features)
