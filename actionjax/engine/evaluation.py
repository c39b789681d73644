"""Evaluation over a whole dataset, and MMAction2's ``save_best`` rule.

The eval loader pads its last batch to the full batch size and marks the padding
with ``valid=False``, so every batch has one shape (one compilation) and every
sample is scored exactly once: padded rows are dropped on the host and the count
is checked against the dataset length.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding

from actionjax.engine import metrics as M
from actionjax.engine.sharding import prefetch_to_device, to_host


def predict(eval_step: Callable[[dict, jax.Array], jax.Array], variables: dict,
            batches: Iterable[Mapping[str, np.ndarray]], batch_sharding: NamedSharding,
            num_samples: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(scores, labels)`` for every real sample of ``batches``, in dataset order.

    Rows with ``valid=False`` (padding) are dropped; when batches carry ``index``,
    duplicates are an error and the result is sorted by dataset index.

    Scores stay on the device until the end: the loop never waits for one batch's
    result before dispatching the next.
    """
    def items():
        for batch in batches:
            n = len(batch['imgs'])
            rows = {'imgs': batch['imgs'], 'label': batch['label'],
                    'valid': batch.get('valid', np.ones(n, bool)),
                    'index': batch.get('index', np.full(n, -1, np.int32))}
            yield rows, None

    outputs = []
    for device_batch, _ in prefetch_to_device(items(), batch_sharding):
        scores = eval_step(variables, device_batch['imgs'])
        outputs.append((scores, device_batch['label'], device_batch['valid'], device_batch['index']))
    if not outputs:
        raise ValueError('the evaluation loader yielded no batch; is the dataset empty?')
    scores, labels, indices = [], [], []
    for s, y, valid, index in outputs:
        keep = to_host(valid).astype(bool)
        scores.append(to_host(s)[keep])
        labels.append(to_host(y)[keep])
        indices.append(to_host(index)[keep])
    scores_np, labels_np, index_np = map(np.concatenate, (scores, labels, indices))
    if num_samples is not None and len(scores_np) != num_samples:
        raise RuntimeError(f'evaluation scored {len(scores_np)} samples but the dataset has {num_samples}; '
                           'the loader must pad the last batch and mark padding with valid=False')
    if (index_np >= 0).all() and len(np.unique(index_np)) != len(index_np):
        raise RuntimeError('evaluation scored some samples twice (duplicate dataset indices)')
    order = np.argsort(index_np, kind='stable') if (index_np >= 0).all() else np.arange(len(index_np))
    return scores_np[order].astype(np.float32), labels_np[order]


def evaluate(scores: np.ndarray, labels: np.ndarray, metrics: str | Sequence[str] = 'top_k_accuracy',
             metric_options: Mapping[str, Any] | None = None) -> dict[str, float]:
    """``evaluation.metrics`` on host scores, with ``metric_options`` as MMAction2 reads them."""
    topk = ((metric_options or {}).get('top_k_accuracy') or {}).get('topk', (1, 5))
    return M.evaluate(scores, labels, metrics, topk=topk)


class BestTracker:
    """``evaluation.save_best``: which score to watch and whether a new one is better.

    ``'auto'`` watches the first metric; the rule is inferred from the key as mmcv's
    EvalHook does ('acc', 'top', 'mAP', ... are greater-is-better, 'loss' less).
    """

    GREATER = ('acc', 'top', 'ar@', 'auc', 'precision', 'map', 'mdice', 'miou', 'macc', 'aacc')
    LESS = ('loss',)

    def __init__(self, save_best: str | None, rule: str | None = None, best_score: float | None = None,
                 best_path: str | None = None) -> None:
        self.key = save_best
        self.rule = rule
        self.best_score = best_score
        self.best_path = best_path
        if rule not in (None, 'greater', 'less'):
            raise KeyError(f"evaluation.rule must be 'greater', 'less' or None, got {rule!r}")

    def update(self, results: Mapping[str, float]) -> bool:
        """Record ``results``; True when the watched score improved (save a best checkpoint)."""
        if not self.key:
            return False
        if self.key == 'auto':
            self.key = next(iter(results))
        if self.key not in results:
            raise KeyError(f'evaluation.save_best={self.key!r} is not among the results {list(results)}')
        if self.rule is None:
            self.rule = self._infer_rule(self.key)
        score = float(results[self.key])
        if self.best_score is None or math.isnan(self.best_score):
            better = not math.isnan(score)
        else:
            better = score > self.best_score if self.rule == 'greater' else score < self.best_score
        if better:
            self.best_score = score
        return better

    def _infer_rule(self, key: str) -> str:
        k = key.lower()
        for rule, keys, exact in (('greater', self.GREATER, True), ('less', self.LESS, True),
                                  ('greater', self.GREATER, False), ('less', self.LESS, False)):
            if (k in keys) if exact else any(part in k for part in keys):
                return rule
        raise ValueError(f'cannot infer whether {key!r} should grow or shrink; '
                         "set evaluation.rule='greater' or 'less'")
