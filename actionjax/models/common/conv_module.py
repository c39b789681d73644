"""mmcv's ``ConvModule`` (conv -> BN -> ReLU) and torch-equivalent padding.

Flax's ``'SAME'`` padding is asymmetric for stride-2 layers (it pads more at the end),
torch pads ``padding`` pixels on both sides. Every conv and pool here takes torch's
integer ``padding`` and pads explicitly, so a converted checkpoint sees the same
pixels as in MMAction2.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax

from actionjax.models.common.norm import BatchNorm

# mmcv's kaiming_init default (mode='fan_out', nonlinearity='relu', normal), used by
# ConvModule and by MMAction2's ResNet init_cfg.
kaiming_fan_out = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')


def torch_padding(padding: int, ndim: int = 2) -> tuple[tuple[int, int], ...]:
    """torch's symmetric ``padding`` as Flax's explicit ``((lo, hi), ...)``."""
    return ((padding, padding),) * ndim


def max_pool(x: jax.Array, kernel_size: int, stride: int, padding: int) -> jax.Array:
    """``torch.nn.MaxPool2d(kernel_size, stride, padding)`` on NHWC input (pads with -inf)."""
    return nn.max_pool(x, (kernel_size, kernel_size), (stride, stride), torch_padding(padding))


class ConvModule(nn.Module):
    """Conv (named ``conv``) -> BatchNorm (``bn``) -> ReLU, as mmcv's ConvModule.

    ``conv_wrapper``, when given, is called as ``conv_wrapper(conv, name='conv')`` with
    the unbound conv and must return the module that replaces it (TSM uses it to wrap
    the conv in a ``TemporalShift``, giving MMAction2's ``conv1.conv.net`` names).
    ``train`` switches BatchNorm to batch statistics.
    """

    features: int
    kernel_size: int = 1
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1
    bias: bool = False
    with_norm: bool = True
    with_act: bool = True
    conv_wrapper: Callable[..., nn.Module] | None = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        conv_args = dict(
            features=self.features,
            kernel_size=(self.kernel_size, self.kernel_size),
            strides=(self.stride, self.stride),
            padding=torch_padding(self.padding),
            kernel_dilation=(self.dilation, self.dilation),
            feature_group_count=self.groups,
            use_bias=self.bias,
            kernel_init=kaiming_fan_out,
        )
        if self.conv_wrapper is None:
            conv = nn.Conv(**conv_args, name='conv')
        else:
            conv = self.conv_wrapper(nn.Conv(**conv_args, parent=None), name='conv')
        x = conv(x)
        if self.with_norm:
            x = BatchNorm(use_running_average=not train, name='bn')(x)
        if self.with_act:
            x = nn.relu(x)
        return x
