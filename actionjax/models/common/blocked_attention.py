"""Attention block by block, for CPUs: ``softmax(q k^T * scale + bias) v`` one cache-sized
block of logits at a time, forward and backward.

Written whole, the logits of a video transformer are large (Swin-T's first stage at 32 x 112
px: 64 windows x 3 heads x 392 x 392 floats, 118 MB). XLA:CPU writes them to a fresh buffer
each step and then passes over them several times (bias, max, exp, sum, divide, and as many
again in the backward pass), so attention runs at memory speed, a tenth of its matmuls' speed.
Here a loop takes some windows (or, for one long sequence, some query rows) at a time:
their logits stay in cache, the softmax's normalisation is applied to the output, and the
backward pass recomputes each block's probabilities from the saved log-sum-exp instead of
storing them (as flash attention does on GPUs). One first-stage Swin-T attention: forward
183 -> 58 ms, forward plus backward 338 -> 222 to 271 ms (torch: 166 and 297 ms).

The loop visits the batch axes of ``q`` (all but the last one by one, the last in runs of
windows) and, when one window's logits exceed ``WINDOW_BYTES``, its query rows in blocks.
Each bias term is sliced along the axes it has; its gradient is summed over the ones it
broadcasts along.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from actionjax.precision import reduction_dtype

# A step takes windows whose logits add up to at most this much (a few MB stay in this
# CPU's caches: 1.25 MB L2 per core, a shared L3)...
ROWS_BYTES = 2 << 20
# ...or one window's query rows in blocks of at most this much logits. Splitting a window
# makes its backward pass accumulate key and value gradients over the blocks, which costs
# more than the cache saves until a window is this large (Swin-T's third stage, 12 heads x
# 392 x 392: 77 ms forward plus backward whole, 91 ms in 2 MB blocks, 72 ms plain).
WINDOW_BYTES = 8 << 20
# Below this much logits in all, the plain einsums are as fast.
MIN_LOGITS_BYTES = 16 << 20


class Plan(NamedTuple):
    """How the loop walks ``q (*lead, T, N, H)``: one step per index of ``lead[:-1]``,
    per ``rows`` windows of ``lead[-1]``, per ``queries`` rows of ``T`` (``T`` padded up
    to a multiple of it)."""

    rows: int
    queries: int


def plan(q_shape: Sequence[int], kv_length: int, dtype: np.dtype) -> Plan | None:
    """The loop for this attention, or None where the plain einsums are as fast."""
    *lead, length, heads, _ = q_shape
    if not lead:
        return None
    window_bytes = heads * length * kv_length * np.dtype(dtype).itemsize
    if math.prod(lead) * window_bytes < MIN_LOGITS_BYTES:
        return None
    if window_bytes > WINDOW_BYTES:
        blocks = -(-window_bytes // WINDOW_BYTES)
        return Plan(1, -(-length // blocks))
    rows = max(r for r in range(1, lead[-1] + 1)
               if lead[-1] % r == 0 and r * window_bytes <= max(ROWS_BYTES, window_bytes))
    return Plan(rows, length)


def blocked_attention(query: jax.Array, key: jax.Array, value: jax.Array, biases: tuple[jax.Array, ...],
                      scale: float, how: Plan) -> jax.Array:
    """``softmax(q k^T * scale + sum(biases)) v`` by blocks: arrays as ``attention.attend``
    takes them (``(..., T, N, H)``, each bias broadcasting to ``(..., N, T, S)``)."""
    return _attention(query, key, value, tuple(jnp.asarray(b) for b in biases), scale, how)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def _attention(query, key, value, biases, scale, how):
    return _forward(query, key, value, biases, scale, how)[0]


def _heads_first(x):
    """``(*lead, T, N, H)`` -> ``(*lead, N, T, H)``: each block's products are then plain
    batched matmuls, with no transposes inside the loop."""
    return x.swapaxes(-2, -3)


def _forward(query, key, value, biases, scale, how):
    grid = _Grid(query.shape, how)
    dtype = reduction_dtype(query.dtype)
    query, biases = grid.pad(_heads_first(query).astype(dtype), biases)
    key, value = (_heads_first(t).astype(dtype) for t in (key, value))
    out = jnp.zeros((*query.shape[:-1], value.shape[-1]), dtype)
    lse = jnp.zeros(query.shape[:-1], dtype)

    def step(i, carry):
        out, lse = carry
        at = grid.at(i)
        v = grid.take(value, at, keys=True)
        logits = _logits(grid, at, query, key, biases, scale)
        peak = logits.max(axis=-1, keepdims=True)
        weights = jnp.exp(logits - peak)
        total = weights.sum(axis=-1, keepdims=True)
        out = grid.put(out, at, jnp.einsum('pnts,pnsh->pnth', weights, v) / total)
        lse = grid.put(lse, at, (peak + jnp.log(total))[..., 0])
        return out, lse

    out, lse = jax.lax.fori_loop(0, grid.steps, step, (out, lse))
    return _heads_first(grid.unpad(out)).astype(value.dtype), (out, lse)


def _attention_fwd(query, key, value, biases, scale, how):
    out, (padded_out, lse) = _forward(query, key, value, biases, scale, how)
    return out, (query, key, value, biases, padded_out, lse)


def _attention_bwd(scale, how, residuals, grad):
    query, key, value, biases, out, lse = residuals
    grid = _Grid(query.shape, how)
    dtype = reduction_dtype(query.dtype)
    padded_query, padded_biases = grid.pad(_heads_first(query).astype(dtype), biases)
    heads_key, heads_value = (_heads_first(t).astype(dtype) for t in (key, value))
    grad = grid.pad(_heads_first(grad).astype(dtype), ())[0]
    row_dot = jnp.sum(grad * out, axis=-1)  # sum_j P_ij dP_ij, (*lead, N, T)
    zeros = tuple(jnp.zeros(t.shape, dtype) for t in (padded_query, heads_key, heads_value, *padded_biases))

    def step(i, grads):
        dq, dk, dv, *dbiases = grads
        at = grid.at(i)
        q, k, v, g = (grid.take(padded_query, at), grid.take(heads_key, at, keys=True),
                      grid.take(heads_value, at, keys=True), grid.take(grad, at))
        logits = _logits(grid, at, padded_query, heads_key, padded_biases, scale)
        probs = jnp.exp(logits - grid.take(lse, at)[..., None])
        dprobs = jnp.einsum('pnth,pnsh->pnts', g, v)
        dlogits = probs * (dprobs - grid.take(row_dot, at)[..., None])
        dq = grid.put(dq, at, jnp.einsum('pnts,pnsh->pnth', dlogits, k) * scale)
        dk = grid.add(dk, at, jnp.einsum('pnts,pnth->pnsh', dlogits, q) * scale, keys=True)
        dv = grid.add(dv, at, jnp.einsum('pnts,pnth->pnsh', probs, g), keys=True)
        return dq, dk, dv, *(grid.add_bias(db, at, dlogits) for db in dbiases)

    dq, dk, dv, *dbiases = jax.lax.fori_loop(0, grid.steps, step, zeros)
    dq, dk, dv = (_heads_first(t).astype(like.dtype) for t, like in
                  ((grid.unpad(dq), query), (dk, key), (dv, value)))
    dbiases = tuple(grid.unpad_bias(db, b.shape).astype(b.dtype)
                    for db, b in zip(dbiases, biases, strict=True))
    return dq, dk, dv, dbiases


_attention.defvjp(_attention_fwd, _attention_bwd)


def _logits(grid, at, query, key, biases, scale):
    """A step's ``q k^T * scale + biases``, ``(P, N, T, S)``."""
    q, k = grid.take(query, at), grid.take(key, at, keys=True)
    logits = jnp.einsum('pnth,pnsh->pnts', q * scale, k)
    for bias in biases:
        logits = logits + grid.take(bias, at).astype(logits.dtype)
    return logits


class _Grid:
    """The loop's steps over ``q (*lead, N, T, H)`` and the block each step takes.

    A step's position ``at`` is one start per lead axis and the start of its query rows.
    Arrays whose axis after ``lead`` and heads is the query axis (queries, outputs,
    ``lse``, biases; any of their axes may be 1, broadcast) and keys and values (no query
    axis: all their rows) are sliced to ``(P, ...)``, ``P`` the step's windows."""

    def __init__(self, q_shape: Sequence[int], how: Plan):
        # ``q_shape`` as ``attend`` takes the query, ``(*lead, T, N, H)``
        *self.lead, self.length, _, _ = q_shape
        self.rows, self.queries = how
        self.padded = -(-self.length // self.queries) * self.queries
        # step counts per lead axis (the last one in runs of ``rows``), then per query block
        self.counts = (*self.lead[:-1], self.lead[-1] // self.rows, self.padded // self.queries)
        self.steps = math.prod(self.counts)

    def at(self, i: jax.Array) -> list[jax.Array]:
        starts = []
        for count in reversed(self.counts):
            starts.append(i % count)
            i = i // count
        starts = starts[::-1]
        starts[-2] = starts[-2] * self.rows
        starts[-1] = starts[-1] * self.queries
        return starts

    def _block(self, shape, at, keys=False):
        """Starts and sizes of the step's block of an array of that shape."""
        n = len(self.lead)
        starts, sizes = [], []
        for axis, size in enumerate(shape):
            if axis < n and size != 1:
                starts.append(at[axis]), sizes.append(self.rows if axis == n - 1 else 1)
            elif axis == n + 1 and size != 1 and not keys:
                starts.append(at[-1]), sizes.append(self.queries)
            else:
                starts.append(0), sizes.append(1 if axis < n else size)
        return starts, sizes

    def take(self, x, at, *, keys=False):
        starts, sizes = self._block(x.shape, at, keys)
        block = jax.lax.dynamic_slice(x, starts, sizes)
        return block.reshape(-1, *block.shape[len(self.lead):])

    def _update(self, x, at, block, keys, accumulate):
        starts, sizes = self._block(x.shape, at, keys)
        block = block.reshape(sizes).astype(x.dtype)
        if accumulate:
            block = block + jax.lax.dynamic_slice(x, starts, sizes)
        return jax.lax.dynamic_update_slice(x, block, starts)

    def put(self, x, at, block):
        return self._update(x, at, block, keys=False, accumulate=False)

    def add(self, x, at, block, *, keys=False):
        return self._update(x, at, block, keys, accumulate=True)

    def add_bias(self, x, at, dlogits):
        """Add a step's logit gradients into a bias term's gradient ``x``, summed over the
        axes the term broadcasts along."""
        n = len(self.lead)
        _, sizes = self._block(x.shape, at)
        block_shape = (math.prod(sizes[:n]), *sizes[n:])
        summed = dlogits.sum(axis=tuple(a for a, size in enumerate(block_shape) if size == 1
                                        and dlogits.shape[a] != 1), keepdims=True)
        return self.add(x, at, summed)

    def pad(self, query, biases):
        """``query`` (heads first) and the biases (each with its missing lead axes as 1s),
        padded along the query axis to whole query blocks with zeros."""
        n, extra = len(self.lead), self.padded - self.length
        rows = [(0, extra if axis == n + 1 else 0) for axis in range(n + 3)]
        if extra:
            query = jnp.pad(query, rows)
        padded = []
        for bias in biases:
            full = bias.reshape((1,) * (n + 3 - bias.ndim) + bias.shape)
            padded.append(jnp.pad(full, rows) if extra and full.shape[n + 1] != 1 else full)
        return query, tuple(padded)

    def unpad(self, x):
        return x[(slice(None),) * (len(self.lead) + 1) + (slice(0, self.length),)]

    def unpad_bias(self, grad, shape):
        """A bias gradient (padded, with lead axes as 1s) back to the bias's own shape."""
        if grad.shape[len(self.lead) + 1] != 1:
            grad = self.unpad(grad)
        return grad.reshape(shape)
