"""Negative log likelihood of log-probability scores (torch's ``nll_loss``)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from actionjax.models.losses.base import BaseWeightedLoss
from actionjax.precision import reduction_dtype
from actionjax.registry import LOSSES


@LOSSES.register_module()
class NLLLoss(BaseWeightedLoss):
    """``-mean(cls_score[i, label[i]])``; ``cls_score`` should already be log-probabilities."""

    def _forward(self, cls_score: jax.Array, label: jax.Array, **kwargs: Any) -> jax.Array:
        if kwargs:
            raise TypeError(f'NLLLoss takes no extra arguments, got {sorted(kwargs)}')
        picked = jnp.take_along_axis(cls_score, label[:, None].astype(jnp.int32), axis=1)[:, 0]
        return -picked.astype(reduction_dtype(picked.dtype)).mean()
