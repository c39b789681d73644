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
        reduce_axes = tuple(range(x.ndim - 1))
        stats_dtype = reduction_dtype(x.dtype)
        ra_mean = self.variable('batch_stats', 'mean', lambda: jnp.zeros((features,), stats_dtype))
        ra_var = self.variable('batch_stats', 'var', lambda: jnp.ones((features,), stats_dtype))

        if use_running_average:
            mean, var = ra_mean.value, ra_var.value
        else:
            xf = x.astype(stats_dtype)
            mean = xf.mean(reduce_axes)
            var = jnp.square(xf - mean).mean(reduce_axes)
            if not self.is_initializing():
                n = x.size // features
                unbiased = var * (n / max(n - 1, 1))
                ra_mean.value = self.momentum * ra_mean.value + (1 - self.momentum) * mean
                ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * unbiased

        y = (x - mean) * jax.lax.rsqrt(var + self.epsilon)
        if self.use_scale:
            y = y * self.param('scale', self.scale_init, (features,), self.param_dtype)
        if self.use_bias:
            y = y + self.param('bias', self.bias_init, (features,), self.param_dtype)
        return y.astype(self.dtype or x.dtype)
