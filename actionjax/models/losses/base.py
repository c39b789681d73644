"""Base class of the classification losses: ``loss_weight`` scales the result.

Losses are plain, stateless callables ``loss(cls_score, label) -> scalar`` (or a dict
whose ``'loss'`` entries are scaled), registered in ``LOSSES`` under MMAction2's names.
As in torch, calling a loss runs its ``forward``: a subclass implements ``_forward`` (the
unweighted loss, as MMAction2's ``BaseWeightedLoss``) or overrides ``forward`` itself.
"""

from __future__ import annotations

import abc
from typing import Any

import jax


class BaseWeightedLoss(abc.ABC):
    """Subclasses implement ``_forward``; ``forward`` (what a call runs) multiplies it by ``loss_weight``."""

    def __init__(self, loss_weight: float = 1.0) -> None:
        self.loss_weight = loss_weight

    @abc.abstractmethod
    def _forward(self, cls_score: jax.Array, label: jax.Array, **kwargs: Any) -> Any:
        """The unweighted loss."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def forward(self, cls_score: jax.Array, label: jax.Array, **kwargs: Any) -> Any:
        """The weighted loss: ``loss_weight * _forward(...)`` (a dict's ``'loss'`` entries)."""
        ret = self._forward(cls_score, label, **kwargs)
        if isinstance(ret, dict):
            return {k: v * self.loss_weight if 'loss' in k else v for k, v in ret.items()}
        return ret * self.loss_weight

    def __repr__(self) -> str:
        return f'{type(self).__name__}(loss_weight={self.loss_weight})'
