"""X3D (Feichtenhofer, 2020), MMAction2's ``X3D`` backbone, on NTHWC input.

X3D expands a tiny 2D-ResNet-like base along width (``gamma_w``: channels of every
stage), bottleneck width (``gamma_b``: channels inside a block and of ``conv5``) and
depth (``gamma_d``: blocks per stage). X3D-S is ``gamma_b=2.25, gamma_d=2.2``, X3D-M
the same with larger inputs. Blocks are 1x1x1 -> depthwise 3x3x3 -> [squeeze-excite]
-> swish -> 1x1x1 with a residual connection; the stem is a spatial 1x3x3 conv
followed by a depthwise temporal 5x1x1 conv. No layer strides in time.

Module names are MMAction2 1.2.0's (``conv1_s``, ``conv1_t``, ``layer{i}.{j}.conv1``,
``.conv2``, ``.se_module.fc1``, ``.se_module.fc2``, ``.conv3``, ``.downsample``,
``conv5``), so ``backbone.layer1.0.conv2.conv.weight`` is
``params/backbone/layer1/0/conv2/conv/kernel`` with shape ``(3, 3, 3, 1, planes)``.

Training behaviour follows MMAction2's ``X3D.train()``: ``frozen_stages=k`` keeps the
stem and ``layer1..layer{k}`` in eval mode with their parameters frozen
(``frozen_prefixes()``); ``norm_eval`` runs every BatchNorm on its running statistics;
``with_cp`` rematerialises each block in the backward pass (``jax.checkpoint``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax
from flax.core import FrozenDict

from actionjax.models.common.conv_module3d import ConvModule3d, activation, check_norm_cfg, conv3d
from actionjax.registry import BACKBONES


def round_width(width: float, multiplier: float | None, min_width: int = 8, divisor: int = 8) -> int:
    """``width * multiplier`` rounded to a multiple of ``divisor`` (at least ``min_width``).

    Rounds to the nearest multiple and adds one ``divisor`` when that lost more than
    10%, as MMAction2's (and pySlowFast's) ``_round_width``.
    """
    if not multiplier:
        return int(width)
    width *= multiplier
    rounded = max(min_width, int(width + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * width:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, multiplier: float | None) -> int:
    """Blocks per stage after the depth expansion ``gamma_d`` (rounded up)."""
    return int(math.ceil(multiplier * repeats)) if multiplier else repeats


class SEModule(nn.Module):
    """Squeeze-and-excitation: channel weights from the clip's average, ``fc1``/``fc2`` 1x1x1 convs.

    The bottleneck has ``round_width(channels, reduction)`` channels (at least 8).
    """

    reduction: float

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        channels = x.shape[-1]
        weights = x.mean(axis=(1, 2, 3), keepdims=True)
        weights = nn.relu(conv3d(round_width(channels, self.reduction), 1, bias=True, name='fc1')(weights))
        weights = nn.sigmoid(conv3d(channels, 1, bias=True, name='fc2')(weights))
        return x * weights


class BlockX3D(nn.Module):
    """1x1x1 -> depthwise 3x3x3 (spatial stride) -> [SE] -> swish -> 1x1x1, plus the identity.

    ``use_swish`` is accepted as in MMAction2 1.2.0, whose block applies the swish
    whatever its value. ``zero_init_residual`` starts ``conv3``'s BatchNorm scale at
    zero, so a fresh block is the identity.
    """

    planes: int
    outplanes: int
    spatial_stride: int = 1
    downsample: bool = False
    se_ratio: float | None = None
    use_swish: bool = True
    conv_cfg: Mapping[str, Any] = FrozenDict(type='Conv3d')
    norm_cfg: Mapping[str, Any] = FrozenDict(type='BN3d')
    act_cfg: Mapping[str, Any] = FrozenDict(type='ReLU')
    zero_init_residual: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        conv = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, bias=False)
        stride = (1, self.spatial_stride, self.spatial_stride)
        out = ConvModule3d(self.planes, 1, act_cfg=self.act_cfg, **conv, name='conv1')(x, train)
        out = ConvModule3d(self.planes, 3, stride, 1, groups=self.planes, act_cfg=None, **conv,
                           name='conv2')(out, train)
        if self.se_ratio is not None:
            out = SEModule(self.se_ratio, name='se_module')(out)
        out = nn.swish(out)
        last_bn_init = nn.initializers.zeros if self.zero_init_residual else nn.initializers.ones
        out = ConvModule3d(self.outplanes, 1, act_cfg=None, norm_scale_init=last_bn_init, **conv,
                           name='conv3')(out, train)
        identity = x
        if self.downsample:
            identity = ConvModule3d(self.outplanes, 1, stride, act_cfg=None, **conv,
                                    name='downsample')(x, train)
        return activation(self.act_cfg)(out + identity)


class X3DLayer(nn.Module):
    """One stage: blocks named ``0, 1, ...``; the first takes the stride and the projection.

    ``use_se`` says, per block, whether it has a squeeze-excitation unit.
    """

    inplanes: int
    planes: int
    num_blocks: int
    spatial_stride: int
    use_se: tuple[bool, ...]
    block_args: Mapping[str, Any]
    with_cp: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        # static_argnums counts self: (self, x, train) -> train is static
        block = nn.remat(BlockX3D, static_argnums=(2,)) if self.with_cp else BlockX3D
        has_projection = self.spatial_stride != 1 or x.shape[-1] != self.inplanes
        se_ratio = self.block_args['se_ratio']
        args = {k: v for k, v in self.block_args.items() if k != 'se_ratio'}
        for i in range(self.num_blocks):
            first = i == 0
            x = block(self.planes, self.inplanes, spatial_stride=self.spatial_stride if first else 1,
                      downsample=first and has_projection, se_ratio=se_ratio if self.use_se[i] else None,
                      **args, name=str(i))(x, train)
        return x


@BACKBONES.register_module()
class X3D(nn.Module):
    """X3D backbone; arguments as MMAction2's ``X3D``.

    Input ``(N, T, H, W, in_channels)``, output ``(N, T, H / 32, W / 32, feat_dim)`` (with
    the default strides). ``se_style='half'`` puts an SE unit in blocks 0, 2, 4, ... of
    each stage, ``'all'`` in every block; ``se_ratio=None`` in none.
    ``pretrained`` is kept for the engine's loader of converted checkpoints.
    """

    base_stage_blocks: ClassVar[tuple[int, ...]] = (1, 2, 5, 3)
    base_width: ClassVar[int] = 24

    gamma_w: float = 1.0
    gamma_b: float = 1.0
    gamma_d: float = 1.0
    pretrained: str | None = None
    in_channels: int = 3
    num_stages: int = 4
    spatial_strides: Sequence[int] = (2, 2, 2, 2)
    frozen_stages: int = -1
    se_style: str = 'half'
    se_ratio: float | None = 1 / 16
    use_swish: bool = True
    conv_cfg: Mapping[str, Any] = FrozenDict(type='Conv3d')
    norm_cfg: Mapping[str, Any] = FrozenDict(type='BN3d', requires_grad=True)
    act_cfg: Mapping[str, Any] = FrozenDict(type='ReLU', inplace=True)
    norm_eval: bool = False
    with_cp: bool = False
    zero_init_residual: bool = True

    def __post_init__(self) -> None:
        self._check_args()
        super().__post_init__()

    def _check_args(self) -> None:
        if not 1 <= self.num_stages <= 4:
            raise ValueError(f'backbone.num_stages must be in 1..4, got {self.num_stages}')
        if len(self.spatial_strides) != self.num_stages:
            raise ValueError(f'backbone.spatial_strides {tuple(self.spatial_strides)} needs '
                             f'num_stages={self.num_stages} entries')
        if self.se_style not in ('all', 'half'):
            raise ValueError(f"backbone.se_style must be 'all' or 'half', got {self.se_style!r}")
        if self.se_ratio is not None and not self.se_ratio > 0:
            raise ValueError(f'backbone.se_ratio must be positive or None (no SE units), got {self.se_ratio}')
        if self.pretrained is not None and not isinstance(self.pretrained, str):
            raise TypeError(f'backbone.pretrained must be a path or None, got {self.pretrained!r}')
        if self.norm_cfg is None:
            raise NotImplementedError('backbone.norm_cfg=None is not supported by X3D; use dict(type="BN3d")')
        check_norm_cfg(self.norm_cfg, 'backbone.norm_cfg')
        activation(self.act_cfg)  # raises for an unsupported act_cfg now rather than in apply

    @property
    def base_channels(self) -> int:
        """Channels of the stem and of stage 1 (24 scaled by ``gamma_w``)."""
        return round_width(self.base_width, self.gamma_w)

    @property
    def stage_blocks(self) -> tuple[int, ...]:
        """Blocks per stage after the depth expansion ``gamma_d``."""
        return tuple(round_repeats(n, self.gamma_d) for n in self.base_stage_blocks[:self.num_stages])

    @property
    def feat_dim(self) -> int:
        """Channels of the output (``conv5``'s)."""
        return int(self.base_channels * 2 ** (self.num_stages - 1) * self.gamma_b)

    def stage_args(self) -> Iterator[dict[str, Any]]:
        """The ``X3DLayer`` arguments of each stage, in order."""
        block_args = FrozenDict(se_ratio=self.se_ratio, use_swish=self.use_swish, conv_cfg=self.conv_cfg,
                                norm_cfg=self.norm_cfg, act_cfg=self.act_cfg,
                                zero_init_residual=self.zero_init_residual)
        for i, num_blocks in enumerate(self.stage_blocks):
            inplanes = self.base_channels * 2 ** i
            use_se = tuple(self.se_style == 'all' or j % 2 == 0 for j in range(num_blocks))
            yield dict(inplanes=inplanes, planes=int(inplanes * self.gamma_b), num_blocks=num_blocks,
                       spatial_stride=self.spatial_strides[i], use_se=use_se, block_args=block_args,
                       with_cp=self.with_cp)

    def bn_train(self, stage: int, train: bool) -> bool:
        """Whether stage ``stage`` (0 = stem, i = layer i, num_stages + 1 = conv5) uses batch statistics."""
        return train and not self.norm_eval and stage > self.frozen_stages

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        if x.ndim != 5 or x.shape[-1] != self.in_channels:
            raise ValueError(f'X3D expects (N, T, H, W, C) input with C = backbone.in_channels = '
                             f'{self.in_channels}, got shape {x.shape}')
        conv = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, bias=False)
        width = self.base_channels
        stem_train = self.bn_train(0, train)
        x = ConvModule3d(width, (1, 3, 3), (1, 2, 2), (0, 1, 1), conv_cfg=self.conv_cfg, norm_cfg=None,
                         act_cfg=None, bias=False, name='conv1_s')(x, stem_train)
        x = ConvModule3d(width, (5, 1, 1), 1, (2, 0, 0), groups=width, act_cfg=self.act_cfg, **conv,
                         name='conv1_t')(x, stem_train)
        for i, args in enumerate(self.stage_args()):
            x = X3DLayer(**args, name=f'layer{i + 1}')(x, self.bn_train(i + 1, train))
        return ConvModule3d(self.feat_dim, 1, act_cfg=self.act_cfg, **conv,
                            name='conv5')(x, self.bn_train(self.num_stages + 1, train))

    # -- which parameters never change --------------------------------------------

    def norm_prefixes(self) -> list[str]:
        """Every BatchNorm of the backbone, in MMAction2's module order."""
        names = ['conv1_t.bn.']
        inplanes = self.base_channels
        for i, args in enumerate(self.stage_args()):
            for j in range(args['num_blocks']):
                prefix = f'layer{i + 1}.{j}.'
                names += [f'{prefix}conv{k}.bn.' for k in (1, 2, 3)]
                if j == 0 and (args['spatial_stride'] != 1 or inplanes != args['inplanes']):
                    names.append(f'{prefix}downsample.bn.')
            inplanes = args['inplanes']
        return names + ['conv5.bn.']

    def frozen_prefixes(self) -> tuple[str, ...]:
        """Dotted prefixes (relative to the backbone) of parameters that get no update."""
        prefixes = []
        if self.frozen_stages >= 0:
            prefixes += ['conv1_s.', 'conv1_t.']
        prefixes += [f'layer{i}.' for i in range(1, min(self.frozen_stages, self.num_stages) + 1)]
        if not self.norm_cfg.get('requires_grad', True):
            prefixes += [p for p in self.norm_prefixes() if not any(p.startswith(q) for q in prefixes)]
        return tuple(prefixes)
