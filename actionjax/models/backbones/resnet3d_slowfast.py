"""SlowFast (Feichtenhofer et al.), MMAction2's ``ResNet3dSlowFast`` and its ``ResNet3dPathway``.

Two ResNet3d pathways see the same clip at two frame rates: the slow one takes every
``resample_rate``-th frame with full width, the fast one ``speed_ratio`` times more
frames with ``1 / channel_ratio`` of the width. After the stem and after each stage
but the last, a lateral connection (a (fusion_kernel, 1, 1) conv with temporal stride
``speed_ratio``) maps the fast features onto the slow frame rate and concatenates them
to the slow features' channels.

Names are MMAction2's: ``slow_path.conv1.conv.weight``, ``slow_path.conv1_lateral.conv.weight``,
``slow_path.layer1_lateral.conv.weight``, ``fast_path.layer2.0.conv1.conv.weight``, ...
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.core import FrozenDict

from actionjax.models.backbones.resnet3d import ResNet3d
from actionjax.models.common.conv_module3d import ConvModule3d
from actionjax.registry import BACKBONES


def resample_time(x: jax.Array, rate: int) -> jax.Array:
    """torch's ``interpolate(x, mode='nearest', scale_factor=(1 / rate, 1, 1))`` on NTHWC clips.

    torch sizes the output ``floor(T / rate)`` (in double) and reads frame
    ``floor(i * (1 / (1 / rate)))`` (in float32), which for integer rates is every
    ``rate``-th frame from the first.
    """
    if rate == 1:
        return x
    t = x.shape[1]
    out = int(np.floor(t * (1.0 / rate)))
    if out < 1:
        raise ValueError(f'a clip of {t} frames has no frame left at a temporal resample rate of {rate}; '
                         'feed at least resample_rate frames')
    scale = np.float32(1.0 / (1.0 / rate))
    index = np.minimum(np.floor(np.arange(out, dtype=np.float32) * scale).astype(np.int64), t - 1)
    return x[:, index]


class ResNet3dPathway(ResNet3d):
    """One SlowFast pathway: a ResNet3d whose stages may take lateral inputs from the other one.

    Arguments as MMAction2's ``ResNet3dPathway``; ``lateral_inv`` (transposed-conv
    laterals) is not supported.
    """

    lateral: bool = False
    lateral_inv: bool = False
    lateral_norm: bool = False
    speed_ratio: int = 8
    channel_ratio: int = 8
    fusion_kernel: int = 5
    lateral_infl: int = 2
    lateral_activate: Sequence[int] = (1, 1, 1, 1)

    def _check_args(self) -> None:
        super()._check_args()
        if self.lateral_inv:
            raise NotImplementedError('backbone lateral_inv=True (transposed-conv laterals) is not supported')
        if self.lateral and any(flag != 1 for flag in self.lateral_activate[:self.num_stages]):
            raise NotImplementedError(f'lateral_activate={tuple(self.lateral_activate)}: only all-on '
                                      'laterals are supported (ResNet3dSlowFast pairs them with the stages '
                                      'by position)')

    def lateral_inplanes(self) -> tuple[int, ...]:
        """Channels the laterals add to each stage's input (MMAction2's ``_calculate_lateral_inplanes``)."""
        expansion = 1 if self.depth < 50 else 4
        out = []
        for i in range(self.num_stages):
            if expansion % 2 == 0:
                planes = self.base_channels * 2 ** i * (expansion // 2) ** (i > 0)
            else:
                planes = self.base_channels * 2 ** i // 2 ** (i > 0)
            active = self.lateral and self.lateral_activate[i]
            out.append(planes * self.lateral_infl // self.channel_ratio if active else 0)
        return tuple(out)

    def lateral_conv(self, name: str) -> ConvModule3d:
        """Fusion conv ``name``, applied to the other pathway's features."""
        return ConvModule3d(
            self.lateral_width(name), (self.fusion_kernel, 1, 1), (self.speed_ratio, 1, 1),
            ((self.fusion_kernel - 1) // 2, 0, 0), bias=False, conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg if self.lateral_norm else None,
            act_cfg=self.act_cfg if self.lateral_norm else None, name=name)

    def lateral_width(self, name: str) -> int:
        """Output channels of lateral ``name`` (``conv1_lateral`` or ``layer{i}_lateral``)."""
        if name == 'conv1_lateral':
            inplanes = self.base_channels
        else:
            stage = int(name[len('layer'):-len('_lateral')]) - 1
            inplanes = self.base_channels * 2 ** stage * self.block.expansion
        return inplanes * self.lateral_infl // self.channel_ratio

    def lateral_names(self) -> list[str]:
        """``conv1_lateral`` and ``layer{i}_lateral`` for every stage but the last."""
        if not self.lateral:
            return []
        return ['conv1_lateral'] + [f'layer{i + 1}_lateral' for i in range(len(self.blocks_per_stage) - 1)]

    def setup_extra(self) -> None:
        for name in self.lateral_names():
            setattr(self, name, self.lateral_conv(name))

    def fuse(self, name: str, x: jax.Array, other: jax.Array, train: bool = False) -> jax.Array:
        """``x`` with lateral ``name`` of the other pathway's ``other`` appended to its channels."""
        if name == 'conv1_lateral':
            stage = 0
            bn_train = train and not self.norm_eval  # MMAction2 never freezes conv1_lateral
        else:
            stage = int(name[len('layer'):-len('_lateral')])
            bn_train = self.bn_train(stage, train)
        return jnp.concatenate([x, getattr(self, name)(other, bn_train)], axis=-1)

    def frozen_extra(self) -> list[str]:
        """The laterals of frozen stages (not the last stage's, which has none)."""
        if not self.lateral:
            return []
        last = min(self.frozen_stages, self.num_stages)
        return [f'layer{i}_lateral.' for i in range(1, last + 1) if i != len(self.blocks_per_stage)]


PATHWAYS = {'resnet3d': ResNet3dPathway}


def build_pathway(cfg: Mapping[str, Any], key: str, **overrides: Any) -> ResNet3dPathway:
    """A pathway from its config dict (``type='resnet3d'``), unbound."""
    cfg = dict(cfg)
    kind = cfg.pop('type', None)
    if kind not in PATHWAYS:
        raise KeyError(f'backbone.{key}.type must be one of {list(PATHWAYS)}, got {kind!r}')
    return PATHWAYS[kind](**{**cfg, **overrides}, parent=None)


@BACKBONES.register_module()
class ResNet3dSlowFast(nn.Module):
    """SlowFast backbone; arguments and defaults as MMAction2 1.2.0's ``ResNet3dSlowFast``.

    Input ``(N, T, H, W, C)``; returns ``(slow, fast)`` NTHWC feature maps of the last stage.
    """

    pretrained: str | None = None
    resample_rate: int = 8
    speed_ratio: int = 8
    channel_ratio: int = 8
    slow_pathway: Mapping[str, Any] = FrozenDict(
        type='resnet3d', depth=50, pretrained=None, lateral=True, conv1_kernel=(1, 7, 7),
        conv1_stride_t=1, pool1_stride_t=1, inflate=(0, 0, 1, 1))
    fast_pathway: Mapping[str, Any] = FrozenDict(
        type='resnet3d', depth=50, pretrained=None, lateral=False, base_channels=8, conv1_kernel=(5, 7, 7),
        conv1_stride_t=1, pool1_stride_t=1)
    init_cfg: Any = None

    def __post_init__(self) -> None:
        if self.resample_rate % self.speed_ratio:
            raise ValueError(f'backbone.resample_rate={self.resample_rate} must be a multiple of '
                             f'backbone.speed_ratio={self.speed_ratio}')
        self.pathways()  # validates both pathway configs now
        super().__post_init__()

    def pathways(self) -> tuple[ResNet3dPathway, ResNet3dPathway]:
        """The (slow, fast) pathways, unbound; a lateral slow pathway gets the ratios of the backbone."""
        slow_overrides = {}
        if self.slow_pathway.get('lateral', False):
            slow_overrides = dict(speed_ratio=self.speed_ratio, channel_ratio=self.channel_ratio)
        return (build_pathway(self.slow_pathway, 'slow_pathway', **slow_overrides),
                build_pathway(self.fast_pathway, 'fast_pathway'))

    def setup(self) -> None:
        slow, fast = self.pathways()
        self.slow_path = slow.clone(parent=self, name='slow_path')
        self.fast_path = fast.clone(parent=self, name='fast_path')

    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        slow, fast = self.slow_path, self.fast_path
        x_slow = slow.stem(resample_time(x, self.resample_rate), train, pool=True)
        x_fast = fast.stem(resample_time(x, self.resample_rate // self.speed_ratio), train, pool=True)
        if slow.lateral:
            x_slow = slow.fuse('conv1_lateral', x_slow, x_fast, train)
        num_stages = len(slow.blocks_per_stage)
        for i in range(num_stages):
            x_slow = slow.stage(i, x_slow, train)
            x_fast = fast.stage(i, x_fast, train)
            if i != num_stages - 1 and slow.lateral:
                x_slow = slow.fuse(f'layer{i + 1}_lateral', x_slow, x_fast, train)
        return x_slow, x_fast

    def frozen_prefixes(self) -> tuple[str, ...]:
        """Each pathway's frozen stages and norms, under ``slow_path.`` / ``fast_path.``."""
        slow, fast = self.pathways()
        return (tuple(f'slow_path.{p}' for p in slow.frozen_prefixes())
                + tuple(f'fast_path.{p}' for p in fast.frozen_prefixes()))
