"""Multi-head attention through ``jax.nn.dot_product_attention``.

Arrays are ``(batch, length, heads, head_dim)`` (jax's BTNH). ``attend`` computes
``softmax(q k^T * scale + bias) v``; with no attention dropout it is one
``jax.nn.dot_product_attention`` call, which XLA fuses and which runs cuDNN's fused
attention on GPUs. Attention dropout (``attn_drop > 0`` in training; MMAction2's recipes
leave it at 0) needs the probabilities themselves and takes the explicit path, and so
does float64 (``jax.nn.dot_product_attention`` always takes its softmax in float32).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from actionjax.precision import reduction_dtype

# MMAction2 initialises its Linear layers with trunc_normal(std=0.02), bias 0.
trunc_normal_02 = nn.initializers.truncated_normal(0.02)


def attend(query: jax.Array, key: jax.Array, value: jax.Array, bias: jax.Array | None = None, *,
           scale: float | None = None, dropout_rate: float = 0.0,
           dropout_rng: jax.Array | None = None) -> jax.Array:
    """Scaled dot-product attention of ``(B, T, N, H)`` queries over ``(B, S, N, H)`` keys.

    ``bias`` broadcasts to ``(B, N, T, S)`` and is added to the scaled logits (relative
    position biases, Swin's -100 window mask). ``dropout_rng`` with ``dropout_rate > 0``
    drops attention probabilities as torch's ``attn_drop`` does.
    """
    no_dropout = dropout_rate == 0.0 or dropout_rng is None
    if no_dropout and jnp.dtype(query.dtype).itemsize <= 4:
        return jax.nn.dot_product_attention(query, key, value, bias=bias, scale=scale)
    scale = query.shape[-1] ** -0.5 if scale is None else scale
    logits = jnp.einsum('btnh,bsnh->bnts', query * scale, key)
    if bias is not None:
        logits = logits + bias
    probs = jax.nn.softmax(logits.astype(reduction_dtype(logits.dtype)), axis=-1).astype(value.dtype)
    if not no_dropout:
        keep = jax.random.bernoulli(dropout_rng, 1.0 - dropout_rate, probs.shape)
        probs = jnp.where(keep, probs / (1.0 - dropout_rate), 0)
    return jnp.einsum('bnts,bsnh->btnh', probs, value)


def split_heads(qkv: jax.Array, num_heads: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(B, L, 3 * C)`` fused projections -> q, k, v of ``(B, L, heads, C / heads)``.

    The channel order is torch's: q, k, v, each split into heads.
    """
    b, length, channels = qkv.shape
    qkv = qkv.reshape(b, length, 3, num_heads, channels // (3 * num_heads))
    return qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]


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
            k, v = kv[:, :, 0], kv[:, :, 1]
        rng = self.make_rng('dropout') if train and self.dropout > 0 else None
        out = attend(q, k, v, dropout_rate=self.dropout, dropout_rng=rng)
        return nn.Dense(e, bias_init=nn.initializers.zeros, name='out_proj')(merge_heads(out))
