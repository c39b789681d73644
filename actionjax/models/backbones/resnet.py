"""ResNet (MMAction2's ``ResNet`` backbone) as a Flax module, on NHWC input.

Module names are MMAction2 1.2.0's: ``conv1.conv``/``conv1.bn`` (stem),
``layer{i}.{j}.conv{k}.conv``/``.bn`` and ``layer{i}.{j}.downsample.conv``/``.bn``,
so ``backbone.layer1.0.conv1.conv.weight`` is ``params/backbone/layer1/0/conv1/conv/kernel``.

Training behaviour follows MMAction2's ``ResNet.train()``:

* ``frozen_stages=k``: the stem and ``layer1..layer{k}`` keep their BatchNorm in eval
  mode (running statistics, no update) and their parameters are listed by
  ``frozen_prefixes()`` so the optimizer leaves them untouched;
* ``norm_eval=True``: every BatchNorm uses running statistics in training (its affine
  parameters still train);
* ``partial_bn=True``: every BatchNorm but the first (the stem's) uses running statistics
  and has its affine parameters frozen.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax
from flax.core import FrozenDict

from actionjax.models.common.conv_module import ConvModule, max_pool
from actionjax.registry import BACKBONES


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection (ResNet-18/34)."""

    expansion: ClassVar[int] = 1
    convs: ClassVar[tuple[str, ...]] = ('conv1', 'conv2')

    planes: int
    stride: int = 1
    dilation: int = 1
    downsample: bool = False
    style: str = 'pytorch'
    conv1_wrapper: Any = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        out = ConvModule(self.planes, 3, self.stride, self.dilation, self.dilation,
                         conv_wrapper=self.conv1_wrapper, name='conv1')(x, train)
        out = ConvModule(self.planes, 3, 1, 1, with_act=False, name='conv2')(out, train)
        identity = x
        if self.downsample:
            identity = ConvModule(self.planes, 1, self.stride, with_act=False, name='downsample')(x, train)
        return nn.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 (x4) with a residual connection (ResNet-50/101/152).

    ``style='pytorch'`` puts the stride on the 3x3 conv, ``'caffe'`` on the first 1x1.
    """

    expansion: ClassVar[int] = 4
    convs: ClassVar[tuple[str, ...]] = ('conv1', 'conv2', 'conv3')

    planes: int
    stride: int = 1
    dilation: int = 1
    downsample: bool = False
    style: str = 'pytorch'
    conv1_wrapper: Any = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        stride1, stride2 = (1, self.stride) if self.style == 'pytorch' else (self.stride, 1)
        out = ConvModule(self.planes, 1, stride1, conv_wrapper=self.conv1_wrapper, name='conv1')(x, train)
        out = ConvModule(self.planes, 3, stride2, self.dilation, self.dilation, name='conv2')(out, train)
        out = ConvModule(self.planes * 4, 1, with_act=False, name='conv3')(out, train)
        identity = x
        if self.downsample:
            identity = ConvModule(self.planes * 4, 1, self.stride, with_act=False,
                                  name='downsample')(x, train)
        return nn.relu(out + identity)


class ResLayer(nn.Module):
    """One stage: ``num_blocks`` blocks named ``0, 1, ...`` (torch's nn.Sequential).

    The first block takes the stage's stride and, when the shape changes, a
    ``downsample`` projection. ``make_block`` is the hook TSM overrides.
    """

    block: type[nn.Module]
    inplanes: int
    planes: int
    num_blocks: int
    stride: int = 1
    dilation: int = 1
    style: str = 'pytorch'
    with_cp: bool = False

    def block_cls(self) -> Any:
        """The block class, rematerialised (activation checkpointing) when ``with_cp``."""
        return nn.remat(self.block, static_argnums=(2,)) if self.with_cp else self.block

    def make_block(self, index: int, **kwargs: Any) -> nn.Module:
        return self.block_cls()(**kwargs, name=str(index))

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        for i in range(self.num_blocks):
            first = i == 0
            x = self.make_block(
                i, planes=self.planes, stride=self.stride if first else 1, dilation=self.dilation,
                style=self.style, downsample=first and has_downsample(
                    self.block, self.inplanes, self.planes, self.stride),
            )(x, train)
        return x


def has_downsample(block: Any, inplanes: int, planes: int, stride: int) -> bool:
    """Whether a stage's first block needs the 1x1 projection on its identity path."""
    return stride != 1 or inplanes != planes * block.expansion


def check_stages(backbone: Any, name: str) -> None:
    """The checks every ResNet variant makes of ``depth``, ``num_stages`` and ``out_indices``."""
    if backbone.depth not in backbone.arch_settings:
        raise KeyError(f'invalid depth {backbone.depth} for {name} (config key backbone.depth); '
                       f'choose one of {sorted(backbone.arch_settings)}')
    if not 1 <= backbone.num_stages <= 4:
        raise ValueError(f'backbone.num_stages must be in 1..4, got {backbone.num_stages}')
    if not backbone.out_indices or max(backbone.out_indices) >= backbone.num_stages:
        raise ValueError(f'backbone.out_indices {tuple(backbone.out_indices)} must be non-empty and '
                         f'< num_stages={backbone.num_stages}')


@BACKBONES.register_module()
class ResNet(nn.Module):
    """ResNet backbone; arguments as MMAction2's ``ResNet``.

    Input ``(N, H, W, C)``, output the NHWC feature map of each stage in ``out_indices``
    (one array, or a tuple for several). ``pretrained`` is kept for the loader of
    converted torchvision checkpoints (``convert.torchvision``); nothing downloads.
    Only ``conv_cfg=Conv``, ``act_cfg=ReLU`` and BatchNorm ``norm_cfg`` are supported.
    """

    arch_settings: ClassVar[dict[int, tuple[type[nn.Module], tuple[int, ...]]]] = {
        18: (BasicBlock, (2, 2, 2, 2)),
        34: (BasicBlock, (3, 4, 6, 3)),
        50: (Bottleneck, (3, 4, 6, 3)),
        101: (Bottleneck, (3, 4, 23, 3)),
        152: (Bottleneck, (3, 8, 36, 3)),
    }

    depth: int
    pretrained: str | None = None
    torchvision_pretrain: bool = True
    in_channels: int = 3
    num_stages: int = 4
    out_indices: Sequence[int] = (3,)
    strides: Sequence[int] = (1, 2, 2, 2)
    dilations: Sequence[int] = (1, 1, 1, 1)
    style: str = 'pytorch'
    frozen_stages: int = -1
    conv_cfg: Mapping[str, Any] = FrozenDict(type='Conv')
    norm_cfg: Mapping[str, Any] = FrozenDict(type='BN2d', requires_grad=True)
    act_cfg: Mapping[str, Any] = FrozenDict(type='ReLU', inplace=True)
    norm_eval: bool = False
    partial_bn: bool = False
    with_cp: bool = False
    init_cfg: Any = None

    def __post_init__(self) -> None:
        self._check_args()
        super().__post_init__()

    def _check_args(self) -> None:
        check_stages(self, 'resnet')
        if not len(self.strides) == len(self.dilations) == self.num_stages:
            raise ValueError(f'backbone.strides {tuple(self.strides)} and backbone.dilations '
                             f'{tuple(self.dilations)} need num_stages={self.num_stages} entries')
        if self.style not in ('pytorch', 'caffe'):
            raise ValueError(f"backbone.style must be 'pytorch' or 'caffe', got {self.style!r}")
        if (self.conv_cfg or {}).get('type', 'Conv') not in ('Conv', 'Conv2d'):
            raise NotImplementedError(f'backbone.conv_cfg {dict(self.conv_cfg)} is not supported; '
                                      "use dict(type='Conv')")
        if (self.norm_cfg or {}).get('type', 'BN') not in ('BN', 'BN2d', 'SyncBN'):
            raise NotImplementedError(f'backbone.norm_cfg {dict(self.norm_cfg)} is not supported; use '
                                      "dict(type='BN2d') (under jit, BN over a sharded batch is SyncBN)")
        if self.act_cfg is None or self.act_cfg.get('type') != 'ReLU':
            raise NotImplementedError(f'backbone.act_cfg {self.act_cfg} is not supported; '
                                      "use dict(type='ReLU')")
        if self.with_cp and self.arch_settings[self.depth][0] is BasicBlock:
            raise ValueError('backbone.with_cp is only supported for depth >= 50 (as in MMAction2)')

    @property
    def block(self) -> type[nn.Module]:
        return self.arch_settings[self.depth][0]

    @property
    def stage_blocks(self) -> tuple[int, ...]:
        return self.arch_settings[self.depth][1][:self.num_stages]

    @property
    def feat_dim(self) -> int:
        """Channels of the last stage's output."""
        return self.block.expansion * 64 * 2 ** (self.num_stages - 1)

    def stage_args(self) -> Iterator[dict[str, Any]]:
        """The ``ResLayer`` arguments of each stage, in order."""
        inplanes = 64
        for i, num_blocks in enumerate(self.stage_blocks):
            planes = 64 * 2 ** i
            yield dict(block=self.block, inplanes=inplanes, planes=planes, num_blocks=num_blocks,
                       stride=self.strides[i], dilation=self.dilations[i], style=self.style,
                       with_cp=self.with_cp)
            inplanes = planes * self.block.expansion

    def make_res_layer(self, index: int, **kwargs: Any) -> nn.Module:
        """Stage ``index`` (0-based) as the module named ``layer{index + 1}``."""
        return ResLayer(**kwargs, name=f'layer{index + 1}')

    def bn_train(self, stage: int, train: bool) -> bool:
        """Whether stage ``stage`` (0 = stem, i = layer i) uses batch statistics."""
        if not train or self.norm_eval or stage <= self.frozen_stages:
            return False
        return stage == 0 or not self.partial_bn

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array | tuple[jax.Array, ...]:
        if x.shape[-1] != self.in_channels:
            raise ValueError(f'ResNet expects NHWC input with {self.in_channels} channels '
                             f'(backbone.in_channels), got shape {x.shape}')
        x = ConvModule(64, 7, 2, 3, name='conv1')(x, self.bn_train(0, train))
        x = max_pool(x, 3, 2, 1)
        outs = []
        for i, args in enumerate(self.stage_args()):
            x = self.make_res_layer(i, **args)(x, self.bn_train(i + 1, train))
            if i in self.out_indices:
                outs.append(x)
        return outs[0] if len(outs) == 1 else tuple(outs)

    # -- which parameters never change --------------------------------------------

    def block_prefix(self, stage: int, index: int) -> str:
        """Dotted name of block ``index`` of stage ``stage`` (0-based), with a trailing dot."""
        return f'layer{stage + 1}.{index}.'

    def norm_prefixes(self) -> list[str]:
        """Every BatchNorm of the backbone, stem first (MMAction2's module order)."""
        names = ['conv1.bn.']
        for i, args in enumerate(self.stage_args()):
            block = args['block']
            for j in range(args['num_blocks']):
                prefix = self.block_prefix(i, j)
                names += [f'{prefix}{conv}.bn.' for conv in block.convs]
                if j == 0 and has_downsample(block, args['inplanes'], args['planes'], args['stride']):
                    names.append(f'{prefix}downsample.bn.')
        return names

    def frozen_prefixes(self) -> tuple[str, ...]:
        """Dotted prefixes (relative to the backbone) of parameters that get no update."""
        prefixes = []
        if self.frozen_stages >= 0:
            prefixes.append('conv1.')
        prefixes += [f'layer{i}.' for i in range(1, min(self.frozen_stages, self.num_stages) + 1)]
        norms = self.norm_prefixes()
        if not (self.norm_cfg or {}).get('requires_grad', True):
            frozen_norms = norms
        elif self.partial_bn:
            frozen_norms = norms[1:]
        else:
            frozen_norms = []
        prefixes += [p for p in frozen_norms if not any(p.startswith(q) for q in prefixes)]
        return tuple(prefixes)
