"""Stochastic depth (mmcv's / timm's ``DropPath``) with Flax's ``'dropout'`` rng.

In training each sample's residual branch is zeroed with probability ``rate`` and the
survivors are scaled by ``1 / (1 - rate)``; at test time it is the identity.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class DropPath(nn.Module):
    """Drops the whole branch of a sample (axis 0) at ``rate``; needs the 'dropout' rng."""

    rate: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array, deterministic: bool = True) -> jax.Array:
        if deterministic or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        kept = jax.random.bernoulli(self.make_rng('dropout'), keep, shape)
        return jnp.where(kept, x / keep, jnp.zeros_like(x))
