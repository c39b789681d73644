"""MMAction2 1.x's ``ActionDataPreprocessor`` normalisation, on the device: ``to_rgb``
reverses the channel order, then ``(x - mean) / std``. One home for recognizers and SSN."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from actionjax.precision import compute_dtype, param_dtype


def normalize_input(imgs: jax.Array, data_preprocessor: Mapping[str, Any] | None, dtype: Any = None
                    ) -> jax.Array:
    """uint8/float channels-last images, normalised as ``model.data_preprocessor`` says, in the
    compute dtype ``dtype`` (``actionjax.precision``).

    The arithmetic runs in the parameters' dtype (float32 under bfloat16 compute), so only
    the result is rounded to bfloat16.
    """
    x = jnp.asarray(imgs).astype(param_dtype(dtype))
    pre = data_preprocessor or {}
    if pre.get('to_rgb', False):
        x = x[..., ::-1]
    if pre.get('mean') is not None:
        mean = jnp.asarray(pre['mean'], x.dtype)
        std = jnp.asarray(pre['std'], x.dtype)
        if mean.shape[-1] != x.shape[-1]:
            raise ValueError(f'model.data_preprocessor.mean has {mean.shape[-1]} channels, the input '
                             f'has {x.shape[-1]} (channels-last)')
        x = (x - mean) / std
    return x.astype(compute_dtype(dtype))
