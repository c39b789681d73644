"""A persistent compilation cache, so that a second launch skips compiling.

XLA compiles each jitted step once per input shape (a TSN-R50 train step: about 10 s on
two CPU cores). JAX can keep the compiled programs on disk and reuse them when a later
process compiles the same program with the same jax, backend and flags. Every command
(train, test, demo) turns the cache on; it is user-wide, so a test run after a
training run, or a resumed run, reuses the training run's programs.
"""

from __future__ import annotations

import os

import jax

ENV = 'ACTIONJAX_CACHE_DIR'  # where the cache lives; 'off' disables it


def enable_compilation_cache(path: str | None = None) -> str | None:
    """Turn the cache on at ``path`` (default ``$ACTIONJAX_CACHE_DIR``, else
    ``~/.cache/actionjax/jax``); returns the folder, or None when ``$ACTIONJAX_CACHE_DIR=off``."""
    path = path or os.environ.get(ENV) or os.path.join(os.path.expanduser('~'), '.cache', 'actionjax', 'jax')
    if path == 'off':
        return None
    os.makedirs(path, exist_ok=True)
    jax.config.update('jax_compilation_cache_dir', path)
    # cache every program that took noticeable time to compile, not only the slowest ones
    jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.5)
    return path
