"""Evaluation metrics, registered in ``METRICS`` on import (MMAction2 1.x's evaluators).

A metric object takes ``process(predictions, batch)`` for every evaluated batch (host numpy
arrays, padding rows removed: ``predictions`` is ``model.predict``'s output, ``batch`` the
loader's batch) and returns its numbers from ``compute(dataset)``. A new metric is one file
here plus one import line, or a user's class registered with ``@METRICS.register_module()``.
"""

from actionjax.metrics.acc_metric import AccMetric
from actionjax.metrics.anet_metric import ANetMetric
from actionjax.metrics.ssn_eval import SSNMetric

__all__ = ['ANetMetric', 'AccMetric', 'SSNMetric']
