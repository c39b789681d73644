"""C3D (Tran et al., 2015), MMAction2's ``C3D`` backbone, on NTHWC input.

Eight 3x3x3 convs in five groups, each group closed by a max pool (the first pools
only in space), then two fully connected layers: ``fc6`` (``out_dim`` -> 4096), ReLU,
dropout, ``fc7`` (4096 -> 4096), ReLU. The output is the ``(N, 4096)`` fc7 feature
(MMAction2's recipe classifies it with ``I3DHead(spatial_type=None)``).

``fc6`` takes the flattened pool5 map, so the input size is fixed by ``out_dim``: the
default 8192 = 512 x 1 x 4 x 4 is what a 16x112x112 clip gives. The map is flattened
channels-first, as torch flattens its NCTHW map, so converted ``fc6`` weights line up.

Module names are MMAction2 1.2.0's (``conv1a`` ... ``conv5b`` with ``.conv`` and, with a
``norm_cfg``, ``.bn``; ``fc6``, ``fc7``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import flax.linen as nn
import jax
from flax.core import FrozenDict

from actionjax.models.common.conv_module3d import ConvModule3d, activation, check_norm_cfg, max_pool3d
from actionjax.registry import BACKBONES

# (names of the convs, max-pool kernel = stride, max-pool padding) of each group
_GROUPS = (
    (('conv1a',), (1, 2, 2), 0),
    (('conv2a',), (2, 2, 2), 0),
    (('conv3a', 'conv3b'), (2, 2, 2), 0),
    (('conv4a', 'conv4b'), (2, 2, 2), 0),
    (('conv5a', 'conv5b'), (2, 2, 2), (0, 1, 1)),
)


@BACKBONES.register_module()
class C3D(nn.Module):
    """C3D backbone; arguments as MMAction2's ``C3D``.

    Input ``(N, 16, 112, 112, 3)`` (the clip size ``out_dim=8192`` implies), output
    ``(N, 4096)``. ``conv_cfg`` and ``act_cfg`` default to Conv3d and ReLU; without a
    ``norm_cfg`` (the default) the convs have biases. ``style`` is accepted and, as in
    MMAction2, has no effect. ``pretrained`` is kept for the engine's loader of
    converted checkpoints.

    ``conv_channels`` and ``fc_channels`` (class attributes, C3D's fixed widths) can be
    narrowed in a subclass, e.g. for small test models.
    """

    conv_channels: ClassVar[tuple[int, ...]] = (64, 128, 256, 256, 512, 512, 512, 512)
    fc_channels: ClassVar[int] = 4096
    # the clip (T, H, W) that the default out_dim=8192 is computed for
    clip_shape: ClassVar[tuple[int, int, int]] = (16, 112, 112)

    pretrained: str | None = None
    style: str = 'pytorch'
    conv_cfg: Mapping[str, Any] | None = None
    norm_cfg: Mapping[str, Any] | None = None
    act_cfg: Mapping[str, Any] | None = None
    out_dim: int = 8192
    dropout_ratio: float = 0.5
    init_std: float = 0.005

    def __post_init__(self) -> None:
        if self.style not in ('pytorch', 'caffe'):
            raise ValueError(f"backbone.style must be 'pytorch' or 'caffe', got {self.style!r}")
        if self.pretrained is not None and not isinstance(self.pretrained, str):
            raise TypeError(f'backbone.pretrained must be a path or None, got {self.pretrained!r}')
        check_norm_cfg(self.norm_cfg, 'backbone.norm_cfg')
        activation(self.act_cfg or FrozenDict(type='ReLU'))  # an unsupported act_cfg fails here
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        if x.ndim != 5 or x.shape[-1] != 3:
            raise ValueError(f'C3D expects (N, T, H, W, 3) clips, got shape {x.shape}')
        conv = dict(kernel_size=3, padding=1, conv_cfg=self.conv_cfg or FrozenDict(type='Conv3d'),
                    norm_cfg=self.norm_cfg, act_cfg=self.act_cfg or FrozenDict(type='ReLU'))
        widths = iter(self.conv_channels)
        for names, pool, pool_padding in _GROUPS:
            for name in names:
                x = ConvModule3d(next(widths), **conv, name=name)(x, train)
            x = max_pool3d(x, pool, pool, pool_padding)
        # flatten as torch flattens (N, C, T, H, W), so fc6's converted weights line up
        flat = x.transpose(0, 4, 1, 2, 3).reshape(x.shape[0], -1)
        if flat.shape[-1] != self.out_dim:
            raise ValueError(f'C3D: the clip gives a pool5 map {x.shape[1:]} = {flat.shape[-1]} features but '
                             f'backbone.out_dim is {self.out_dim}; C3D takes {self.clip_shape} (T, H, W) '
                             'clips for out_dim=8192, or set out_dim for your clip size')
        dense = dict(kernel_init=nn.initializers.normal(self.init_std), bias_init=nn.initializers.zeros)
        x = nn.relu(nn.Dense(self.fc_channels, **dense, name='fc6')(flat))
        x = nn.Dropout(self.dropout_ratio, deterministic=not train, name='dropout')(x)
        return nn.relu(nn.Dense(self.fc_channels, **dense, name='fc7')(x))
