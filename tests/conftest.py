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


import logging  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _actionjax_logs_reach_caplog(monkeypatch):
    """``setup_logger`` (called by any in-process training run) stops the 'actionjax' logger
    propagating, which would hide its records from ``caplog`` in every later test."""
    monkeypatch.setattr(logging.getLogger('actionjax'), 'propagate', True)
