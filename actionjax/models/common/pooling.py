"""Max pooling as torch's ``MaxPoolNd`` (pads with -inf, floors), with a gradient written out.

XLA lowers the gradient of ``lax.reduce_window(max)`` to a select-and-scatter that runs
slowly on CPU (ResNet-50's 3x3 stride-2 stem pool at 6 x 56 x 56 x 64: forward and
gradient 23 ms, of a 390 ms train step). Here the pool is the maximum over its kernel's
strided views, and its gradient routes each output's cotangent to the first view (in
row-major kernel order) that holds the maximum, as torch's ``max_pool`` backward does
with the index it recorded: 4 ms for the same pool, with equal gradients, ties included.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

from actionjax.models.common.windows import kernel_views


def max_pool(x: jax.Array, kernel: Sequence[int], strides: Sequence[int],
             padding: Sequence[tuple[int, int]]) -> jax.Array:
    """Max-pool the spatial axes of channels-last ``x`` (``(N, *spatial, C)``).

    ``kernel``, ``strides`` and ``padding`` (``(lo, hi)`` pairs) have one entry per spatial
    axis; padded positions are -inf, so they never win."""
    return _max_pool(x, tuple(kernel), tuple(strides), tuple(tuple(p) for p in padding))


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _max_pool(x: jax.Array, kernel: tuple, strides: tuple, padding: tuple) -> jax.Array:
    return _max_pool_fwd(x, kernel, strides, padding)[0]


def _pad(x: jax.Array, padding: tuple) -> jax.Array:
    return jnp.pad(x, ((0, 0), *padding, (0, 0)), constant_values=-jnp.inf)


def _max_pool_fwd(x: jax.Array, kernel: tuple, strides: tuple, padding: tuple
                  ) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    _, views, _ = kernel_views(_pad(x, padding), kernel, strides)
    y = functools.reduce(jnp.maximum, views)
    return y, (x, y)


def _max_pool_bwd(kernel: tuple, strides: tuple, padding: tuple, residuals: tuple[jax.Array, jax.Array],
                  g: jax.Array) -> tuple[jax.Array]:
    x, y = residuals
    padded = _pad(x, padding)
    offsets, views, out = kernel_views(padded, kernel, strides)
    padded_shape = padded.shape[1:-1]
    claimed = jnp.zeros(y.shape, bool)
    dx = jnp.zeros(padded.shape, g.dtype)
    zero = jnp.zeros((), g.dtype)
    for offset, view in zip(offsets, views, strict=True):
        wins = (view == y) & ~claimed  # the first offset holding the max takes the gradient
        claimed = claimed | wins
        # a strided view's transpose: spread its values back with (stride - 1) zeros between
        spread = [(o, size - o - (s * (n - 1) + 1), s - 1)
                  for o, size, s, n in zip(offset, padded_shape, strides, out, strict=True)]
        dx = dx + lax.pad(jnp.where(wins, g, zero), zero, ((0, 0, 0), *spread, (0, 0, 0)))
    crop = tuple(slice(lo, lo + size) for size, (lo, _) in zip(x.shape[1:-1], padding, strict=True))
    return (dx[(slice(None), *crop)],)


_max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)
