"""Evaluation over a whole dataset with the config's metrics, and MMAction2's ``save_best`` rule.

The eval loader pads its last batch to the full batch size and marks the padding (and
any sample it could not read) with ``valid=False``, so every batch has one shape (one
compilation) and every readable sample is scored exactly once: invalid rows are dropped
on the host, and the samples never scored are reported as unreadable.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding

from actionjax.config import ConfigKeyError
from actionjax.engine.sharding import prefetch_to_device, to_host
from actionjax.registry import METRICS


def build_metrics(metric_cfgs: Sequence[Mapping[str, Any]], key: str = 'val_metrics',
                  model: Any = None) -> list[Any]:
    """``METRICS.build`` for each metric config of the runtime config (``val_metrics`` / ``test_metrics``).

    A metric whose constructor takes ``model`` (a localizer's metric post-processes the
    model's raw output) gets the run's model config unless its own config names one, so
    MMAction2's evaluator configs work as written.
    """
    metrics = []
    for i, cfg in enumerate(metric_cfgs):
        cfg = dict(cfg)
        name = cfg.get('type')
        metric_type = METRICS.get(name, f'{key}[{i}].type') if isinstance(name, str) else None
        takes_model = metric_type is not None and 'model' in inspect.signature(metric_type).parameters
        if takes_model and model is not None:
            cfg.setdefault('model', model)
        metrics.append(METRICS.build(cfg, key_path=f'{key}[{i}]'))
    return metrics


def run_evaluation(eval_step: Callable[[dict, Mapping[str, jax.Array]], Mapping[str, jax.Array]],
                   variables: dict, batches: Iterable[Mapping[str, np.ndarray]],
                   batch_sharding: NamedSharding, metrics: Sequence[Any], dataset: Any = None,
                   on_batch: Callable[[], None] | None = None) -> tuple[dict[str, float], list[int]]:
    """Every metric's results over the readable samples of ``batches``, and the unreadable ones.

    Each batch goes through ``eval_step`` (the model's ``predict``); rows with
    ``valid=False`` (padding, and samples the loader could not read) are dropped on the
    host before the metrics see predictions and batch. Returns ``(results, unreadable)``,
    ``unreadable`` being the dataset indices that were never scored, so a broken video
    costs its own score and nothing else. Predictions stay on the device until all
    batches are dispatched: the loop never waits for one batch's result.
    """
    outputs = []
    for device_batch, _ in prefetch_to_device(((dict(b), None) for b in batches), batch_sharding):
        outputs.append((eval_step(variables, device_batch), device_batch))
        if on_batch is not None:
            on_batch()
    if not outputs:
        raise ValueError('the evaluation loader yielded no batch; is the dataset empty?')
    seen: list[np.ndarray] = []
    for predictions, device_batch in outputs:
        keep = to_host(device_batch['valid']).astype(bool)
        host_batch = {k: to_host(v)[keep] for k, v in device_batch.items() if k != 'imgs'}
        host_predictions = {k: to_host(v)[keep] for k, v in predictions.items()}
        seen.append(host_batch.get('index', np.zeros(0, np.int64)))
        for metric in metrics:
            metric.process(host_predictions, host_batch)
    indices = np.concatenate(seen)
    if len(np.unique(indices)) != len(indices):
        raise RuntimeError('evaluation scored some samples twice (duplicate dataset indices)')
    unreadable = []
    if dataset is not None and 'index' in outputs[0][1]:
        unreadable = sorted(set(range(len(dataset))) - set(indices.tolist()))
    if dataset is not None and len(indices) + len(unreadable) != len(dataset):
        raise RuntimeError(f'evaluation scored {len(indices)} samples and found {len(unreadable)} '
                           f'unreadable, but the dataset has {len(dataset)}')
    results: dict[str, float] = {}
    for metric in metrics:
        results.update(metric.compute(dataset))
    return results, unreadable


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
            raise ConfigKeyError(f"evaluation.rule must be 'greater', 'less' or None, got {rule!r}")

    def update(self, results: Mapping[str, float]) -> bool:
        """Record ``results``; True when the watched score improved (save a best checkpoint)."""
        if not self.key:
            return False
        if self.key == 'auto':
            self.key = next(iter(results))
        if self.key not in results:
            raise ConfigKeyError(f'evaluation.save_best={self.key!r} is not among the results '
                                 f'{list(results)}')
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
