"""Evaluation metrics with MMAction2 0.x semantics, on host numpy arrays.

``scores`` is ``(N, num_classes)`` and ``labels`` ``(N,)`` ints. The functions
follow ``mmaction.core.evaluation.accuracy`` so numbers compare one to one with
MMAction2 logs, including its quirks (noted where they matter).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

METRICS = ('top_k_accuracy', 'mean_class_accuracy', 'mean_average_precision')


def top_k_accuracy(scores: np.ndarray, labels: np.ndarray, topk: Sequence[int] = (1,)) -> list[float]:
    """Fraction of samples whose label is among the ``k`` highest scores, for each ``k``.

    Tied scores rank by class index, the later class first: what MMAction2's
    ``np.argsort`` gives under numpy 1.x for up to 16 classes. A stable sort makes it
    so for any class count and numpy version (numpy 2's default sort orders ties
    differently).
    """
    scores = np.asarray(scores)
    labels = np.asarray(labels).reshape(-1, 1)
    order = np.argsort(scores, axis=1, kind='stable')
    result = []
    for k in topk:
        top = order[:, -k:][:, ::-1]
        result.append(float(np.any(top == labels, axis=1).mean()))
    return result


def confusion_matrix(pred: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Counts ``[real, pred]`` over the labels that occur in either array (sorted)."""
    pred, real = np.asarray(pred, np.int64), np.asarray(real, np.int64)
    label_set = np.unique(np.concatenate([pred, real]))
    index = np.zeros(label_set[-1] + 1, np.int64)
    index[label_set] = np.arange(len(label_set))
    n = len(label_set)
    return np.bincount(n * index[real] + index[pred], minlength=n * n).reshape(n, n)


def mean_class_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean over classes of per-class top-1 accuracy.

    As in MMAction2, the classes are those present among labels or predictions; a
    class that is only ever predicted (never a label) counts as accuracy 0.
    """
    cf = confusion_matrix(np.argmax(scores, axis=1), labels).astype(np.float64)
    counts, hits = cf.sum(axis=1), np.diag(cf)
    return float(np.mean([h / c if c else 0.0 for c, h in zip(counts, hits, strict=True)]))


def average_precision(scores: np.ndarray, positives: np.ndarray) -> float:
    """Area under the step precision-recall curve of one class (ties share a threshold).

    NaN when the class has no positive sample.
    """
    order = np.argsort(scores, kind='mergesort')[::-1]
    scores, positives = scores[order], positives[order]
    thresholds = np.r_[np.nonzero(np.diff(scores))[0], len(scores) - 1]
    tps = np.cumsum(positives)[thresholds]
    fps = 1 + thresholds - tps
    with np.errstate(invalid='ignore', divide='ignore'):
        precision = np.nan_to_num(tps / (tps + fps))
        recall = tps / tps[-1]
    last = tps.searchsorted(tps[-1])  # stop once full recall is reached
    precision = np.r_[precision[last::-1], 1]
    recall = np.r_[recall[last::-1], 0]
    return float(-np.sum(np.diff(recall) * precision[:-1]))


def mean_average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean over classes of average precision; ``labels`` is a ``(N, C)`` multi-hot array.

    Classes without a positive sample (NaN AP) are skipped, as MMAction2 does.
    """
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels)
    aps = [average_precision(scores[:, c], labels[:, c] == 1) for c in range(scores.shape[1])]
    aps = [ap for ap in aps if not np.isnan(ap)]
    return float(np.mean(aps)) if aps else float('nan')


def evaluate(scores: np.ndarray, labels: np.ndarray, metrics: str | Sequence[str] = 'top_k_accuracy',
             topk: Sequence[int] = (1, 5)) -> dict[str, float]:
    """MMAction2's ``dataset.evaluate``: ``{'top1_acc', 'top5_acc', 'mean_class_accuracy'}`` and so on."""
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    results: dict[str, float] = {}
    for metric in metrics:
        if metric == 'top_k_accuracy':
            ks = (topk,) if isinstance(topk, int) else tuple(topk)
            for k, acc in zip(ks, top_k_accuracy(scores, labels, ks), strict=True):
                results[f'top{k}_acc'] = acc
        elif metric == 'mean_class_accuracy':
            results['mean_class_accuracy'] = mean_class_accuracy(scores, labels)
        elif metric == 'mean_average_precision':
            if np.asarray(labels).ndim == 1:
                labels = np.eye(scores.shape[1])[np.asarray(labels)]
            results['mean_average_precision'] = mean_average_precision(scores, labels)
        else:
            raise KeyError(f'evaluation.metrics: {metric!r} is not supported; choose from {list(METRICS)}')
    return results
