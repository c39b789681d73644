"""ResNet3d (I3D), MMAction2's ``ResNet3d`` backbone, on NTHWC clips.

A 2D ResNet with 3D kernels: each block's convs are "inflated" in time or not
(``inflate``, per stage or per block), with ``inflate_style`` saying where the time
kernel goes in a bottleneck ('3x1x1': a (3, 1, 1) first conv; '3x3x3': a (3, 3, 3)
middle conv). Module names are MMAction2 1.2.0's, so a variable path is the
state_dict key: ``conv1.conv``/``conv1.bn`` (stem), ``layer{i}.{j}.conv{k}.conv``/``.bn``,
``layer{i}.{j}.downsample.conv``/``.bn`` and ``layer{i}.{j}.non_local_block.*``.

Training behaviour follows ``ResNet3d.train()``: ``frozen_stages=k`` keeps the stem and
``layer1..layer{k}`` in eval mode (running statistics) with their parameters listed by
``frozen_prefixes()``; ``norm_eval`` puts every BatchNorm in eval mode; a ``norm_cfg``
with ``requires_grad=False`` freezes the norms' affine parameters. ``with_cp``
rematerialises each block in the backward pass (``flax.linen.remat``, i.e.
``jax.checkpoint``): less memory, the same numbers.

``pretrained`` (with ``pretrained2d=True``) names a 2D ResNet checkpoint whose kernels
are inflated into this network when the training script loads it (see
``actionjax.models.pretrained.load_pretrained_backbone``): a 2D kernel is repeated over the
time axis and divided by its length, BatchNorm is copied, as MMAction2 does.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax
from flax.core import FrozenDict

from actionjax.models.backbones.resnet import check_stages
from actionjax.models.common.conv_module3d import (
    ConvModule3d,
    activation,
    check_norm_cfg,
    max_pool3d,
    triple,
)
from actionjax.models.common.non_local import NonLocal3d
from actionjax.registry import BACKBONES

CONV3D = FrozenDict(type='Conv3d')
BN3D = FrozenDict(type='BN3d', requires_grad=True)
RELU = FrozenDict(type='ReLU', inplace=True)
INFLATE_STYLES = ('3x1x1', '3x3x3')


def zeros_if(flag: bool) -> Any:
    """BN scale init: zeros for a residual branch's last norm under ``zero_init_residual``."""
    return nn.initializers.zeros if flag else nn.initializers.ones


class Block3d(nn.Module):
    """What the residual blocks share: their arguments (MMAction2's) and the residual sum."""

    expansion: ClassVar[int] = 1

    planes: int
    spatial_stride: int = 1
    temporal_stride: int = 1
    dilation: int = 1
    downsample: bool = False
    style: str = 'pytorch'
    inflate: bool = True
    inflate_style: str = '3x1x1'
    non_local: bool = False
    non_local_cfg: Mapping[str, Any] = FrozenDict()
    conv_cfg: Mapping[str, Any] = CONV3D
    norm_cfg: Mapping[str, Any] = BN3D
    act_cfg: Mapping[str, Any] = RELU
    zero_init_residual: bool = False

    def conv(self, features: int, kernel: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
             act: bool = True, last: bool = False, groups: int = 1, name: str | None = None) -> ConvModule3d:
        return ConvModule3d(features, kernel, stride, padding, dilation, groups, bias=False,
                            conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                            act_cfg=self.act_cfg if act else None,
                            norm_scale_init=zeros_if(last and self.zero_init_residual), name=name)

    def residual(self, x: jax.Array, out: jax.Array, train: bool) -> jax.Array:
        """``act(out + identity)``, then the non-local block if this block has one."""
        identity = x
        if self.downsample:
            stride = (self.temporal_stride, self.spatial_stride, self.spatial_stride)
            project = self.conv(self.planes * self.expansion, 1, stride, act=False, name='downsample')
            identity = project(x, train)
        out = activation(self.act_cfg)(out + identity)
        if self.non_local:
            out = NonLocal3d(**self.non_local_cfg, name='non_local_block')(out, train)
        return out

    @classmethod
    def norm_names(cls, **block_args: Any) -> list[str]:
        """BatchNorms built from the backbone's ``norm_cfg``, relative to the block."""
        names = [f'{conv}.bn' for conv in cls.convs(**block_args)]
        return names + (['downsample.bn'] if block_args.get('downsample') else [])

    @classmethod
    def convs(cls, **block_args: Any) -> tuple[str, ...]:
        raise NotImplementedError


class BasicBlock3d(Block3d):
    """Two 3x3(x3) convs with a residual connection (ResNet3d-18/34); MMAction2's ``BasicBlock3d``."""

    expansion: ClassVar[int] = 1

    @classmethod
    def convs(cls, **block_args: Any) -> tuple[str, ...]:
        return ('conv1', 'conv2')

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        t, d = (3, 1) if self.inflate else (1, 0)
        stride = (self.temporal_stride, self.spatial_stride, self.spatial_stride)
        out = self.conv(self.planes, (t, 3, 3), stride, (d, self.dilation, self.dilation),
                        (1, self.dilation, self.dilation), name='conv1')(x, train)
        out = self.conv(self.planes * self.expansion, (t, 3, 3), 1, (d, 1, 1), act=False, last=True,
                        name='conv2')(out, train)
        return self.residual(x, out, train)


class Bottleneck3d(Block3d):
    """1x1x1 -> 3x3(x3) -> 1x1x1 (x4) with a residual connection; MMAction2's ``Bottleneck3d``.

    ``style='pytorch'`` puts the strides on the middle conv, ``'caffe'`` on the first.
    """

    expansion: ClassVar[int] = 4

    @classmethod
    def convs(cls, **block_args: Any) -> tuple[str, ...]:
        return ('conv1', 'conv2', 'conv3')

    def kernels(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """(conv1 kernel, conv1 padding, conv2 kernel, conv2 padding) for the inflation settings."""
        d = self.dilation
        if not self.inflate:
            return (1, 1, 1), (0, 0, 0), (1, 3, 3), (0, d, d)
        if self.inflate_style == '3x1x1':
            return (3, 1, 1), (1, 0, 0), (1, 3, 3), (0, d, d)
        return (1, 1, 1), (0, 0, 0), (3, 3, 3), (1, d, d)

    def strides(self) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        stride = (self.temporal_stride, self.spatial_stride, self.spatial_stride)
        return ((1, 1, 1), stride) if self.style == 'pytorch' else (stride, (1, 1, 1))

    def make_conv2(self, kernel: tuple[int, ...], stride: tuple[int, ...], padding: tuple[int, ...]
                   ) -> nn.Module:
        """The middle conv; channel-separated networks replace it."""
        dilation = (1, self.dilation, self.dilation)
        return self.conv(self.planes, kernel, stride, padding, dilation, name='conv2')

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        kernel1, padding1, kernel2, padding2 = self.kernels()
        stride1, stride2 = self.strides()
        out = self.conv(self.planes, kernel1, stride1, padding1, name='conv1')(x, train)
        out = self.make_conv2(kernel2, stride2, padding2)(out, train)
        out = self.conv(self.planes * self.expansion, 1, act=False, last=True, name='conv3')(out, train)
        return self.residual(x, out, train)


def per_block(value: int | Sequence[int], num_blocks: int, key: str) -> tuple[int, ...]:
    """A stage's ``inflate`` / ``non_local`` setting as one flag per block."""
    flags = (value,) * num_blocks if isinstance(value, int) else tuple(value)
    if len(flags) != num_blocks:
        raise ValueError(f'backbone.{key}: a stage of {num_blocks} blocks got {len(flags)} flags {flags}')
    return flags


def has_downsample(block: type[Block3d], inplanes: int, planes: int, spatial_stride: int) -> bool:
    """MMAction2's rule: a projection when the spatial stride or the width changes (not for time)."""
    return spatial_stride != 1 or inplanes != planes * block.expansion


class ResLayer3d(nn.Module):
    """One stage: blocks named ``0, 1, ...``; the first takes the strides and the projection."""

    block: type[Block3d]
    inplanes: int
    planes: int
    num_blocks: int
    spatial_stride: int = 1
    temporal_stride: int = 1
    dilation: int = 1
    inflate: Sequence[int] = ()
    non_local: Sequence[int] = ()
    with_cp: bool = False
    block_args: Mapping[str, Any] = FrozenDict()

    def blocks(self) -> Iterator[dict[str, Any]]:
        """Each block's arguments, in order."""
        project = has_downsample(self.block, self.inplanes, self.planes, self.spatial_stride)
        for i in range(self.num_blocks):
            first = i == 0
            yield dict(
                planes=self.planes, spatial_stride=self.spatial_stride if first else 1,
                temporal_stride=self.temporal_stride if first else 1, dilation=self.dilation,
                downsample=first and project, inflate=self.inflate[i] == 1, non_local=self.non_local[i] == 1,
                **self.block_args)

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        block = nn.remat(self.block, static_argnums=(2,)) if self.with_cp else self.block
        for i, args in enumerate(self.blocks()):
            x = block(**args, name=str(i))(x, train)
        return x


@BACKBONES.register_module()
class ResNet3d(nn.Module):
    """ResNet 3D backbone; arguments and defaults as MMAction2 1.2.0's ``ResNet3d``.

    Input ``(N, T, H, W, C)``; output the NTHWC map of each stage in ``out_indices`` (one
    array, or a tuple for several). Only ``act_cfg=ReLU``, BatchNorm ``norm_cfg`` and
    ``conv_cfg`` Conv3d (or Conv2plus1d, for ``ResNet2Plus1d``) are supported.
    """

    arch_settings: ClassVar[dict[int, tuple[type[Block3d], tuple[int, ...]]]] = {
        18: (BasicBlock3d, (2, 2, 2, 2)),
        34: (BasicBlock3d, (3, 4, 6, 3)),
        50: (Bottleneck3d, (3, 4, 6, 3)),
        101: (Bottleneck3d, (3, 4, 23, 3)),
        152: (Bottleneck3d, (3, 8, 36, 3)),
    }

    depth: int = 50
    pretrained: str | None = None
    stage_blocks: Sequence[int] | None = None
    pretrained2d: bool = True
    in_channels: int = 3
    num_stages: int = 4
    base_channels: int = 64
    out_indices: Sequence[int] = (3,)
    spatial_strides: Sequence[int] = (1, 2, 2, 2)
    temporal_strides: Sequence[int] = (1, 1, 1, 1)
    dilations: Sequence[int] = (1, 1, 1, 1)
    conv1_kernel: Sequence[int] = (3, 7, 7)
    conv1_stride_s: int = 2
    conv1_stride_t: int = 1
    pool1_stride_s: int = 2
    pool1_stride_t: int = 1
    with_pool1: bool = True
    with_pool2: bool = True
    style: str = 'pytorch'
    frozen_stages: int = -1
    inflate: Sequence[Any] = (1, 1, 1, 1)
    inflate_style: str = '3x1x1'
    conv_cfg: Mapping[str, Any] = CONV3D
    norm_cfg: Mapping[str, Any] = BN3D
    act_cfg: Mapping[str, Any] = RELU
    norm_eval: bool = False
    with_cp: bool = False
    non_local: Sequence[Any] = (0, 0, 0, 0)
    non_local_cfg: Mapping[str, Any] = FrozenDict()
    zero_init_residual: bool = True
    init_cfg: Any = None

    def __post_init__(self) -> None:
        self._check_args()
        super().__post_init__()

    # -- configuration ------------------------------------------------------------

    def _check_args(self) -> None:
        check_stages(self, type(self).__name__)
        for key in ('spatial_strides', 'temporal_strides', 'dilations'):
            if len(getattr(self, key)) != self.num_stages:
                raise ValueError(f'backbone.{key} {tuple(getattr(self, key))} needs num_stages='
                                 f'{self.num_stages} entries')
        if self.stage_blocks is not None and len(self.stage_blocks) != self.num_stages:
            raise ValueError(f'backbone.stage_blocks {tuple(self.stage_blocks)} needs num_stages='
                             f'{self.num_stages} entries')
        if self.style not in ('pytorch', 'caffe'):
            raise ValueError(f"backbone.style must be 'pytorch' or 'caffe', got {self.style!r}")
        if self.inflate_style not in INFLATE_STYLES:
            raise ValueError(f'backbone.inflate_style must be one of {list(INFLATE_STYLES)}, '
                             f'got {self.inflate_style!r}')
        if (self.conv_cfg or {}).get('type', 'Conv3d') not in self.conv_types():
            raise NotImplementedError(f'backbone.conv_cfg {dict(self.conv_cfg)} is not supported by '
                                      f'{type(self).__name__}; use type in {list(self.conv_types())}')
        check_norm_cfg(self.norm_cfg, 'backbone.norm_cfg')
        if self.norm_cfg is None:
            raise ValueError('backbone.norm_cfg=None is not supported; use dict(type="BN3d")')
        if self.act_cfg is None or self.act_cfg.get('type') != 'ReLU':
            raise NotImplementedError(f'backbone.act_cfg {self.act_cfg} is not supported; '
                                      "use dict(type='ReLU')")
        for key, flags in (('inflate', self.stage_inflations), ('non_local', self.non_local_stages)):
            if len(flags) < len(self.blocks_per_stage):
                raise ValueError(f'backbone.{key} {flags} needs an entry for each of the '
                                 f'{len(self.blocks_per_stage)} stages')
            for stage, num_blocks in enumerate(self.blocks_per_stage):
                per_block(flags[stage], num_blocks, f'{key}[{stage}]')

    def conv_types(self) -> tuple[str, ...]:
        return ('Conv3d',)

    @property
    def block(self) -> type[Block3d]:
        return self.arch_settings[self.depth][0]

    @property
    def blocks_per_stage(self) -> tuple[int, ...]:
        """Blocks per stage: ``stage_blocks`` if given, else the depth's, cut to ``num_stages``."""
        if self.stage_blocks is not None:
            return tuple(self.stage_blocks)
        return self.arch_settings[self.depth][1][:self.num_stages]

    @property
    def stage_inflations(self) -> tuple[Any, ...]:
        """torch's ``_ntuple(num_stages)(inflate)``: a sequence as it is, an int repeated."""
        return (self.inflate,) * self.num_stages if isinstance(self.inflate, int) else tuple(self.inflate)

    @property
    def non_local_stages(self) -> tuple[Any, ...]:
        flags = self.non_local
        return (flags,) * self.num_stages if isinstance(flags, int) else tuple(flags)

    @property
    def feat_dim(self) -> int:
        """Channels of the last stage's output."""
        return self.block.expansion * self.base_channels * 2 ** (len(self.blocks_per_stage) - 1)

    def lateral_inplanes(self) -> tuple[int, ...]:
        """Extra input channels of each stage (SlowFast's laterals); none here."""
        return (0,) * self.num_stages

    def block_args(self) -> dict[str, Any]:
        """Block arguments shared by every stage."""
        return dict(style=self.style, inflate_style=self.inflate_style, non_local_cfg=self.non_local_cfg,
                    conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg,
                    zero_init_residual=self.zero_init_residual)

    def stage_args(self) -> Iterator[dict[str, Any]]:
        """The ``ResLayer3d`` arguments of each stage, in order."""
        inplanes = self.base_channels
        laterals = self.lateral_inplanes()
        for i, num_blocks in enumerate(self.blocks_per_stage):
            planes = self.base_channels * 2 ** i
            yield dict(block=self.block, inplanes=inplanes + laterals[i], planes=planes,
                       num_blocks=num_blocks, spatial_stride=self.spatial_strides[i],
                       temporal_stride=self.temporal_strides[i], dilation=self.dilations[i],
                       inflate=per_block(self.stage_inflations[i], num_blocks, f'inflate[{i}]'),
                       non_local=per_block(self.non_local_stages[i], num_blocks, f'non_local[{i}]'),
                       with_cp=self.with_cp, block_args=FrozenDict(self.block_args()))
            inplanes = planes * self.block.expansion

    # -- layers -------------------------------------------------------------------

    def setup(self) -> None:
        kernel = triple(self.conv1_kernel)
        self.conv1 = ConvModule3d(
            self.base_channels, kernel, (self.conv1_stride_t, self.conv1_stride_s, self.conv1_stride_s),
            tuple((k - 1) // 2 for k in kernel), bias=False, conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
            act_cfg=self.act_cfg)
        for i, args in enumerate(self.stage_args()):
            setattr(self, f'layer{i + 1}', ResLayer3d(**args))
        self.setup_extra()

    def setup_extra(self) -> None:
        """Hook for subclasses that add modules (SlowFast's laterals)."""

    def res_layer(self, index: int) -> ResLayer3d:
        """Stage ``index`` (0-based), the module named ``layer{index + 1}``."""
        return getattr(self, f'layer{index + 1}')

    def bn_train(self, stage: int, train: bool) -> bool:
        """Whether stage ``stage`` (0 = stem, i = layer i) uses batch statistics."""
        return train and not self.norm_eval and stage > self.frozen_stages

    def stem(self, x: jax.Array, train: bool = False, *, pool: bool | None = None) -> jax.Array:
        """``conv1`` then (if ``with_pool1``) the (1, 3, 3) max-pool ``maxpool``."""
        if x.shape[-1] != self.in_channels:
            raise ValueError(f'{type(self).__name__} expects NTHWC input with {self.in_channels} channels '
                             f'(backbone.in_channels), got shape {x.shape}')
        x = self.conv1(x, self.bn_train(0, train))
        if self.with_pool1 if pool is None else pool:
            x = max_pool3d(x, (1, 3, 3), (self.pool1_stride_t, self.pool1_stride_s, self.pool1_stride_s),
                           (0, 1, 1))
        return x

    def stage(self, index: int, x: jax.Array, train: bool = False) -> jax.Array:
        return self.res_layer(index)(x, self.bn_train(index + 1, train))

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array | tuple[jax.Array, ...]:
        x = self.stem(x, train)
        outs = []
        for i in range(len(self.blocks_per_stage)):
            x = self.stage(i, x, train)
            if i == 0 and self.with_pool2:
                x = max_pool3d(x, (2, 1, 1))  # MMAction2's pool2
            if i in self.out_indices:
                outs.append(x)
        return outs[0] if len(outs) == 1 else tuple(outs)

    # -- which parameters never change --------------------------------------------

    def norm_modules(self) -> Iterator[tuple[str, Mapping[str, Any]]]:
        """``(dotted prefix, norm_cfg that built it)`` for every BatchNorm, in module order."""
        conv2plus1d_norm = None
        if (self.conv_cfg or {}).get('type') == 'Conv2plus1d':
            conv2plus1d_norm = self.conv_cfg.get('norm_cfg', FrozenDict(type='BN3d'))
        if conv2plus1d_norm is not None:
            yield 'conv1.conv.bn_s.', conv2plus1d_norm
        yield 'conv1.bn.', self.norm_cfg
        nl_norm = (self.non_local_cfg or {}).get('norm_cfg')
        for i, args in enumerate(self.stage_args()):
            layer = ResLayer3d(**args, parent=None)
            for j, block_args in enumerate(layer.blocks()):
                for name in self.block.norm_names(**block_args):
                    if conv2plus1d_norm is not None:
                        yield f'layer{i + 1}.{j}.{name[:-len("bn")]}conv.bn_s.', conv2plus1d_norm
                    yield f'layer{i + 1}.{j}.{name}.', self.norm_cfg
                if block_args['non_local'] and nl_norm is not None:
                    yield f'layer{i + 1}.{j}.non_local_block.conv_out.bn.', nl_norm

    def frozen_norm(self, norm_cfg: Mapping[str, Any]) -> bool:
        """Whether a BatchNorm built from ``norm_cfg`` has frozen affine parameters."""
        return not norm_cfg.get('requires_grad', True)

    def frozen_prefixes(self) -> tuple[str, ...]:
        """Dotted prefixes (relative to the backbone) of parameters that get no update."""
        prefixes = ['conv1.'] if self.frozen_stages >= 0 else []
        prefixes += [f'layer{i}.' for i in range(1, min(self.frozen_stages, self.num_stages) + 1)]
        prefixes += self.frozen_extra()
        prefixes += [p for p, cfg in self.norm_modules()
                     if self.frozen_norm(cfg) and not any(p.startswith(q) for q in prefixes)]
        return tuple(prefixes)

    def frozen_extra(self) -> list[str]:
        """Hook: other modules frozen with the stages (SlowFast's laterals)."""
        return []
