"""torch's default initialisation of ``nn.Linear`` / ``nn.ConvNd``, for models that keep it.

torch draws weights from ``kaiming_uniform_(a=sqrt(5))``, i.e. ``U(-b, b)`` with
``b = 1 / sqrt(fan_in)``, and biases from the same ``U(-b, b)``; ``fan_in`` is
``in_channels / groups * prod(kernel_size)``. MMAction2's localizers (BMN, BSN) never
re-initialise their layers, so they train from these.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

# variance 1/3 * 1/fan_in, uniform: the bound is sqrt(3 * var) = 1 / sqrt(fan_in). Flax computes
# fan_in from the kernel shape (every axis but the last two, times in-features), as torch does.
torch_kernel_init = jax.nn.initializers.variance_scaling(1.0 / 3.0, 'fan_in', 'uniform')


def torch_bias_init(fan_in: int) -> Callable[..., jax.Array]:
    """``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` for a layer with ``fan_in`` inputs per output."""
    bound = 1.0 / math.sqrt(fan_in)

    def init(key: jax.Array, shape: tuple[int, ...], dtype: jnp.dtype = jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init
