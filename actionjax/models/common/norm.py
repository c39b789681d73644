"""BatchNorm with torch's training semantics, as a ``flax.linen.BatchNorm`` subclass.

At inference it is exactly ``flax.linen.BatchNorm``. In training it differs in the
two places where torch.nn.BatchNorm2d and flax disagree, so that running statistics
drift the same way as in MMAction2:

* the running variance is updated with the *unbiased* batch variance (n / (n - 1));
  the batch itself is normalised with the biased one, as in torch;
* the batch variance is computed in two passes, mean((x - mean)^2), which is what
  torch computes and is more accurate than E[x^2] - E[x]^2 in float32.

``momentum=0.9`` here is torch's ``momentum=0.1`` (flax keeps ``momentum`` of the old
value, torch mixes in ``momentum`` of the new one); ``epsilon=1e-5`` is torch's eps.

Statistics are reduced, kept and applied in ``reduction_dtype(x.dtype)``: float32 for a
bfloat16 input (mixed precision), float64 for a float64 one; only the output takes the
input's dtype.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from actionjax.precision import reduction_dtype


class BatchNorm(nn.BatchNorm):
    """Normalises over every axis but the last (channels-last), torch-style."""

    momentum: float = 0.9
    epsilon: float = 1e-5

    @nn.compact
    def __call__(self, x: jax.Array, use_running_average: bool | None = None, *, mask: Any = None
                 ) -> jax.Array:
        if mask is not None or self.axis_name is not None or self.axis not in (-1, x.ndim - 1):
            raise NotImplementedError('BatchNorm: mask, axis_name and axis != -1 are not supported; '
                                      'under jit a batch sharded over devices is already normalised '
                                      'with global statistics')
        use_running_average = nn.merge_param(
            'use_running_average', self.use_running_average, use_running_average)
        features = x.shape[-1]
        stats_dtype = reduction_dtype(x.dtype)
        ra_mean = self.variable('batch_stats', 'mean', lambda: jnp.zeros((features,), stats_dtype))
        ra_var = self.variable('batch_stats', 'var', lambda: jnp.ones((features,), stats_dtype))

        shape = (features,)
        scale = self.param('scale', self.scale_init, shape, self.param_dtype) if self.use_scale else None
        bias = self.param('bias', self.bias_init, shape, self.param_dtype) if self.use_bias else None
        out_dtype = self.dtype or x.dtype
        if use_running_average:
            mean, var = ra_mean.value, ra_var.value
            y = (x - mean) * jax.lax.rsqrt(var + self.epsilon)
            y = y if scale is None else y * scale
            y = y if bias is None else y + bias
            return y.astype(out_dtype)

        one = jnp.ones((features,), stats_dtype)
        y, mean, var = batch_norm_train(x, one if scale is None else scale,
                                        jnp.zeros_like(one) if bias is None else bias, self.epsilon)
        if not self.is_initializing():
            n = x.size // features
            unbiased = var * (n / max(n - 1, 1))
            ra_mean.value = self.momentum * ra_mean.value + (1 - self.momentum) * mean
            ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * unbiased
        return y.astype(out_dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def batch_norm_train(x: jax.Array, scale: jax.Array, bias: jax.Array, epsilon: float
                     ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(y, mean, var)`` of a batch in training mode: ``y = (x - mean) / sqrt(var + eps) * scale + bias``
    over every axis but the last, with the biased variance ``mean((x - mean)^2)``.

    Its gradient is written out (``_batch_norm_vjp``): two reductions and one elementwise pass,
    where autodiff of the forward expression makes XLA:CPU run several more passes over the
    activations. Numbers are those of the forward expression's derivative.
    """
    return _batch_norm_fwd(x, scale, bias, epsilon)[0]


def _batch_norm_fwd(x: jax.Array, scale: jax.Array, bias: jax.Array, epsilon: float) -> tuple:
    axes = tuple(range(x.ndim - 1))
    xf = x.astype(reduction_dtype(x.dtype))
    mean = xf.mean(axes)
    var = jnp.square(xf - mean).mean(axes)
    rstd = jax.lax.rsqrt(var + epsilon)
    y = (x - mean) * rstd * scale + bias
    return (y, mean, var), (x, mean, rstd, scale)


def _batch_norm_vjp(epsilon: float, res: tuple, cotangents: tuple) -> tuple:
    del epsilon
    x, mean, rstd, scale = res
    dy, dmean, dvar = cotangents
    axes = tuple(range(x.ndim - 1))
    n = x.size // x.shape[-1]
    xc = x.astype(mean.dtype) - mean
    xhat = xc * rstd
    dy = dy.astype(mean.dtype)
    dbias = dy.sum(axes)
    dscale = (dy * xhat).sum(axes)
    # d/dx of y, then of the mean and (biased) variance returned beside it
    dx = (scale * rstd) * (dy - (dbias + xhat * dscale) / n) + (dmean + 2 * dvar * xc) / n
    return dx.astype(x.dtype), dscale.astype(scale.dtype), dbias.astype(scale.dtype)


batch_norm_train.defvjp(_batch_norm_fwd, _batch_norm_vjp)
