"""Channel-separated networks (Tran et al., "Video Classification with Channel-Separated
Convolutional Networks"), MMAction2's ``ResNet3dCSN``.

Each bottleneck's middle 3x3x3 conv becomes a depthwise 3x3x3 conv (one group per
channel): ``bottleneck_mode='ir'`` (interaction-reduced) keeps only that,
``layer1.0.conv2.0``; ``'ip'`` (interaction-preserved) puts a 1x1x1 conv before it,
``layer1.0.conv2.0`` then ``layer1.0.conv2.1`` (MMAction2 wraps them in an
``nn.Sequential``). BatchNorm eps is 1e-3 and the time stride lives in the stages.
``bn_frozen`` with ``norm_eval`` also freezes every BatchNorm's affine parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax
from flax.core import FrozenDict

from actionjax.models.backbones.resnet3d import Bottleneck3d, ResNet3d
from actionjax.models.common.conv_module3d import ConvModule3d
from actionjax.registry import BACKBONES

BOTTLENECK_MODES = ('ip', 'ir')


class ChannelSeparatedConv(nn.Module):
    """CSN's middle conv: [1x1x1 conv + BN (``ip`` only)], then depthwise conv + BN + act.

    The convs are named ``0`` (and ``1``), as in MMAction2's ``nn.Sequential``.
    """

    planes: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    interaction_preserved: bool
    conv_cfg: Mapping[str, Any]
    norm_cfg: Mapping[str, Any]
    act_cfg: Mapping[str, Any]

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        configs = dict(bias=False, conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg)
        index = 0
        if self.interaction_preserved:
            x = ConvModule3d(self.planes, 1, act_cfg=None, **configs, name='0')(x, train)
            index = 1
        depthwise = ConvModule3d(self.planes, self.kernel_size, self.stride, self.padding, self.dilation,
                                 groups=self.planes, act_cfg=self.act_cfg, **configs, name=str(index))
        return depthwise(x, train)


class CSNBottleneck3d(Bottleneck3d):
    """MMAction2's ``CSNBottleneck3d``: a bottleneck with a channel-separated middle conv."""

    bottleneck_mode: str = 'ir'

    @classmethod
    def convs(cls, **block_args: Any) -> tuple[str, ...]:
        middle = ('conv2.0', 'conv2.1') if block_args.get('bottleneck_mode', 'ir') == 'ip' else ('conv2.0',)
        return ('conv1', *middle, 'conv3')

    def make_conv2(self, kernel: tuple[int, ...], stride: tuple[int, ...], padding: tuple[int, ...]
                   ) -> nn.Module:
        return ChannelSeparatedConv(self.planes, kernel, stride, padding, (1, self.dilation, self.dilation),
                                    self.bottleneck_mode == 'ip', self.conv_cfg, self.norm_cfg, self.act_cfg,
                                    name='conv2')


@BACKBONES.register_module()
class ResNet3dCSN(ResNet3d):
    """ip-CSN / ir-CSN backbone; arguments and defaults as MMAction2 1.2.0's ``ResNet3dCSN``."""

    arch_settings: ClassVar[dict[int, tuple[type, tuple[int, ...]]]] = {
        50: (CSNBottleneck3d, (3, 4, 6, 3)),
        101: (CSNBottleneck3d, (3, 4, 23, 3)),
        152: (CSNBottleneck3d, (3, 8, 36, 3)),
    }

    temporal_strides: Sequence[int] = (1, 2, 2, 2)
    conv1_kernel: Sequence[int] = (3, 7, 7)
    conv1_stride_t: int = 1
    pool1_stride_t: int = 1
    norm_cfg: Mapping[str, Any] = FrozenDict(type='BN3d', requires_grad=True, eps=1e-3)
    inflate_style: str = '3x3x3'
    bottleneck_mode: str = 'ir'
    bn_frozen: bool = False

    def _check_args(self) -> None:
        if self.bottleneck_mode not in BOTTLENECK_MODES:
            raise ValueError(f'backbone.bottleneck_mode must be one of {list(BOTTLENECK_MODES)}, '
                             f'got {self.bottleneck_mode!r}')
        super()._check_args()

    def block_args(self) -> dict[str, Any]:
        return dict(super().block_args(), bottleneck_mode=self.bottleneck_mode)

    def frozen_norm(self, norm_cfg: Mapping[str, Any]) -> bool:
        """``norm_eval`` + ``bn_frozen`` freezes every BatchNorm (MMAction2's ``ResNet3dCSN.train``)."""
        return (self.norm_eval and self.bn_frozen) or super().frozen_norm(norm_cfg)
