"""One dtype for the whole model: what a run computes in and what it keeps its state in.

The runtime config's ``precision`` (``actionjax.runtime_config``) is one of

============  ==============================  ==========================================
precision     computes in                     keeps params, BN statistics, optimizer
                                              state, losses and grad norms in
============  ==============================  ==========================================
float32       float32 (the default)           float32
bfloat16      bfloat16 (mixed precision)      float32
float64       float64                         float64 (needs ``jax_enable_x64``)
============  ==============================  ==========================================

A model carries its compute dtype as its ``dtype`` field (Flax's convention; None is
JAX's default float: float32, float64 under ``jax_enable_x64``). Everything else follows
from it by three rules, so no module needs precision-specific code:

* **compute**: the input is cast to the compute dtype after normalisation
  (``BaseRecognizer.preprocess``) and the train and eval steps cast the parameters to it
  (``engine.steps``), so every conv and matmul runs in it;
* **state**: parameters and BatchNorm statistics live in ``param_dtype(dtype)`` =
  ``promote_types(compute, float32)``: float32 master weights under bfloat16, float64
  under float64. The optimizer state follows the parameters;
* **reductions**: statistics, losses and norms of a value ``x`` are taken in
  ``reduction_dtype(x.dtype)`` = ``promote_types(x.dtype, float32)``: a bfloat16
  activation's mean in float32, a float64 one's in float64.

Mixed precision needs no loss scaling: bfloat16 has float32's exponent range.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

# precision name -> the model's compute dtype
PRECISIONS: dict[str, Any] = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16, 'float64': jnp.float64}

X64_NEEDED = ("precision 'float64' needs jax_enable_x64 set before any JAX array is created: "
              "python -m actionjax.train sets it for such a config; in your own program call "
              "jax.config.update('jax_enable_x64', True) first thing (or set JAX_ENABLE_X64=1)")


def default_float() -> np.dtype:
    """JAX's default float dtype right now: float32, or float64 under ``jax_enable_x64``."""
    return jnp.result_type(float)


def compute_dtype(dtype: Any = None) -> np.dtype:
    """A model's compute dtype from its ``dtype`` field (None: the default float)."""
    return default_float() if dtype is None else jnp.dtype(dtype)


def param_dtype(dtype: Any = None) -> np.dtype:
    """The dtype of parameters and BatchNorm statistics of a model computing in ``dtype``."""
    return jnp.promote_types(compute_dtype(dtype), jnp.float32)


def reduction_dtype(dtype: Any) -> np.dtype:
    """The dtype to reduce values of ``dtype`` in: never below float32."""
    return jnp.promote_types(dtype, jnp.float32)


def cast_floating(tree: Any, dtype: Any) -> Any:
    """``tree`` with every floating-point leaf cast to ``dtype`` (integer leaves untouched)."""
    dtype = jnp.dtype(dtype)

    def cast(leaf: Any) -> Any:
        if jnp.issubdtype(leaf.dtype, jnp.floating) and leaf.dtype != dtype:
            return leaf.astype(dtype)
        return leaf

    return jax.tree.map(cast, tree)


def model_dtype(precision: str) -> str:
    """The ``dtype`` a model is built with for a runtime ``precision``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r} "
                         "(config key dtype)")
    return jnp.dtype(PRECISIONS[precision]).name


def check_dtype(dtype: Any) -> None:
    """Fail with what to do when a model's ``dtype`` cannot run in this process (float64
    without ``jax_enable_x64``: JAX would silently compute in float32).

    Called where a model gets its variables (``engine.build``), not when it is built: a
    float64 config still converts checkpoints and describes shapes anywhere.
    """
    if dtype is not None and jnp.dtype(dtype) == jnp.float64 and not jax.config.jax_enable_x64:
        raise RuntimeError(X64_NEEDED)


def enable_precision(precision: str) -> None:
    """For entry points, before any array exists: turn on ``jax_enable_x64`` for float64."""
    if precision == 'float64':
        jax.config.update('jax_enable_x64', True)
