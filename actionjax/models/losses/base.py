"""Base class of the classification losses: ``loss_weight`` scales the result.

Losses are plain, stateless callables ``loss(cls_score, label) -> scalar`` (or a dict
whose ``'loss'`` entries are scaled), registered in ``LOSSES`` under MMAction2's names.
"""

from __future__ import annotations

import abc
from typing import Any

import jax


class BaseWeightedLoss(abc.ABC):
    """Subclasses implement ``_forward``; ``__call__`` multiplies it by ``loss_weight``."""

    def __init__(self, loss_weight: float = 1.0) -> None:
        self.loss_weight = loss_weight

    @abc.abstractmethod
    def _forward(self, cls_score: jax.Array, label: jax.Array, **kwargs: Any) -> Any:
        """The unweighted loss."""

    def __call__(self, cls_score: jax.Array, label: jax.Array, **kwargs: Any) -> Any:
        ret = self._forward(cls_score, label, **kwargs)
        if isinstance(ret, dict):
            return {k: v * self.loss_weight if 'loss' in k else v for k, v in ret.items()}
        return ret * self.loss_weight

    def __repr__(self) -> str:
        return f'{type(self).__name__}(loss_weight={self.loss_weight})'
