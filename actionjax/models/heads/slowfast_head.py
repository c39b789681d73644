"""SlowFast's head: average pool each pathway, concatenate (fast first), dropout, fc."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from actionjax.models.heads.i3d_head import ClassifierHead3D
from actionjax.registry import HEADS


@HEADS.register_module()
class SlowFastHead(ClassifierHead3D):
    """Class head for SlowFast; arguments and defaults as MMAction2's ``SlowFastHead``.

    ``x``: ``(slow, fast)`` NTHWC maps of ``(B, ...)`` views; returns ``(B, num_classes)``.
    ``in_channels`` is the sum of both pathways' channels.
    """

    dropout_ratio: float = 0.8

    def __post_init__(self) -> None:
        if self.spatial_type != 'avg':
            raise ValueError(f"SlowFastHead needs cls_head.spatial_type='avg', got {self.spatial_type!r}")
        super().__post_init__()

    @nn.compact
    def __call__(self, x: tuple[jax.Array, jax.Array], num_segs: int | None = None, train: bool = False
                 ) -> jax.Array:
        if not isinstance(x, tuple) or len(x) != 2:
            raise ValueError('SlowFastHead takes the (slow, fast) features of a ResNet3dSlowFast backbone')
        x_slow, x_fast = (feats.mean(axis=(1, 2, 3)) for feats in x)
        x = jnp.concatenate([x_fast, x_slow], axis=-1)
        if x.shape[-1] != self.in_channels:
            raise ValueError(f'SlowFastHead: the pathways give {x_fast.shape[-1]} + {x_slow.shape[-1]} '
                             f'channels, cls_head.in_channels is {self.in_channels}')
        return self.classify(x, train)
