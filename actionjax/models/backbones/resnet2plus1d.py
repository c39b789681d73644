"""R(2+1)D (Tran et al., "A Closer Look at Spatiotemporal Convolutions"), MMAction2's ``ResNet2Plus1d``.

A ResNet3d whose every conv is a ``Conv2plus1d``: a (1, k, k) spatial conv, BatchNorm and
ReLU, then a (k_t, 1, 1) temporal conv, with as many parameters as the full 3D conv
(``conv1.conv.conv_s``, ``conv1.conv.bn_s``, ``conv1.conv.conv_t``, then ``conv1.bn``).
As in MMAction2, the stem's max-pool always runs, there is no ``pool2``, and the
output is the last stage's map whatever ``out_indices`` says.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
from flax.core import FrozenDict

from actionjax.models.backbones.resnet3d import ResNet3d
from actionjax.registry import BACKBONES


@BACKBONES.register_module()
class ResNet2Plus1d(ResNet3d):
    """R(2+1)D backbone; arguments as MMAction2's ``ResNet3d`` with ``conv_cfg=dict(type='Conv2plus1d')``."""

    conv_cfg: Mapping[str, Any] = FrozenDict(type='Conv2plus1d')

    def _check_args(self) -> None:
        if self.pretrained2d:
            raise ValueError('ResNet2Plus1d cannot inflate a 2D checkpoint; set backbone.pretrained2d=False')
        if (self.conv_cfg or {}).get('type') != 'Conv2plus1d':
            raise ValueError(f"ResNet2Plus1d needs backbone.conv_cfg=dict(type='Conv2plus1d'), got "
                             f'{self.conv_cfg}')
        super()._check_args()

    def conv_types(self) -> tuple[str, ...]:
        return ('Conv2plus1d',)

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = self.stem(x, train, pool=True)
        for i in range(len(self.blocks_per_stage)):
            x = self.stage(i, x, train)
        return x
