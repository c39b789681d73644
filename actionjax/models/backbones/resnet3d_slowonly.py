"""SlowOnly, MMAction2's ``ResNet3dSlowOnly``: SlowFast's slow pathway on its own.

A ResNet3d with no time kernel in the stem and the first two stages (``inflate``
``(0, 0, 1, 1)``), no temporal pooling (``with_pool2=False``) and no laterals; the
sampling (e.g. 4x16x1 or 8x8x1 frames) gives it its frame rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from actionjax.models.backbones.resnet3d_slowfast import ResNet3dPathway
from actionjax.registry import BACKBONES


@BACKBONES.register_module()
class ResNet3dSlowOnly(ResNet3dPathway):
    """SlowOnly backbone; arguments and defaults as MMAction2 1.2.0's ``ResNet3dSlowOnly``."""

    conv1_kernel: Sequence[int] = (1, 7, 7)
    conv1_stride_t: int = 1
    pool1_stride_t: int = 1
    inflate: Sequence[Any] = (0, 0, 1, 1)
    with_pool2: bool = False

    def _check_args(self) -> None:
        if self.lateral:
            raise ValueError('ResNet3dSlowOnly has no lateral connections; set backbone.lateral=False '
                             '(or use ResNet3dSlowFast)')
        super()._check_args()
