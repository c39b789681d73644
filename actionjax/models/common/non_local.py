"""mmcv's ``NonLocal3d`` block (Wang et al., "Non-local Neural Networks") on NTHWC input.

Every position attends to every (optionally spatially subsampled) position of the clip:

    y = softmax_or_scale(theta(x) phi(x)^T) g(x);   out = x + conv_out(y)

``theta``, ``phi`` and ``g`` are 1x1x1 convs to ``in_channels // reduction`` channels;
``conv_out`` maps back (with the block's ``norm_cfg``, whose scale starts at zero so the
block starts as the identity). ``sub_sample`` max-pools ``g`` and ``phi`` by (1, 2, 2);
mmcv then wraps them in an ``nn.Sequential``, so their names gain a ``.0``
(``non_local_block.g.0.conv.weight``), reproduced here.

Modes (``mode``): ``'embedded_gaussian'`` (softmax, scaled by ``1/sqrt(inter_channels)``
when ``use_scale``), ``'dot_product'`` (divided by the number of attended positions) and
``'gaussian'`` (softmax over raw ``x`` similarities, no theta/phi convs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.core import FrozenDict

from actionjax.models.common.conv_module3d import ConvModule3d, check_norm_cfg, max_pool3d

NON_LOCAL_MODES = ('embedded_gaussian', 'dot_product', 'gaussian')


def subsample(x: jax.Array) -> jax.Array:
    """mmcv's ``MaxPool3d(kernel_size=(1, 2, 2))``: halve height and width."""
    return max_pool3d(x, (1, 2, 2))


class SubsampledConv(nn.Module):
    """mmcv's ``nn.Sequential(ConvModule, MaxPool3d((1, 2, 2)))``: the conv is named ``0``."""

    features: int
    kernel_init: Any

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        conv = ConvModule3d(self.features, norm_cfg=None, act_cfg=None, conv_kernel_init=self.kernel_init,
                            name='0')
        return subsample(conv(x))


class NonLocal3d(nn.Module):
    """Non-local block; arguments as mmcv's ``NonLocal3d`` (``non_local_cfg`` of ResNet3d).

    ``std`` and ``zeros_init`` are mmcv's ``init_weights`` arguments (normal init of the
    embedding convs; zero init of ``conv_out``'s norm, or of the conv without a norm).
    """

    reduction: int = 2
    use_scale: bool = True
    conv_cfg: Mapping[str, Any] = FrozenDict(type='Conv3d')
    norm_cfg: Mapping[str, Any] | None = None
    mode: str = 'embedded_gaussian'
    sub_sample: bool = False
    std: float = 0.01
    zeros_init: bool = True

    def __post_init__(self) -> None:
        if self.mode not in NON_LOCAL_MODES:
            extra = ' (concatenation is not supported)' if self.mode == 'concatenation' else ''
            raise ValueError(f'non_local_cfg.mode must be one of {list(NON_LOCAL_MODES)}{extra}, '
                             f'got {self.mode!r}')
        if (self.conv_cfg or {}).get('type', 'Conv3d') != 'Conv3d':
            raise NotImplementedError(f'non_local_cfg.conv_cfg {dict(self.conv_cfg)} is not supported; '
                                      "use dict(type='Conv3d')")
        check_norm_cfg(self.norm_cfg, 'non_local_cfg.norm_cfg')
        super().__post_init__()

    def embedding(self, features: int, name: str, subsampled: bool) -> nn.Module:
        """A 1x1x1 conv with bias (no norm, no activation), subsampled when asked."""
        init = nn.initializers.normal(self.std)
        if subsampled:
            return SubsampledConv(features, init, name=name)
        return ConvModule3d(features, norm_cfg=None, act_cfg=None, conv_kernel_init=init, name=name)

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        n, t, h, w, channels = x.shape
        inter = max(channels // self.reduction, 1)
        g_x = self.embedding(inter, 'g', self.sub_sample)(x).reshape(n, -1, inter)
        if self.mode == 'gaussian':
            theta_x = x.reshape(n, -1, channels)
            phi_x = (subsample(x) if self.sub_sample else x).reshape(n, -1, channels)
        else:
            theta_x = self.embedding(inter, 'theta', False)(x).reshape(n, -1, inter)
            phi_x = self.embedding(inter, 'phi', self.sub_sample)(x).reshape(n, -1, inter)
        pairwise = jnp.einsum('nlc,nmc->nlm', theta_x, phi_x)
        if self.mode == 'dot_product':
            pairwise = pairwise / pairwise.shape[-1]
        else:
            if self.mode == 'embedded_gaussian' and self.use_scale:
                pairwise = pairwise / theta_x.shape[-1] ** 0.5
            pairwise = jax.nn.softmax(pairwise, axis=-1)
        y = jnp.einsum('nlm,nmc->nlc', pairwise, g_x).reshape(n, t, h, w, inter)
        # mmcv initialises conv_out's norm when it has one, else its conv.
        out_init = nn.initializers.zeros if self.zeros_init else nn.initializers.normal(self.std)
        init = (dict(norm_scale_init=out_init) if self.norm_cfg is not None
                else dict(conv_kernel_init=out_init))
        conv_out = ConvModule3d(channels, norm_cfg=self.norm_cfg, act_cfg=None, name='conv_out', **init)
        return x + conv_out(y, train)
