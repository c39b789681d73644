"""``attend``, its bias and its blocked CPU path: every attention path equals the formula,
gradients included; and the transformers' GELU is the exact one."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from actionjax.models.common import blocked_attention as blocked_attention_module
from actionjax.models.common.attention import _fused_attention, add_bias, attend
from actionjax.models.common.blocked_attention import Plan, blocked_attention, plan
from actionjax.models.common.ffn import gelu


@pytest.fixture(autouse=True)
def float64():
    with jax.enable_x64(True):
        yield


def reference(q, k, v, biases, scale):
    logits = jnp.einsum('...tnh,...snh->...nts', q * scale, k)
    for bias in biases:
        logits = logits + bias
    return jnp.einsum('...nts,...snh->...tnh', jax.nn.softmax(logits, axis=-1), v)


@pytest.mark.parametrize('x_shape, bias_shape', [
    ((2, 5, 3, 4, 4), (3, 4, 4)),         # one bias for every window (Swin's position bias)
    ((2, 5, 3, 4, 4), (5, 1, 4, 4)),      # one per window, for all heads (Swin's mask)
    ((6, 3, 4, 4), (1, 3, 1, 4)),         # an inner broadcast axis too
    ((6, 3, 4, 4), (6, 3, 4, 4)),         # no broadcast (MViT's relative positions)
])
def test_add_bias_gradient_sums_over_the_broadcast_axes(x_shape, bias_shape):
    rng = np.random.default_rng(0)
    x, weight = (jnp.asarray(rng.standard_normal(x_shape)) for _ in range(2))
    bias = jnp.asarray(rng.standard_normal(bias_shape))

    def loss(x, bias, add):
        return jnp.sum(jnp.sin(add(x, bias)) * weight)

    ours = jax.grad(loss, argnums=(0, 1))(x, bias, add_bias)
    plain = jax.grad(loss, argnums=(0, 1))(x, bias, jnp.add)
    assert ours[1].shape == bias_shape
    for a, b in zip(ours, plain, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_both_paths_equal_the_formula_with_batch_axes_and_several_biases():
    rng = np.random.default_rng(1)
    q, k, v = (jnp.asarray(rng.standard_normal((2, 3, 7, 2, 4))) for _ in range(3))  # (B, windows, T, N, H)
    position = jnp.asarray(rng.standard_normal((2, 7, 7)))                            # (N, T, S)
    mask = np.where(rng.random((3, 1, 7, 7)) < 0.5, 0.0, -100.0)                      # (windows, 1, T, S)
    expected = reference(q, k, v, (position, mask), 0.5)

    np.testing.assert_allclose(attend(q, k, v, (position, mask), scale=0.5), expected, rtol=1e-12, atol=1e-12)
    fused = _fused_attention(*(t.astype(jnp.float32) for t in (q, k, v)),
                             (position.astype(jnp.float32), mask.astype(np.float32)), 0.5)
    np.testing.assert_allclose(fused, expected, rtol=1e-5, atol=1e-5)

    def loss(fn):
        grad = jax.grad(lambda q, k, v, p: jnp.sum(fn(q, k, v, p) ** 2), argnums=(0, 1, 2, 3))
        return grad(q, k, v, position)

    ours = loss(lambda q, k, v, p: attend(q, k, v, (p, mask), scale=0.5))
    plain = loss(lambda q, k, v, p: reference(q, k, v, (p, mask), 0.5))
    for a, b in zip(ours, plain, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize('q_shape, kv_length, bias_shapes, how', [
    ((2, 6, 7, 2, 4), 7, [(2, 7, 7), (6, 1, 7, 7)], Plan(3, 7)),  # Swin: runs of windows; position bias, mask
    ((2, 6, 7, 2, 4), 7, [(2, 7, 7), (6, 1, 7, 7)], Plan(1, 3)),   # query blocks, the last one padded
    ((3, 11, 2, 4), 5, [(3, 2, 11, 5)], Plan(1, 4)),               # MViT: pooled keys, a full bias
    ((3, 11, 2, 4), 5, [(1, 2, 1, 5), (3, 1, 11, 1)], Plan(1, 11)),  # inner broadcast axes
    ((4, 9, 2, 4), 9, [], Plan(2, 5)),                             # no bias, windows and query blocks
])
def test_blocked_attention_equals_the_formula(q_shape, kv_length, bias_shapes, how):
    rng = np.random.default_rng(2)
    kv_shape = (*q_shape[:-3], kv_length, *q_shape[-2:])
    q, weight = (jnp.asarray(rng.standard_normal(q_shape)) for _ in range(2))
    k, v = (jnp.asarray(rng.standard_normal(kv_shape)) for _ in range(2))
    biases = tuple(jnp.asarray(rng.standard_normal(shape)) for shape in bias_shapes)

    np.testing.assert_allclose(blocked_attention(q, k, v, biases, 0.5, how), reference(q, k, v, biases, 0.5),
                               rtol=1e-12, atol=1e-12)

    def grads(fn):
        return jax.grad(lambda *args: jnp.sum(fn(*args) * weight), argnums=(0, 1, 2, 3))(q, k, v, biases)

    ours = grads(lambda q, k, v, b: blocked_attention(q, k, v, b, 0.5, how))
    plain = grads(lambda q, k, v, b: reference(q, k, v, b, 0.5))
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(plain), strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_attend_takes_blocks_for_large_logits_only(monkeypatch):
    # Swin-T's first stage at 32 x 112 px: one window (3 heads x 392 x 392 floats) per step
    assert plan((64, 392, 3, 32), 392, np.float32) == Plan(1, 392)
    # VideoMAE's ViT-B, 1568 tokens x 12 heads: query blocks
    assert plan((2, 1568, 12, 64), 1568, np.float32).queries < 1568
    assert plan((2, 49, 3, 32), 49, np.float32) is None  # small: the plain einsums

    monkeypatch.setattr(blocked_attention_module, 'MIN_LOGITS_BYTES', 0)
    rng = np.random.default_rng(3)
    q, k, v = (jnp.asarray(rng.standard_normal((2, 3, 7, 2, 4))) for _ in range(3))
    mask = np.where(rng.random((3, 1, 7, 7)) < 0.5, 0.0, -100.0)
    np.testing.assert_allclose(attend(q, k, v, mask, scale=0.5), reference(q, k, v, (mask,), 0.5),
                               rtol=1e-12, atol=1e-12)


def test_gelu_is_the_exact_gelu():
    x = jnp.linspace(-8.0, 8.0, 1601)
    np.testing.assert_allclose(gelu(x), jax.nn.gelu(x, approximate=False), rtol=0, atol=1e-15)
    slope = jax.grad(lambda x: gelu(x).sum())(x)
    exact_slope = jax.grad(lambda x: jax.nn.gelu(x, approximate=False).sum())(x)
    np.testing.assert_allclose(slope, exact_slope, rtol=0, atol=1e-14)
