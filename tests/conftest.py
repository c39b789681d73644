"""Suite-wide settings.

JAX's default partitionable threefry makes every random op compile several times slower
on CPU (about 12 s against 2 s for ``jax.random.bits`` here). Tests only need
reproducible numbers, not the partitionable bit layout, so the suite (and the
subprocesses it starts, through the environment) uses the classic implementation.
"""

import os

os.environ.setdefault('JAX_THREEFRY_PARTITIONABLE', 'false')

import jax  # noqa: E402

jax.config.update('jax_threefry_partitionable', os.environ['JAX_THREEFRY_PARTITIONABLE'] != 'false')
