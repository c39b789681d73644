"""Cross entropy for hard and soft labels, and binary cross entropy with logits.

Reductions are torch's: with ``class_weight`` the mean is weighted, i.e. divided by
the summed weight of the targets, as ``torch.nn.functional.cross_entropy`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from actionjax.models.losses.base import BaseWeightedLoss
from actionjax.precision import reduction_dtype
from actionjax.registry import LOSSES


def _class_weight(class_weight: Sequence[float] | None) -> np.ndarray | None:
    # a host float64 array: it meets the scores in their reduction dtype (float64 in a float64 run)
    return None if class_weight is None else np.asarray(class_weight, np.float64)


@LOSSES.register_module()
class CrossEntropyLoss(BaseWeightedLoss):
    """Softmax cross entropy; the label type is told by its shape (as MMAction2).

    * hard labels: int ``(N,)`` class indices;
    * soft labels: float ``(N, num_classes)`` distributions (same shape as ``cls_score``).
    """

    def __init__(self, loss_weight: float = 1.0, class_weight: Sequence[float] | None = None) -> None:
        super().__init__(loss_weight)
        self.class_weight = _class_weight(class_weight)

    def _forward(self, cls_score: jax.Array, label: jax.Array, **kwargs: Any) -> jax.Array:
        if kwargs:
            raise TypeError(f'CrossEntropyLoss takes no extra arguments, got {sorted(kwargs)}')
        log_probs = jax.nn.log_softmax(cls_score.astype(reduction_dtype(cls_score.dtype)), axis=1)
        weight = None if self.class_weight is None else jnp.asarray(self.class_weight, log_probs.dtype)
        if cls_score.shape == label.shape:  # soft labels
            if cls_score.ndim != 2:
                raise ValueError(f'soft labels must be (N, num_classes), got {label.shape}')
            if weight is not None:
                log_probs = log_probs * weight[None]
            loss = -(label * log_probs).sum(axis=1)
            if weight is None:
                return loss.mean()
            return loss.sum() / (weight[None] * label).sum()
        nll = -jnp.take_along_axis(log_probs, label[:, None].astype(jnp.int32), axis=1)[:, 0]
        if weight is None:
            return nll.mean()
        w = weight[label]
        return (w * nll).sum() / w.sum()


@LOSSES.register_module()
class BCELossWithLogits(BaseWeightedLoss):
    """Sigmoid binary cross entropy per class, averaged over every element.

    ``class_weight`` multiplies each class's term (torch's ``weight`` broadcast).
    """

    def __init__(self, loss_weight: float = 1.0, class_weight: Sequence[float] | None = None) -> None:
        super().__init__(loss_weight)
        self.class_weight = _class_weight(class_weight)

    def _forward(self, cls_score: jax.Array, label: jax.Array, **kwargs: Any) -> jax.Array:
        if kwargs:
            raise TypeError(f'BCELossWithLogits takes no extra arguments, got {sorted(kwargs)}')
        x = cls_score.astype(reduction_dtype(cls_score.dtype))
        y = label.astype(x.dtype)
        # log(1 + exp(x)) - x * y, written to stay finite for large |x| (as torch does)
        loss = jnp.maximum(x, 0) - x * y + jnp.log1p(jnp.exp(-jnp.abs(x)))
        if self.class_weight is not None:
            loss = loss * jnp.asarray(self.class_weight, x.dtype)
        return loss.mean()
