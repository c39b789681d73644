"""Where random transforms get their randomness.

The loader puts a ``numpy.random.Generator`` in ``results['rng']``, derived from the
seed, the epoch and the sample index, so an augmented sample can be reproduced
exactly (and resumed mid-epoch). Without one, transforms fall back to a generator
seeded from OS entropy. That fallback is created per process: a generator made
before ``fork`` would otherwise be copied into every worker, and the workers would
all draw the same "random" crops.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

_fallback: tuple[int, np.random.Generator] | None = None


def get_rng(results: Mapping[str, Any]) -> np.random.Generator:
    """``results['rng']`` when the loader set one, else this process's own generator."""
    rng = results.get('rng')
    if rng is not None:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"results['rng'] must be a numpy.random.Generator, got {type(rng).__name__}")
        return rng
    global _fallback
    pid = os.getpid()
    if _fallback is None or _fallback[0] != pid:
        _fallback = (pid, np.random.default_rng())
    return _fallback[1]
