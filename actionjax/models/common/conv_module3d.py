"""mmcv's ``ConvModule`` for video (conv3d -> BatchNorm3d -> activation) on NTHWC input.

Kernels are ``(t, kh, kw, in / groups, out)``; torch's symmetric ``padding`` is
applied explicitly on every axis, as in the 2D ``ConvModule``, so a converted
checkpoint sees the same voxels as in MMAction2. Sizes take an int or a
``(t, h, w)`` triple, like torch's ``_triple``.

Configs are mmcv's:

* ``conv_cfg``: ``dict(type='Conv3d')`` or ``dict(type='Conv2plus1d', norm_cfg=...)``
  (MMAction2's factorised (2+1)D conv, :class:`Conv2plus1d`);
* ``norm_cfg``: ``dict(type='BN3d', eps=..., momentum=..., requires_grad=...)`` or None
  (no norm; the conv then has a bias, mmcv's ``bias='auto'``). ``momentum`` is torch's;
* ``act_cfg``: ``dict(type='ReLU')``, ``dict(type='Swish')`` or None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
from flax.core import FrozenDict

from actionjax.models.common import pooling
from actionjax.models.common.conv_module import Conv, kaiming_fan_out
from actionjax.models.common.norm import BatchNorm

Size3 = int | Sequence[int]
BN3D_TYPES = ('BN3d', 'BN', 'SyncBN')
BN3D = FrozenDict(type='BN3d')


def triple(value: Size3) -> tuple[int, int, int]:
    """torch's ``_triple``: an int for every axis, or a (t, h, w) sequence as it is."""
    if isinstance(value, int):
        return (value,) * 3
    value = tuple(value)
    if len(value) != 3:
        raise ValueError(f'expected an int or a (t, h, w) triple, got {value}')
    return value


def torch_padding3d(padding: Size3) -> tuple[tuple[int, int], ...]:
    """torch's symmetric 3D ``padding`` as Flax's explicit ``((lo, hi),) * 3``."""
    return tuple((p, p) for p in triple(padding))


def max_pool3d(x: jax.Array, kernel_size: Size3, stride: Size3 | None = None, padding: Size3 = 0
               ) -> jax.Array:
    """``torch.nn.MaxPool3d(kernel_size, stride, padding)`` on NTHWC input (pads with -inf, floors)."""
    kernel = triple(kernel_size)
    return pooling.max_pool(x, kernel, triple(kernel if stride is None else stride), torch_padding3d(padding))


def check_norm_cfg(norm_cfg: Mapping[str, Any] | None, key: str) -> None:
    """Only BatchNorm (3D, or 'BN' / 'SyncBN', which are the same under jit) is supported."""
    if norm_cfg is not None and norm_cfg.get('type', 'BN3d') not in BN3D_TYPES:
        raise NotImplementedError(f'{key} {dict(norm_cfg)} is not supported; use dict(type="BN3d") '
                                  '(under jit, BN over a sharded batch is SyncBN)')


def batch_norm(norm_cfg: Mapping[str, Any], train: bool, name: str,
               scale_init: Callable[..., jax.Array] = nn.initializers.ones) -> BatchNorm:
    """torch's ``BatchNorm3d(eps, momentum)`` from an mmcv ``norm_cfg``."""
    return BatchNorm(use_running_average=not train, momentum=1.0 - norm_cfg.get('momentum', 0.1),
                     epsilon=norm_cfg.get('eps', 1e-5), scale_init=scale_init, name=name)


def activation(act_cfg: Mapping[str, Any] | None) -> Callable[[jax.Array], jax.Array] | None:
    """mmcv's activation layer for ``act_cfg`` (None: none)."""
    if act_cfg is None:
        return None
    kind = act_cfg.get('type')
    if kind == 'ReLU':
        return nn.relu
    if kind == 'Swish':
        return nn.swish
    raise NotImplementedError(f'act_cfg {dict(act_cfg)} is not supported; use ReLU or Swish')


def conv3d(features: int, kernel_size: Size3, stride: Size3 = 1, padding: Size3 = 0, dilation: Size3 = 1,
           groups: int = 1, bias: bool = False, name: str | None = None,
           kernel_init: Callable[..., jax.Array] = kaiming_fan_out,
           bias_init: Callable[..., jax.Array] = nn.initializers.zeros) -> nn.Conv:
    """``torch.nn.Conv3d`` as an ``nn.Conv`` on NTHWC input (mmcv's kaiming fan-out init)."""
    return Conv(features, triple(kernel_size), triple(stride), torch_padding3d(padding),
                kernel_dilation=triple(dilation), feature_group_count=groups, use_bias=bias,
                kernel_init=kernel_init, bias_init=bias_init, name=name)


class Conv2plus1d(nn.Module):
    """MMAction2's ``Conv2plus1d``: a spatial (1, kh, kw) conv ``conv_s``, BN ``bn_s``, ReLU,
    then a temporal (kt, 1, 1) conv ``conv_t``, with the parameter count of the full 3D conv.

    ``bn_s`` follows its own ``norm_cfg`` (default BN3d), not the enclosing ConvModule's.
    """

    features: int
    kernel_size: Size3
    stride: Size3 = 1
    padding: Size3 = 0
    dilation: Size3 = 1
    groups: int = 1
    bias: bool = True
    norm_cfg: Mapping[str, Any] = BN3D

    @staticmethod
    def mid_channels_for(in_channels: int, out_channels: int, kernel_size: Size3) -> int:
        """Channels between the two convs, as MMAction2 computes them (float division, truncated)."""
        _, kh, kw = triple(kernel_size)
        return int(3 * (in_channels * out_channels * kh * kw) / (in_channels * kh * kw + 3 * out_channels))

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        if self.groups != 1 or triple(self.dilation) != (1, 1, 1):
            raise NotImplementedError('Conv2plus1d: groups and dilation are not used by MMAction2 '
                                      '(its convs ignore them); leave them at 1')
        kt, kh, kw = triple(self.kernel_size)
        st, sh, sw = triple(self.stride)
        pt, ph, pw = triple(self.padding)
        mid = self.mid_channels_for(x.shape[-1], self.features, self.kernel_size)
        x = conv3d(mid, (1, kh, kw), (1, sh, sw), (0, ph, pw), bias=self.bias, name='conv_s')(x)
        x = nn.relu(batch_norm(self.norm_cfg, train, 'bn_s')(x))
        return conv3d(self.features, (kt, 1, 1), (st, 1, 1), (pt, 0, 0), bias=self.bias, name='conv_t')(x)


class ConvModule3d(nn.Module):
    """Conv (named ``conv``) -> BatchNorm (``bn``) -> activation, as mmcv's ConvModule in 3D.

    ``bias=None`` is mmcv's ``'auto'``: a bias only without a norm. ``norm_scale_init``
    lets a residual block start its last BN at zero (``zero_init_residual``).
    ``train`` switches BatchNorm to batch statistics.
    """

    features: int
    kernel_size: Size3 = 1
    stride: Size3 = 1
    padding: Size3 = 0
    dilation: Size3 = 1
    groups: int = 1
    bias: bool | None = None
    conv_cfg: Mapping[str, Any] | None = FrozenDict(type='Conv3d')
    norm_cfg: Mapping[str, Any] | None = BN3D
    act_cfg: Mapping[str, Any] | None = FrozenDict(type='ReLU')
    norm_scale_init: Callable[..., jax.Array] = nn.initializers.ones
    conv_kernel_init: Callable[..., jax.Array] = kaiming_fan_out

    def build_conv(self, bias: bool) -> nn.Module:
        conv_cfg = dict(self.conv_cfg or {'type': 'Conv3d'})
        kind = conv_cfg.pop('type', 'Conv3d')
        if kind == 'Conv3d':
            return conv3d(self.features, self.kernel_size, self.stride, self.padding, self.dilation,
                          self.groups, bias, name='conv', kernel_init=self.conv_kernel_init)
        if kind == 'Conv2plus1d':
            check_norm_cfg(conv_cfg.get('norm_cfg'), 'conv_cfg.norm_cfg')
            return Conv2plus1d(self.features, self.kernel_size, self.stride, self.padding, self.dilation,
                               self.groups, bias, **conv_cfg, name='conv')
        raise NotImplementedError(f'conv_cfg type {kind!r} is not supported; use Conv3d or Conv2plus1d')

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        with_norm = self.norm_cfg is not None
        conv = self.build_conv(not with_norm if self.bias is None else self.bias)
        x = conv(x, train) if isinstance(conv, Conv2plus1d) else conv(x)
        if with_norm:
            x = batch_norm(self.norm_cfg, train, 'bn', self.norm_scale_init)(x)
        act = activation(self.act_cfg)
        return x if act is None else act(x)
