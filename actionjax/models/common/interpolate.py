"""torch's ``F.interpolate`` (``align_corners=False``) as matrices, for resizing position tables.

Transformers resize their position embeddings and relative position tables when the input
grid differs from the one they were built for. These are small, so the resize is a
matrix product with weights computed in numpy: ``out = M @ x`` along each axis, where
``M`` holds torch's sampling weights (source pixel ``(i + 0.5) * in / out - 0.5``;
bicubic with torch's ``A = -0.75`` and edge indices clamped, linear clamped at the ends).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

CUBIC_A = -0.75  # torch's (and OpenCV's) bicubic coefficient; jax.image uses -0.5


def _cubic(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    near = ((CUBIC_A + 2) * x - (CUBIC_A + 3)) * x * x + 1
    far = ((CUBIC_A * x - 5 * CUBIC_A) * x + 8 * CUBIC_A) * x - 4 * CUBIC_A
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


def interpolation_matrix(in_size: int, out_size: int, mode: str = 'bicubic') -> np.ndarray:
    """``(out_size, in_size)`` float64 weights of torch's 1-D ``mode`` resampling."""
    weights = np.zeros((out_size, in_size))
    src = (np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5
    if mode == 'bicubic':
        base = np.floor(src).astype(int)
        for k in range(-1, 3):
            index = np.clip(base + k, 0, in_size - 1)
            np.add.at(weights, (np.arange(out_size), index), _cubic(src - (base + k)))
    elif mode == 'linear':
        src = np.maximum(src, 0.0)
        low = np.minimum(np.floor(src).astype(int), in_size - 1)
        high = np.minimum(low + 1, in_size - 1)
        frac = src - low
        np.add.at(weights, (np.arange(out_size), low), 1 - frac)
        np.add.at(weights, (np.arange(out_size), high), frac)
    else:
        raise ValueError(f'interpolation mode {mode!r} is not supported (bicubic, linear)')
    return weights


def resize_axes(x: jax.Array, sizes: Sequence[int], axes: Sequence[int], mode: str = 'bicubic') -> jax.Array:
    """``x`` resampled to ``sizes`` along ``axes`` (one axis after the other), as torch does."""
    for size, axis in zip(sizes, axes, strict=True):
        if x.shape[axis] == size:
            continue
        matrix = jnp.asarray(interpolation_matrix(x.shape[axis], size, mode), x.dtype)
        x = jnp.moveaxis(jnp.tensordot(matrix, x, axes=([1], [axis])), 0, axis)
    return x
