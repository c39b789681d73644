"""SSN's detection evaluation: mAP at tIoU thresholds 0.1 ... 0.9 (MMAction2 0.24.1's THUMOS'14 protocol).

From each video's per-proposal scores (``stpp_test_pool``'s activity, completeness and
regression outputs) to per-class detections: the score of a (proposal, class) pair is the
softmax of the activity scores over the classes times ``exp(completeness)``; the best
``top_k`` pairs of a video are kept (all of them when ``top_k <= 0``), their boundaries
corrected by the regression (centre shift and log-span scaling, relative to the
proposal), and each class's detections thinned by temporal NMS. Average precision per
class and tIoU threshold follows the Pascal VOC procedure (a ground truth matches at most
one detection, the best-scoring first; interpolated precision), and mAP averages it over
classes. Proposal lists come in MMAction2's TAG format (``load_localize_proposal_file``).

Numbers equal MMAction2's ``SSNDataset.evaluate`` (same float32 / float64 steps and
orderings, checked by a golden).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import groupby
from typing import Any

import numpy as np

from actionjax.models.localizers.proposals import temporal_iou
from actionjax.registry import METRICS

THUMOS14_TIOU = np.arange(0.1, 1.0, .1)


def load_localize_proposal_file(path: str) -> list[tuple[str, int, list[list[str]], list[list[str]]]]:
    """A TAG proposal list: ``(video_id, num_frames, gt_rows, proposal_rows)`` per video.

    Each video is a block after a ``# index`` line: its id, frame count, fps, the number of
    ground truths then ``label start end`` rows, the number of proposals then ``label best_iou
    overlap_self start end`` rows; ``num_frames`` is the frame count times the fps field.
    """
    with open(path) as f:
        lines = [line.strip() for line in f]
    videos = []
    for is_header, block in groupby(lines, lambda line: line.startswith('#')):
        if is_header:
            continue
        block = list(block)
        num_gts = int(block[3])
        num_proposals = int(block[4 + num_gts])
        videos.append((block[0], int(float(block[1]) * float(block[2])),
                       [row.split() for row in block[4:4 + num_gts]],
                       [row.split() for row in block[5 + num_gts:5 + num_gts + num_proposals]]))
    return videos


def ground_truth_by_class(path: str) -> tuple[list[str], dict[int, dict[str, list[list[float]]]]]:
    """The videos SSN evaluates (those with a ground truth, in file order) and their ground truths,
    ``{class_index: {video_id: [[start, end], ...]}}`` as fractions of the video (class index = label - 1)."""
    videos, gts = [], {}
    for video_id, num_frames, gt_rows, _ in load_localize_proposal_file(path):
        segments = [(int(label), int(start), min(int(end), num_frames)) for label, start, end in gt_rows
                    if int(end) > int(start) and int(start) < num_frames]
        if not segments:
            continue
        videos.append(video_id)
        for label, start, end in segments:
            segment = [start / num_frames, end / num_frames]
            gts.setdefault(label - 1, {}).setdefault(video_id, []).append(segment)
    return videos, gts


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def results_to_detections(results: Sequence[Mapping[str, np.ndarray]], video_ids: Sequence[str],
                          top_k: int = 2000) -> list[dict[str, np.ndarray]]:
    """Per class, ``{video_id: (n, 5) [start, end, score, centre_reg, span_reg]}`` (float32).

    ``results[i]`` holds video ``i``'s ``relative_proposal_list`` ``(P, 2)``,
    ``activity_scores`` ``(P, K + 1)``, ``completeness_scores`` ``(P, K)`` and ``bbox_preds``
    ``(P, K, 2)`` or None.
    """
    num_classes = results[0]['activity_scores'].shape[1] - 1
    detections: list[dict[str, np.ndarray]] = [{} for _ in range(num_classes)]
    for video_id, result in zip(video_ids, results, strict=True):
        proposals = np.asarray(result['relative_proposal_list'], np.float32).reshape(-1, 2)
        scores = _softmax(result['activity_scores'][:, 1:]) * np.exp(result['completeness_scores'])
        regression = result.get('bbox_preds')
        if regression is None:
            regression = np.zeros((len(proposals), num_classes, 2), np.float32)
        regression = np.asarray(regression).reshape(-1, num_classes, 2)
        if top_k <= 0:
            for c in range(num_classes):
                detections[c][video_id] = np.concatenate(
                    [proposals, scores[:, c:c + 1], regression[:, c, 0:1], regression[:, c, 1:2]], axis=1)
            continue
        for k in np.argsort(scores.ravel())[-top_k:]:  # ascending score, as MMAction2 appends them
            p, c = divmod(int(k), num_classes)
            row = np.array([[proposals[p, 0], proposals[p, 1], scores[p, c], regression[p, c, 0],
                             regression[p, c, 1]]])
            detections[c][video_id] = row if video_id not in detections[c] else np.vstack(
                [detections[c][video_id], row])
    return detections


def perform_regression(detections: np.ndarray) -> np.ndarray:
    """Move each detection's centre by ``span * centre_reg`` and scale its span by ``exp(span_reg)``."""
    starts, ends = detections[:, 0], detections[:, 1]
    centres, spans = (starts + ends) / 2, ends - starts
    centres = centres + spans * detections[:, 3]
    spans = spans * np.exp(detections[:, 4])
    return np.concatenate([np.clip(centres - spans / 2, 0, 1)[:, None],
                           np.clip(centres + spans / 2, 0, 1)[:, None], detections[:, 2:]], axis=1)


def temporal_nms(detections: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy NMS: keep the best detection, drop those overlapping it by more than ``threshold``, repeat."""
    starts, ends, scores = detections[:, 0], detections[:, 1], detections[:, 2]
    order = scores.argsort()[::-1]
    keep = []
    while order.size > 0:
        best = order[0]
        keep.append(best)
        ious = temporal_iou(starts[order[1:]], ends[order[1:]], starts[best], ends[best])
        order = order[np.nonzero(ious <= threshold)[0] + 1]
    return detections[keep, :]


def _interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    precision = np.hstack([[0], precision, [0]])
    recall = np.hstack([[0], recall, [1]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the best precision at this recall or beyond
    steps = np.nonzero(recall[1:] != recall[:-1])[0] + 1
    return float(np.sum((recall[steps] - recall[steps - 1]) * precision[steps]))


def average_precision(ground_truth: Mapping[str, Sequence[Sequence[float]]],
                      detections: Sequence[Sequence[Any]], threshold: float) -> np.float32:
    """Average precision of one class's ``[video, class, start, end, score]`` detections at one tIoU.

    A detection is a true positive when its best-overlapping, not yet matched ground truth of
    the same video has a tIoU of at least ``threshold``; detections go best score first.
    """
    if len(detections) < 1:
        return np.float32(0)
    num_gts = float(sum(len(segments) for segments in ground_truth.values()))
    matched = {video: np.zeros(len(segments), bool) for video, segments in ground_truth.items()}
    rows = np.array(detections)  # a string array, as MMAction2 builds it: the numbers round-trip exactly
    rows = rows[np.argsort(rows[:, 4].astype(float))[::-1]]
    tp = np.zeros(len(rows), np.int32)
    fp = np.zeros(len(rows), np.int32)
    for i, row in enumerate(rows):
        if row[0] not in ground_truth:
            fp[i] = 1
            continue
        gt = np.array(ground_truth[row[0]], dtype=float)
        start, end = row[2:4].astype(float)
        inter = (np.minimum(end, gt[:, 1]) - np.maximum(start, gt[:, 0])).clip(0)
        iou = (inter.astype(float) / ((gt[:, 1] - gt[:, 0]) + (end - start) - inter)).astype(np.float32)
        for j in iou.argsort()[::-1]:
            if iou[j] < threshold:
                break
            if not matched[row[0]][j]:
                tp[i] = 1
                matched[row[0]][j] = True
                break
        fp[i] = 1 - tp[i]
    tp_sum = np.cumsum(tp).astype(np.float32)
    fp_sum = np.cumsum(fp).astype(np.float32)
    with np.errstate(divide='ignore', invalid='ignore'):  # a class without ground truth: as MMAction2
        return np.float32(_interpolated_ap(tp_sum / (tp_sum + fp_sum), tp_sum / num_gts))


def evaluate_detections(results: Sequence[Mapping[str, np.ndarray]], video_ids: Sequence[str],
                        ground_truth: Mapping[int, Mapping[str, Sequence[Sequence[float]]]],
                        top_k: int = 2000, nms: float = 0.2, use_regression: bool = True,
                        tiou_thresholds: Sequence[float] | np.ndarray = THUMOS14_TIOU, **unused: Any
                        ) -> dict[str, float]:
    """``{'mAP@0.10': ..., ..., 'mAP@0.90': ...}`` of SSN's per-video results.

    ``top_k``, ``nms`` (and the ignored ``softmax_before_filter``, ``cls_score_dict``,
    ``cls_top_k``) are ``test_cfg.ssn.evaluater``'s keys.
    """
    detections = results_to_detections(results, video_ids, top_k)
    if use_regression:
        detections = [{video: perform_regression(d) for video, d in per_class.items()}
                      for per_class in detections]
    detections = [{video: temporal_nms(d, nms) for video, d in per_class.items()} for per_class in detections]
    ap = np.zeros((len(detections), len(tiou_thresholds)))
    for c, per_class in enumerate(detections):
        rows = [[video, c, *row[:3]] for video, dets in per_class.items() for row in dets.tolist()]
        for t, threshold in enumerate(tiou_thresholds):
            ap[c, t] = average_precision(ground_truth.get(c, {}), rows, threshold)
    means = zip(tiou_thresholds, ap.mean(axis=0), strict=True)
    return {f'mAP@{threshold:.02f}': float(mean) for threshold, mean in means}


@METRICS.register_module()
class SSNMetric:
    """mAP at tIoU 0.1 ... 0.9 of SSN's pooled per-proposal scores against a TAG proposal list.

    ``process(predictions, batch)`` takes, per video (row), ``activity_scores``,
    ``completeness_scores``, ``bbox_preds`` (already pooled over its proposals, with
    ``num_instances`` proposals kept) and the batch's ``relative_proposal_list`` and
    ``index``; ``compute(dataset)`` evaluates against ``ann_file``'s ground truth, in the
    order of its videos with a ground truth (the dataset's ``index`` order).
    """

    def __init__(self, ann_file: str, evaluater: Mapping[str, Any] | None = None, use_regression: bool = True,
                 metric_list: Sequence[str] = ('mAP',), prefix: str | None = None) -> None:
        if list(metric_list) != ['mAP']:
            raise ValueError(f"SSNMetric computes 'mAP' only, got metric_list={list(metric_list)}")
        self.video_ids, self.ground_truth = ground_truth_by_class(ann_file)
        self.evaluater = {'top_k': 2000, 'nms': 0.2, **dict(evaluater or {})}
        self.use_regression = use_regression
        self.prefix = prefix
        self._results: dict[int, dict[str, np.ndarray]] = {}

    def process(self, predictions: Mapping[str, np.ndarray], batch: Mapping[str, np.ndarray]) -> None:
        for row, index in enumerate(batch['index']):
            count = int(batch['num_instances'][row]) if 'num_instances' in batch else None
            keys = [k for k in ('activity_scores', 'completeness_scores', 'bbox_preds') if k in predictions]
            result = {key: np.asarray(predictions[key][row])[:count] for key in keys}
            result['relative_proposal_list'] = np.asarray(batch['relative_proposal_list'][row])[:count]
            self._results[int(index)] = result

    def compute(self, dataset: Any = None) -> dict[str, float]:
        results, self._results = self._results, {}
        if sorted(results) != list(range(len(self.video_ids))):
            raise ValueError(f'SSNMetric saw {len(results)} videos, the annotation file has '
                             f'{len(self.video_ids)} with ground truth; evaluate the whole split')
        ordered = [results[i] for i in range(len(self.video_ids))]
        out = evaluate_detections(ordered, self.video_ids, self.ground_truth,
                                  use_regression=self.use_regression, **self.evaluater)
        return {f'{self.prefix}/{k}' if self.prefix else k: v for k, v in out.items()}
