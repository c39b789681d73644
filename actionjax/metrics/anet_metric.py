"""``ANetMetric``: ActivityNet proposal evaluation (AR@AN, AUC) and BSN's TEM result dumps.

The metric sees host copies of a localizer's ``predict`` output and of the batch, one
batch at a time, padding rows already removed::

    metric = METRICS.build(dict(type='ANetMetric', metric_type='AR@AN', model=model_cfg))
    for batch in loader:
        metric.process(predictions, batch)      # numpy dicts, leading batch axis
    results = metric.compute(dataset)          # {'auc': ..., 'AR@1': ..., 'AR@100': ...}

MMAction2's localizers post-process inside ``predict``; here that step is the
localizer's host-side ``select`` (candidates and soft-NMS, numpy), so the metric needs
the localizer: ``model`` is the module or its config dict (the recipes pass the config's
``model``; only its settings are read, never weights). ``process`` selects each video's
proposals batch by batch, so only those are kept; ``compute`` looks every video up in
the dataset (by the batch's ``index``) for its duration and ground truth, converts the
proposals to seconds, optionally writes them in ActivityNet's json format, and returns
MMAction2's numbers.

``metric_type='TEM'`` writes BSN's TEM results instead (one csv per video: ``action,
start, end, tmin, tmax``) into ``dump_config['out']`` for the PGM step, and returns no
numbers, as MMAction2 does.
"""

from __future__ import annotations

import json
import os
import os.path as osp
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from actionjax.data.activitynet import video_info
from actionjax.metrics.proposal_recall import DEFAULT_TIOU_THRESHOLDS, average_recall_at_avg_proposals
from actionjax.proposals import proposal_list
from actionjax.registry import METRICS

# Batch entries the metric never needs (the models' inputs): not kept between batches.
INPUT_KEYS = ('raw_feature', 'bsp_feature')


def ground_truth_array(annotations: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """A video's ``[start, end, label]`` rows, built as MMAction2 builds them (a string array
    when there are labels, which ``average_recall_at_avg_proposals`` parses back to float32)."""
    return np.array([[*ann['segment'], ann.get('label', '')] for ann in annotations]).reshape(-1, 3)


def evaluate_proposals(proposal_lists: Mapping[str, Sequence[Mapping[str, Any]]],
                       annotations: Mapping[str, Sequence[Mapping[str, Any]]],
                       max_avg_proposals: float = 100,
                       temporal_iou_thresholds: Sequence[float] | np.ndarray = DEFAULT_TIOU_THRESHOLDS,
                       ) -> dict[str, float]:
    """AR@1, AR@5, AR@10, AR@100 and AUC of proposal lists against ground truth, both by video.

    ``proposal_lists``: video -> ``[{'segment': [start_s, end_s], 'score': s}, ...]``;
    ``annotations``: video -> ``[{'segment': [start_s, end_s], 'label': ...}, ...]``.
    """
    proposals = {name: np.array([[*p['segment'], p['score']] for p in plist], np.float64).reshape(-1, 3)
                 for name, plist in proposal_lists.items()}
    ground_truth = {name: ground_truth_array(anns) for name, anns in annotations.items()}
    total = sum(len(plist) for plist in proposal_lists.values())
    recall, _, _, auc = average_recall_at_avg_proposals(
        ground_truth, proposals, total, max_avg_proposals=max_avg_proposals,
        temporal_iou_thresholds=np.asarray(temporal_iou_thresholds))
    results = {'auc': auc}
    for num in (1, 5, 10, 100):
        results[f'AR@{num}'] = float(np.mean(recall[:, num - 1]))
    return results


def random_proposals(video_infos: Sequence[Mapping[str, Any]], num_proposals: int = 100, seed: int = 0
                     ) -> dict[str, list[dict[str, Any]]]:
    """A baseline: ``num_proposals`` uniformly random segments with random scores per video."""
    rng = np.random.default_rng(seed)
    out = {}
    for info in video_infos:
        ends = np.sort(rng.uniform(0, info['duration_second'], size=(num_proposals, 2)), axis=1)
        scores = rng.random(num_proposals)
        out[info['video_name']] = [dict(segment=[float(s), float(e)], score=float(p))
                                   for (s, e), p in zip(ends, scores, strict=True)]
    return out


@METRICS.register_module()
class ANetMetric:
    """MMAction2's ``ANetMetric`` arguments; ``model`` is the localizer whose output it reads.

    Args:
        metric_type: 'AR@AN' (proposal recall) or 'TEM' (dump BSN's TEM results).
        metric_options: ``{'AR@AN': {'max_avg_proposals': 100, 'temporal_iou_thresholds':
            [0.5, 0.55, ..., 0.95]}}``, MMAction2's defaults.
        dump_config: ``dict(out=..., output_format='csv' | 'json')``: where to write the TEM
            csv files (a folder) or the proposals (ActivityNet json). ``out=''`` writes
            nothing ('AR@AN' only).
        model: the localizer, or its config dict; needed by both metric types.
        random_baseline: also report the numbers of ``random_proposals`` (as many per
            video as the localizer keeps, ``post_process_top_k``) for the same videos,
            under ``random/<name>``: what the demo compares against.
        prefix: put before every result name (``prefix/auc``), as MMAction2 does.
        collect_device: accepted for MMAction2 configs; results are gathered on the host.
    """

    def __init__(self, metric_type: str = 'TEM', metric_options: Mapping[str, Any] | None = None,
                 dump_config: Mapping[str, Any] | None = None, model: Any = None,
                 random_baseline: bool = False, prefix: str | None = None,
                 collect_device: str = 'cpu') -> None:
        if metric_type not in ('AR@AN', 'TEM'):
            raise ValueError(f"ANetMetric metric_type must be 'AR@AN' or 'TEM', got {metric_type!r}")
        dump_config = dict(dump_config or {})
        self.metric_type = metric_type
        self.out = dump_config.get('out', '')
        self.output_format = dump_config.get('output_format', 'csv')
        if self.output_format not in ('csv', 'json'):
            raise ValueError(f"ANetMetric dump_config.output_format must be 'csv' or 'json', "
                             f'got {self.output_format!r}')
        if metric_type == 'TEM' and not self.out:
            raise ValueError("ANetMetric(metric_type='TEM') writes csv files: set "
                             'dump_config=dict(out=FOLDER)')
        options = dict((metric_options or {}).get('AR@AN', {}))
        self.max_avg_proposals = options.get('max_avg_proposals', 100)
        self.temporal_iou_thresholds = np.asarray(options.get('temporal_iou_thresholds',
                                                              DEFAULT_TIOU_THRESHOLDS))
        if isinstance(model, Mapping):
            from actionjax.models.localizers import build_localizer

            model = build_localizer(model, 'val_evaluator.model')
        self.model = model
        self.random_baseline = random_baseline
        self.prefix = prefix
        self._results: list[tuple[int, np.ndarray]] = []

    def reset(self) -> None:
        self._results = []

    def process(self, predictions: Mapping[str, np.ndarray], batch: Mapping[str, np.ndarray]) -> None:
        """Keep each video's selected proposals (AR@AN) or TEM table, by dataset index."""
        if self.model is None:
            raise ValueError("ANetMetric needs the localizer whose predictions it reads: add model=model "
                             "to the evaluator config (dict(type='ANetMetric', ..., model=model))")
        for row in range(len(batch['index'])):
            prediction = {key: np.asarray(value[row]) for key, value in predictions.items()}
            sample = {key: np.asarray(value[row]) for key, value in batch.items() if key not in INPUT_KEYS}
            if self.metric_type == 'TEM':
                kept = self.model.tem_results(prediction)
            else:
                kept = self.model.select(prediction, sample)
            self._results.append((int(batch['index'][row]), kept))

    def compute(self, dataset: Any) -> dict[str, float]:
        """The metrics over every processed video (then the stored results are cleared)."""
        results, self._results = self._results, []
        infos = [video_info(dataset, index) for index, _ in results]
        if self.metric_type == 'TEM':
            self._dump_tem(infos, [table for _, table in results])
            return {}
        interval = self.model.feature_extraction_interval
        proposal_lists = {info['video_name']: proposal_list(selected, info, interval)
                          for info, (_, selected) in zip(infos, results, strict=True)}
        if self.out:
            self._dump_json(proposal_lists)
        annotations = {info['video_name']: info['annotations'] for info in infos}
        results = evaluate_proposals(proposal_lists, annotations, self.max_avg_proposals,
                                     self.temporal_iou_thresholds)
        if self.random_baseline:
            baseline = evaluate_proposals(random_proposals(infos, self.model.post_process_top_k), annotations,
                                          self.max_avg_proposals, self.temporal_iou_thresholds)
            results.update({f'random/{key}': value for key, value in baseline.items()})
        return {f'{self.prefix}/{k}' if self.prefix else k: v for k, v in results.items()}

    def _dump_tem(self, infos: list[Mapping[str, Any]], tables: list[np.ndarray]) -> None:
        os.makedirs(self.out, exist_ok=True)
        for info, table in zip(infos, tables, strict=True):
            np.savetxt(osp.join(self.out, info['video_name'] + '.csv'), table,
                       header='action,start,end,tmin,tmax', delimiter=',', comments='')

    def _dump_json(self, proposal_lists: Mapping[str, list[dict[str, Any]]]) -> None:
        """ActivityNet's result format; video ids lose the ``v_`` prefix, as MMAction2 writes them."""
        parent = osp.dirname(self.out)
        if parent:
            os.makedirs(parent, exist_ok=True)
        results = {name[2:]: plist for name, plist in proposal_lists.items()}
        body = dict(version='VERSION 1.3', results=results, external_data={})
        with open(self.out, 'w') as f:
            json.dump(body, f, default=float)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(metric_type={self.metric_type!r}, out={self.out!r})'
