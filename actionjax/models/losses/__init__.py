"""Losses, registered in ``LOSSES`` on import."""

from actionjax.models.losses.base import BaseWeightedLoss
from actionjax.models.losses.cross_entropy_loss import BCELossWithLogits, CrossEntropyLoss
from actionjax.models.losses.nll_loss import NLLLoss

__all__ = ['BCELossWithLogits', 'BaseWeightedLoss', 'CrossEntropyLoss', 'NLLLoss']
