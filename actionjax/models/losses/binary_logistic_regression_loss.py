"""BSN/BMN's class-balanced binary log loss on sigmoid scores (MMAction2's function of that name)."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from actionjax.registry import LOSSES


def binary_logistic_regression_loss(reg_score: jax.Array, label: jax.Array, threshold: float = 0.5,
                                    ratio_range: Sequence[float] = (1.05, 21), eps: float = 1e-5
                                    ) -> jax.Array:
    """Log loss of probabilities ``reg_score`` against ``label > threshold``, positives re-weighted.

    With ``r = entries / positives`` clipped to ``ratio_range``, positives weigh ``r / 2``
    and negatives ``r / (2 (r - 1))``, so both classes contribute alike however rare the
    positives are. Every entry of the arrays counts (MMAction2 flattens the batch).
    """
    score = reg_score.reshape(-1).astype(jnp.float32)
    positive = (label.reshape(-1) > threshold).astype(jnp.float32)
    num_positive = jnp.maximum(positive.sum(), 1.0)
    ratio = jnp.clip(score.size / num_positive, ratio_range[0], ratio_range[1])
    coef_0 = 0.5 * ratio / (ratio - 1)
    coef_1 = 0.5 * ratio
    loss = coef_1 * positive * jnp.log(score + eps) + coef_0 * (1.0 - positive) * jnp.log(1.0 - score + eps)
    return -loss.mean()


@LOSSES.register_module()
class BinaryLogisticRegressionLoss:
    """``loss(reg_score, label, threshold=0.5, ratio_range=(1.05, 21), eps=1e-5)``; see the function."""

    def __call__(self, reg_score: jax.Array, label: jax.Array, threshold: float = 0.5,
                 ratio_range: Sequence[float] = (1.05, 21), eps: float = 1e-5) -> jax.Array:
        return binary_logistic_regression_loss(reg_score, label, threshold, ratio_range, eps)

    def __repr__(self) -> str:
        return f'{type(self).__name__}()'
