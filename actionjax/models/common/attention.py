"""Multi-head attention: ``softmax(q k^T * scale + bias) v``.

Arrays are ``(..., length, heads, head_dim)`` (jax's BTNH, with any leading batch axes).
On GPUs and TPUs, with no attention dropout, ``attend`` is one
``jax.nn.dot_product_attention`` call with its default ``implementation=None``, which is
XLA's attention: jax does not choose cuDNN's fused kernel by itself, and that kernel takes
float16/bfloat16 only and limits bias shapes (choosing it waits for a GPU to measure on).
On CPU it is two einsums and a softmax: XLA:CPU runs that 1.4x (Swin's 392-token
windows) to 1.8x (a 1568-token ViT) faster than ``dot_product_attention`` for forward
plus backward; where the logits are large, the same computed one cache-sized block at a time
(``blocked_attention.py``: Swin-T's train step 1.2x, its inference 1.4x faster). Attention
dropout (``attn_drop > 0`` in training; MMAction2's recipes leave it at 0) needs the
probabilities themselves and takes the plain einsums on any device, and so does float64 on
GPUs and TPUs (``jax.nn.dot_product_attention`` always takes its softmax in float32).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from actionjax.models.common import blocked_attention
from actionjax.precision import reduction_dtype

# MMAction2 initialises its Linear layers with trunc_normal(std=0.02), bias 0.
trunc_normal_02 = nn.initializers.truncated_normal(0.02)


def attend(query: jax.Array, key: jax.Array, value: jax.Array,
           bias: jax.Array | Sequence[jax.Array] | None = None, *, scale: float | None = None,
           dropout_rate: float = 0.0, dropout_rng: jax.Array | None = None) -> jax.Array:
    """Scaled dot-product attention of ``(..., T, N, H)`` queries over ``(..., S, N, H)`` keys.

    ``bias``, an array or a sequence of arrays, each broadcasting to ``(..., N, T, S)``, is
    added to the scaled logits (relative position biases, Swin's -100 window mask); a bias
    shared by many windows is not copied for each. ``dropout_rng`` with ``dropout_rate > 0``
    drops attention probabilities as torch's ``attn_drop`` does.
    """
    biases = () if bias is None else (bias,) if isinstance(bias, jax.Array | np.ndarray) else tuple(bias)
    no_dropout = dropout_rate == 0.0 or dropout_rng is None
    on_cpu = jax.default_backend() == 'cpu'
    if no_dropout and jnp.dtype(query.dtype).itemsize <= 4 and not on_cpu:
        return _fused_attention(query, key, value, biases, scale)
    scale = query.shape[-1] ** -0.5 if scale is None else scale
    blocks = blocked_attention.plan(query.shape, key.shape[-3], reduction_dtype(query.dtype)) \
        if no_dropout and on_cpu else None
    if blocks:
        return blocked_attention.blocked_attention(query, key, value, biases, scale, blocks)
    logits = jnp.einsum('...tnh,...snh->...nts', query * scale, key)
    for term in biases:
        logits = add_bias(logits, term)
    probs = jax.nn.softmax(logits.astype(reduction_dtype(logits.dtype)), axis=-1).astype(value.dtype)
    if not no_dropout:
        keep = jax.random.bernoulli(dropout_rng, 1.0 - dropout_rate, probs.shape)
        probs = jnp.where(keep, probs / (1.0 - dropout_rate), 0)
    return jnp.einsum('...nts,...snh->...tnh', probs, value)


def _fused_attention(query: jax.Array, key: jax.Array, value: jax.Array, biases: tuple[jax.Array, ...],
                     scale: float | None) -> jax.Array:
    """``jax.nn.dot_product_attention``, which takes one batch axis and one whole bias."""
    lead = query.shape[:-3]
    bias = None
    if biases:
        logits_shape = (*lead, query.shape[-2], query.shape[-3], key.shape[-3])
        bias = sum(jnp.broadcast_to(term, logits_shape) for term in biases).reshape(-1, *logits_shape[-3:])
    out = jax.nn.dot_product_attention(*(t.reshape(-1, *t.shape[-3:]) for t in (query, key, value)),
                                       bias=bias, scale=scale)
    return out.reshape(*lead, *out.shape[1:])


@jax.custom_vjp
def add_bias(x: jax.Array, bias: jax.Array) -> jax.Array:
    """``x + bias`` (numpy broadcasting). The bias's gradient sums over the axes it was
    broadcast along, the leading ones as a matrix product with ones: XLA:CPU reduces over
    outer axes ~20x slower (Swin-T's 64 windows sharing one bias: 330 ms against 15)."""
    return x + bias


def _add_bias_fwd(x: jax.Array, bias: jax.Array) -> tuple[jax.Array, jax.Array]:
    return x + bias, bias


def _add_bias_bwd(bias: jax.Array, grad: jax.Array) -> tuple[jax.Array, jax.Array]:
    shape, dtype = bias.shape, bias.dtype
    padded = (1,) * (grad.ndim - len(shape)) + tuple(shape)
    lead = next((i for i, size in enumerate(padded) if size != 1), grad.ndim)
    summed = grad
    if lead:
        rows = int(np.prod(grad.shape[:lead]))
        summed = jnp.dot(jnp.ones((rows,), grad.dtype), grad.reshape(rows, -1),
                         preferred_element_type=reduction_dtype(grad.dtype)).reshape(grad.shape[lead:])
    inner = tuple(i for i, (size, full) in enumerate(zip(padded[lead:], summed.shape, strict=True))
                  if size == 1 and full != 1)
    if inner:
        summed = summed.sum(axis=inner, keepdims=True)
    return grad, summed.reshape(shape).astype(dtype)


add_bias.defvjp(_add_bias_fwd, _add_bias_bwd)


def split_heads(qkv: jax.Array, num_heads: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(B, L, 3 * C)`` fused projections -> q, k, v of ``(B, L, heads, C / heads)``.

    The channel order is torch's: q, k, v, each split into heads. A split, not three
    indexings: its gradient is one concatenation, where indexing's is three zero-padded
    copies summed.
    """
    b, length, channels = qkv.shape
    qkv = qkv.reshape(b, length, 3, num_heads, channels // (3 * num_heads))
    q, k, v = (t[:, :, 0] for t in jnp.split(qkv, 3, axis=2))
    return q, k, v


def merge_heads(x: jax.Array) -> jax.Array:
    """``(B, L, heads, head_dim)`` -> ``(B, L, heads * head_dim)``."""
    return x.reshape(x.shape[:2] + (-1,))


class TorchMultiheadAttention(nn.Module):
    """``torch.nn.MultiheadAttention`` (batch first), with its parameter names.

    The fused input projection stays a torch-layout parameter, ``in_proj_weight``
    ``(3 * E, E)`` and ``in_proj_bias``, so a checkpoint converts without reshaping;
    ``out_proj`` is a Dense (torch Linear). ``dropout`` is torch's attention dropout.
    Self-attention by default; ``key_value`` gives keys and values their own sequence
    (cross-attention, projected by the same fused weight's k and v rows).
    """

    embed_dims: int
    num_heads: int
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, *, key_value: jax.Array | None = None) -> jax.Array:
        e = self.embed_dims
        if e % self.num_heads:
            raise ValueError(f'embed_dims={e} is not divisible by num_heads={self.num_heads}')
        weight = self.param('in_proj_weight', nn.initializers.xavier_uniform(), (3 * e, e)).astype(x.dtype)
        bias = self.param('in_proj_bias', nn.initializers.zeros, (3 * e,)).astype(x.dtype)
        if key_value is None:
            q, k, v = split_heads(x @ weight.T + bias, self.num_heads)
        else:
            q = (x @ weight[:e].T + bias[:e]).reshape(*x.shape[:2], self.num_heads, -1)
            kv = (key_value @ weight[e:].T + bias[e:]).reshape(*key_value.shape[:2], 2, self.num_heads, -1)
            k, v = (t[:, :, 0] for t in jnp.split(kv, 2, axis=2))
        rng = self.make_rng('dropout') if train and self.dropout > 0 else None
        out = attend(q, k, v, dropout_rate=self.dropout, dropout_rng=rng)
        return nn.Dense(e, bias_init=nn.initializers.zeros, name='out_proj')(merge_heads(out))
