"""``AccMetric``: MMAction2 1.x's classification metric over a whole evaluation run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from actionjax.metrics.accuracy import evaluate
from actionjax.registry import METRICS


@METRICS.register_module()
class AccMetric:
    """Top-k accuracy, mean class accuracy and mAP of a recognizer's ``scores``.

    ``metric_list`` and ``metric_options`` as MMAction2 (``metric_options=dict(
    top_k_accuracy=dict(topk=(1, 5)))``). ``process`` takes one batch of
    ``model.predict`` output (``scores``) with the batch's ``label``; ``compute`` scores
    everything seen since the last ``compute``.
    """

    def __init__(self, metric_list: str | Sequence[str] = ('top_k_accuracy', 'mean_class_accuracy'),
                 metric_options: Mapping[str, Any] | None = None, collect_device: str = 'cpu',
                 prefix: str | None = None) -> None:
        del collect_device  # results are gathered on the host already
        self.metric_list = [metric_list] if isinstance(metric_list, str) else list(metric_list)
        self.topk = tuple(((metric_options or {}).get('top_k_accuracy') or {}).get('topk', (1, 5)))
        self.prefix = prefix
        self.scores: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []

    def process(self, predictions: Mapping[str, np.ndarray], batch: Mapping[str, np.ndarray]) -> None:
        self.scores.append(np.asarray(predictions['scores'], np.float32))
        self.labels.append(np.asarray(batch['label']))

    def compute(self, dataset: Any = None) -> dict[str, float]:
        del dataset  # labels travel with the batches
        scores, labels = np.concatenate(self.scores), np.concatenate(self.labels)
        self.scores, self.labels = [], []
        results = evaluate(scores, labels, self.metric_list, topk=self.topk)
        return {f'{self.prefix}/{k}' if self.prefix else k: v for k, v in results.items()}
