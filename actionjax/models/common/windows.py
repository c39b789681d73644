"""The strided views a sliding window sees: one home for the patch-based convolutions
(``conv_module``, ``conv_weight_grad``) and max pooling (``pooling``)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import jax


def taps(offset: int, stride: int, count: int) -> slice:
    """The ``count`` positions a window's tap at ``offset`` visits as it slides by ``stride``."""
    return slice(offset, offset + stride * (count - 1) + 1, stride)


def kernel_views(padded: jax.Array, kernel: Sequence[int], strides: Sequence[int]
                 ) -> tuple[list[tuple[int, ...]], list[jax.Array], tuple[int, ...]]:
    """For each kernel offset (row-major), the strided view of ``padded`` (``(N, *spatial, C)``,
    padding included) that it sees; and the output size."""
    out = tuple((size - k) // s + 1 for size, k, s in zip(padded.shape[1:-1], kernel, strides, strict=True))
    offsets = list(itertools.product(*(range(k) for k in kernel)))
    views = [padded[(slice(None), *(taps(o, s, n) for o, s, n in zip(offset, strides, out, strict=True)))]
             for offset in offsets]
    return offsets, views, out
