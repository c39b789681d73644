"""A 2D convolution whose weight gradient is a sum of matmuls over row patches, by chunks.

XLA:CPU computes the weight gradient of a convolution as another convolution, which runs
slowly where the input has few channels (RGB stems) or many pixels: I3D-R50's 7x7 stem
(one temporal tap, 32 frames at 112 px) takes 61 ms for its weight gradient, its 3x3 convs
at 16 x 28 x 28 x 64 take 27 ms. Written out, dW[i, j] = sum over output pixels of the input
pixel at offset (i, j) times the output's cotangent. For each kernel row i that is one
matmul of the row's patches (the kw column offsets side by side, kw * C wide) with the
cotangent; chunks of at most ``ROWS_PER_CHUNK`` output pixels, summed in a loop, keep both
operands in cache: 30 ms and 15 ms for the two convs above, the same sums in another order.
The forward pass and the input gradient stay XLA's.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from actionjax.models.common.windows import taps

# Output pixels per chunk of the weight gradient: a chunk's row patches (49 KB per 1000
# pixels of a 7x7 RGB stem, 768 KB of a 3x3 conv on 64 channels) stay near the core.
ROWS_PER_CHUNK = 8192

_NHWC = ('NHWC', 'HWIO', 'NHWC')


def conv2d(x: jax.Array, kernel: jax.Array, strides: Sequence[int], padding: Sequence[tuple[int, int]],
           precision: Any = None) -> jax.Array:
    """``lax.conv_general_dilated`` on NHWC / HWIO, with the weight gradient above."""
    return _conv2d(x, kernel, tuple(strides), tuple(tuple(p) for p in padding), precision)


def _lax_conv(x: jax.Array, kernel: jax.Array, strides: tuple, padding: tuple, precision: Any) -> jax.Array:
    return lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=_NHWC, precision=precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv2d(x: jax.Array, kernel: jax.Array, strides: tuple, padding: tuple, precision: Any) -> jax.Array:
    return _lax_conv(x, kernel, strides, padding, precision)


def _conv2d_fwd(x: jax.Array, kernel: jax.Array, strides: tuple, padding: tuple, precision: Any
                ) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    return _lax_conv(x, kernel, strides, padding, precision), (x, kernel)


def _conv2d_bwd(strides: tuple, padding: tuple, precision: Any, residuals: tuple[jax.Array, jax.Array],
                g: jax.Array) -> tuple[jax.Array, jax.Array]:
    x, kernel = residuals
    _, input_vjp = jax.vjp(lambda x: _lax_conv(x, kernel, strides, padding, precision), x)
    (dx,) = input_vjp(g)  # dead code, removed by XLA, where x is the model's input
    return dx, weight_grad(x, g, kernel.shape, strides, padding, precision)


_conv2d.defvjp(_conv2d_fwd, _conv2d_bwd)


def weight_grad(x: jax.Array, g: jax.Array, kernel_shape: Sequence[int], strides: Sequence[int],
                padding: Sequence[tuple[int, int]], precision: Any = None) -> jax.Array:
    """dW of a (kh, kw, C, O) conv of ``x`` (N, H, W, C) whose output has cotangent ``g``."""
    kh, kw, c, o = kernel_shape
    n, ho, wo = g.shape[:3]
    frames = _frames_per_chunk(n, ho * wo)
    x = jnp.pad(x, ((0, 0), *padding, (0, 0)))
    xs = x.reshape(n // frames, frames, *x.shape[1:])
    gs = g.reshape(n // frames, frames * ho * wo, o)
    sh, sw = strides

    def chunk(operands: tuple[jax.Array, jax.Array]) -> jax.Array:
        x, g = operands
        # (frames, Hp, wo, kw * C): the kw column offsets of every row, side by side
        columns = jnp.concatenate([x[:, :, taps(j, sw, wo)] for j in range(kw)], axis=-1)
        rows = [columns[:, taps(i, sh, ho)].reshape(-1, kw * c) for i in range(kh)]
        return jnp.stack([lax.dot(r.T, g, precision=precision) for r in rows])

    if xs.shape[0] == 1:
        grads = chunk((xs[0], gs[0]))
    else:  # the chunks' sums add up in float32 at least (bfloat16 partial sums would drift)
        grads = lax.map(chunk, (xs, gs)).sum(0, dtype=jnp.promote_types(x.dtype, jnp.float32))
    return grads.reshape(kh, kw, c, o).astype(x.dtype)


def _frames_per_chunk(frames: int, pixels_per_frame: int) -> int:
    """The most frames, dividing ``frames``, whose output pixels fit in a chunk (at least one)."""
    fit = max(1, ROWS_PER_CHUNK // pixels_per_frame)
    return max(d for d in range(1, min(frames, fit) + 1) if frames % d == 0)
