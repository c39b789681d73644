"""mmcv's ``ConvModule`` (conv -> BN -> ReLU) and torch-equivalent padding.

Flax's ``'SAME'`` padding is asymmetric for stride-2 layers (it pads more at the end),
torch pads ``padding`` pixels on both sides. Every conv and pool here takes torch's
integer ``padding`` and pads explicitly, so a converted checkpoint sees the same
pixels as in MMAction2.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import numpy as np

from actionjax.models.common import conv_weight_grad, pooling
from actionjax.models.common.norm import BatchNorm
from actionjax.models.common.windows import kernel_views, taps
from actionjax.precision import reduction_dtype

# mmcv's kaiming_init default (mode='fan_out', nonlinearity='relu', normal), used by
# ConvModule and by MMAction2's ResNet init_cfg.
kaiming_fan_out = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')


def torch_padding(padding: int, ndim: int = 2) -> tuple[tuple[int, int], ...]:
    """torch's symmetric ``padding`` as Flax's explicit ``((lo, hi), ...)``."""
    return ((padding, padding),) * ndim


def conv_general_dilated(lhs: jax.Array, rhs: jax.Array, window_strides: Sequence[int], padding: Any,
                         lhs_dilation: Sequence[int] | None = None, rhs_dilation: Sequence[int] | None = None,
                         dimension_numbers: Any = None, feature_group_count: int = 1,
                         precision: Any = None, **kwargs: Any) -> jax.Array:
    """``lax.conv_general_dilated``, with the convolutions XLA runs slowly rewritten as equal,
    faster ops. Give it to ``nn.Conv(conv_general_dilated=...)``. For channels-last input:

    * a pointwise (1x1, 1x1x1) convolution is one matrix multiply over the pixels it visits:
      XLA:CPU runs it, and above all its two gradients, as a general convolution with layout
      transposes around it (ResNet-50's 1x1 convolutions train 1.5x to 3x faster as matmuls);
    * on CPU, a depthwise convolution (2D or 3D) is a sum of strided views times per-channel
      weights (``_depthwise_conv``);
    * on CPU, a 3D convolution is the sum of its temporal taps' 2D convolutions, or for a stem
      one 2D convolution over the taps' frames side by side (``_conv3d_as_2d``), and a 2D
      convolution on a small map a matmul over its patches (``_im2col_conv``);
    * on CPU, a 2D convolution of RGB input (a stem) or with more output pixels than
      ``conv_weight_grad.ROWS_PER_CHUNK`` computes its weight gradient as matmuls over row
      patches, by chunks (``conv_weight_grad.conv2d``).

    Every other convolution goes to ``lax.conv_general_dilated`` unchanged.
    """
    if isinstance(padding, str) and padding == 'VALID':
        padding = ((0, 0),) * (lhs.ndim - 2)
    plain = _plain_channels_last(lhs, padding, lhs_dilation, rhs_dilation, dimension_numbers, kwargs)
    if plain and feature_group_count == 1 and all(k == 1 for k in rhs.shape[:-2]) \
            and all(tuple(p) == (0, 0) for p in padding):
        return _pointwise_conv(lhs, rhs, window_strides, precision)
    on_cpu = plain and jax.default_backend() == 'cpu'
    if on_cpu and 1 < feature_group_count == lhs.shape[-1] == rhs.shape[-1] and rhs.shape[-2] == 1:
        return _depthwise_conv(lhs, rhs, window_strides, padding)
    if on_cpu and lhs.ndim == 5:
        return _conv3d_as_2d(lhs, rhs, window_strides, padding, precision, feature_group_count)
    plain_2d = on_cpu and lhs.ndim == 4 and feature_group_count == 1
    out_pixels = _out_pixels(lhs, rhs, window_strides, padding) if plain_2d else 0
    if plain_2d and out_pixels <= IM2COL_MAX_PIXELS:
        return _im2col_conv(lhs, rhs, window_strides, padding, precision)
    large = lhs.shape[0] * out_pixels > conv_weight_grad.ROWS_PER_CHUNK
    if plain_2d and (lhs.shape[-1] <= STEM_CHANNELS or large):
        return conv_weight_grad.conv2d(lhs, rhs, window_strides, padding, precision)
    return jax.lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
                                        rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
                                        feature_group_count=feature_group_count, precision=precision,
                                        **kwargs)


def _plain_channels_last(lhs: jax.Array, padding: Any, lhs_dilation: Any, rhs_dilation: Any,
                         dimension_numbers: Any, kwargs: dict) -> bool:
    """A channels-last convolution (Flax's ``NH..WC`` / ``H..WIO``) with explicit padding, no
    dilation and no other ``lax`` option: the kind the rewrites above apply to."""
    n = lhs.ndim
    return (dimension_numbers is not None and not kwargs and not isinstance(padding, str)
            and tuple(dimension_numbers.lhs_spec) == (0, n - 1, *range(1, n - 1))
            and tuple(dimension_numbers.rhs_spec) == (n - 1, n - 2, *range(n - 2))
            and tuple(dimension_numbers.out_spec) == (0, n - 1, *range(1, n - 1))
            and all(d == 1 for d in (lhs_dilation or ())) and all(d == 1 for d in (rhs_dilation or ())))


def _pointwise_conv(lhs: jax.Array, rhs: jax.Array, window_strides: Sequence[int],
                    precision: Any) -> jax.Array:
    """A 1x1 (1x1x1) convolution as ``x @ w`` over the pixels its strides visit."""
    if any(s != 1 for s in window_strides):
        lhs = lhs[(slice(None), *(slice(None, None, s) for s in window_strides))]
    rows = int(np.prod(lhs.shape[:-1]))
    out = jax.lax.dot(lhs.reshape(rows, lhs.shape[-1]), rhs.reshape(rhs.shape[-2], rhs.shape[-1]),
                      precision=precision)
    return out.reshape(*lhs.shape[:-1], rhs.shape[-1])


def _conv3d_as_2d(lhs: jax.Array, rhs: jax.Array, window_strides: Sequence[int], padding: Any,
                  precision: Any, feature_group_count: int = 1) -> jax.Array:
    """A (kt, kh, kw) conv on (N, T, H, W, C) (grouped ones too) as 2D convs on the
    (N * T', H, W, C) frames each temporal tap sees.

    XLA:CPU runs 3D convolutions on a generic kernel, several times slower than its 2D ones;
    the 2D convs then take the fast paths above (1x1 as a matmul, small maps over patches).
    A layer sums its taps' convs. A stem (RGB or flow input, ``C <= STEM_CHANNELS``) stacks
    its taps' frames along channels and runs one conv of ``kt * C`` input channels instead:
    XLA:CPU runs convs of 3 input channels on one core (I3D's 5x7x7 stem: 111 -> 77 ms).
    The same sums, in another order."""
    kt = rhs.shape[0]
    (st, sh, sw), (pt0, pt1) = window_strides, padding[0]
    x = jax.numpy.pad(lhs, ((0, 0), (pt0, pt1), (0, 0), (0, 0), (0, 0)))
    n, t, h, w, c = x.shape
    out_t = (t - kt) // st + 1
    tap_frames = [x[:, taps(dt, st, out_t)].reshape(n * out_t, h, w, c) for dt in range(kt)]
    if c <= STEM_CHANNELS and feature_group_count == 1:
        tap_frames = [jax.numpy.concatenate(tap_frames, axis=-1)]
        kernels = [rhs.transpose(1, 2, 0, 3, 4).reshape(*rhs.shape[1:3], kt * c, rhs.shape[-1])]
    else:
        kernels = list(rhs)
    out = None
    for frames, kernel in zip(tap_frames, kernels, strict=True):
        numbers = jax.lax.conv_dimension_numbers(frames.shape, kernel.shape, ('NHWC', 'HWIO', 'NHWC'))
        y = conv_general_dilated(frames, kernel, (sh, sw), tuple(padding[1:]), dimension_numbers=numbers,
                                 feature_group_count=feature_group_count, precision=precision)
        out = y if out is None else out + y
    return out.reshape(n, out_t, *out.shape[1:])


# Input channels of a stem's convolution: RGB frames, or the x and y of optical flow.
STEM_CHANNELS = 3


def _depthwise_conv(lhs: jax.Array, rhs: jax.Array, window_strides: Sequence[int], padding: Any) -> jax.Array:
    """A depthwise conv (one filter per channel: X3D, CSN, MViT's poolings) as the sum over the
    kernel's offsets of the strided input view times that offset's per-channel weights, in one
    loop fusion: XLA:CPU runs a depthwise convolution as a grouped conv of one channel per
    group, 4x to 5x slower (MViT-S's 3x3x3 poolings: 62 -> 13 ms; their gradients take as long
    as before). Sums in float32 or wider."""
    x = jax.numpy.pad(lhs, ((0, 0), *(tuple(p) for p in padding), (0, 0)))
    _, views, _ = kernel_views(x, rhs.shape[:-2], window_strides)
    dtype = reduction_dtype(lhs.dtype)
    weights = rhs.reshape(-1, rhs.shape[-1]).astype(dtype)  # one row per offset, in the views' order
    out = sum(view.astype(dtype) * weights[i] for i, view in enumerate(views))
    return out.astype(jax.numpy.result_type(lhs.dtype, rhs.dtype))


# Output maps of at most this many pixels per image (ResNet's last stages: 7x7 and 4x4 at
# 112 px) run as one matmul over their patches: XLA:CPU's convolution and its gradients
# are slower there.
IM2COL_MAX_PIXELS = 64


def _out_pixels(lhs: jax.Array, rhs: jax.Array, window_strides: Sequence[int], padding: Any) -> int:
    """The pixels of one image of a 2D conv's output."""
    sizes = zip(lhs.shape[1:3], padding, rhs.shape[:2], window_strides, strict=True)
    out = [(size + lo + hi - k) // s + 1 for size, (lo, hi), k, s in sizes]
    return out[0] * out[1]


def _im2col_conv(lhs: jax.Array, rhs: jax.Array, window_strides: Sequence[int], padding: Any,
                 precision: Any = None) -> jax.Array:
    """The conv as ``patches @ kernel``: the kh x kw strided views of the padded input side by side."""
    kh, kw, c, o = rhs.shape
    x = jax.numpy.pad(lhs, ((0, 0), tuple(padding[0]), tuple(padding[1]), (0, 0)))
    _, views, (ho, wo) = kernel_views(x, (kh, kw), window_strides)
    patches = jax.numpy.concatenate(views, axis=-1).reshape(-1, kh * kw * c)
    return jax.lax.dot(patches, rhs.reshape(kh * kw * c, o), precision=precision).reshape(
        lhs.shape[0], ho, wo, o)


# ``nn.Conv`` on the rewrites above: every convolution of a model is built with it (a plain
# ``nn.Conv`` leaves XLA:CPU's slow paths in: MViT-S's depthwise 3D poolings took 10x torch's time).
Conv = functools.partial(nn.Conv, conv_general_dilated=conv_general_dilated)


def max_pool(x: jax.Array, kernel_size: int, stride: int, padding: int) -> jax.Array:
    """``torch.nn.MaxPool2d(kernel_size, stride, padding)`` on NHWC input (pads with -inf)."""
    return pooling.max_pool(x, (kernel_size, kernel_size), (stride, stride), torch_padding(padding))


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
            conv = Conv(**conv_args, name='conv')
        else:
            conv = self.conv_wrapper(Conv(**conv_args, parent=None), name='conv')
        x = conv(x)
        if self.with_norm:
            x = BatchNorm(use_running_average=not train, name='bn')(x)
        if self.with_act:
            x = nn.relu(x)
        return x
