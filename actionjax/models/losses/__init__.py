"""Losses, registered in ``LOSSES`` on import."""

from actionjax.models.losses.base import BaseWeightedLoss
from actionjax.models.losses.binary_logistic_regression_loss import BinaryLogisticRegressionLoss
from actionjax.models.losses.bmn_loss import BMNLoss
from actionjax.models.losses.cross_entropy_loss import BCELossWithLogits, CrossEntropyLoss
from actionjax.models.losses.nll_loss import NLLLoss
from actionjax.models.losses.ssn_loss import SSNLoss

__all__ = ['BCELossWithLogits', 'BMNLoss', 'BaseWeightedLoss', 'BinaryLogisticRegressionLoss',
           'CrossEntropyLoss', 'NLLLoss', 'SSNLoss']
