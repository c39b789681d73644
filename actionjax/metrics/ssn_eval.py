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
from typing import Any

import numpy as np

from actionjax.data.ssn import load_localize_proposal_file
from actionjax.models.heads.ssn_head import stpp_test_pool
from actionjax.proposals import temporal_iou
from actionjax.registry import METRICS

THUMOS14_TIOU = np.arange(0.1, 1.0, .1)
POOLED_KEYS = ('activity_scores', 'completeness_scores', 'bbox_preds')


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


def dataset_ground_truth(video_infos: Sequence[Mapping[str, Any]]
                         ) -> tuple[list[str], dict[int, dict[str, list[list[float]]]]]:
    """``ground_truth_by_class`` of an ``SSNDataset``'s videos (``SSNInstance`` ground truths)."""
    gts: dict[int, dict[str, list[list[float]]]] = {}
    for info in video_infos:
        frames = info['total_frames']
        for gt in info['gts']:
            segment = [gt.start_frame / frames, gt.end_frame / frames]
            gts.setdefault(gt.label - 1, {}).setdefault(info['video_id'], []).append(segment)
    return [info['video_id'] for info in video_infos], gts


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
    """mAP at tIoU 0.1 ... 0.9 of SSN's test output against the dataset's ground truth.

    ``process(predictions, batch)`` takes per video (row) either SSN's ``predict`` output,
    ``test_scores`` ``(F, D)`` (pooled here over the batch's ``proposal_tick_list`` and
    ``scale_factor_list`` by ``stpp_test_pool``, regression de-normalised with
    ``reg_norm_consts``; needs ``model``, the SSN or its config), or already pooled
    ``activity_scores``, ``completeness_scores``, ``bbox_preds``; and the batch's
    ``relative_proposal_list`` and ``index``. ``compute(dataset)`` evaluates against the
    ground truth of an ``SSNDataset`` (or of ``ann_file``), in the order of its videos.

    Args:
        model: the SSN module or its config (its head's ``num_classes``, ``stpp_stage``).
        ann_file: a TAG proposal list to read the ground truth from when ``compute`` gets
            no ``SSNDataset``.
        evaluater: ``test_cfg.ssn.evaluater`` (``top_k``, ``nms``).
        use_regression: apply the boundary regression before NMS.
    """

    def __init__(self, model: Any = None, ann_file: str | None = None,
                 evaluater: Mapping[str, Any] | None = None, use_regression: bool = True,
                 metric_list: Sequence[str] = ('mAP',), prefix: str | None = None) -> None:
        if list(metric_list) != ['mAP']:
            raise ValueError(f"SSNMetric computes 'mAP' only, got metric_list={list(metric_list)}")
        if isinstance(model, Mapping):
            from actionjax.models.localizers import build_localizer

            model = build_localizer(model, 'test_evaluator.model')
        self.model = model
        self.ann_file = ann_file
        self.evaluater = {'top_k': 2000, 'nms': 0.2, **dict(evaluater or {})}
        self.use_regression = use_regression
        self.prefix = prefix
        self._results: dict[int, dict[str, np.ndarray]] = {}

    def process(self, predictions: Mapping[str, np.ndarray], batch: Mapping[str, np.ndarray]) -> None:
        for row, index in enumerate(batch['index']):
            if 'test_scores' in predictions:
                result = self._pool(np.asarray(predictions['test_scores'][row]),
                                    {key: np.asarray(value[row]) for key, value in batch.items()})
            else:
                keys = [k for k in POOLED_KEYS if k in predictions]
                result = {key: np.asarray(predictions[key][row]) for key in keys}
            result['relative_proposal_list'] = np.asarray(batch['relative_proposal_list'][row])
            self._results[int(index)] = result

    def _pool(self, scores: np.ndarray, sample: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """MMAction2's ``SSN.forward_test`` after the test fc: STPP pooling, regression de-normalised."""
        if self.model is None:
            raise ValueError('SSNMetric needs the SSN to pool its test scores: add model=model to the '
                             "evaluator config (dict(type='SSNMetric', model=model))")
        head = self.model.cls_head
        activity, completeness, bbox = stpp_test_pool(scores, sample['proposal_tick_list'],
                                                      sample['scale_factor_list'], head.num_classes,
                                                      head.stpp_stage, head.use_regression)
        if bbox is not None:
            bbox = bbox.reshape(-1, head.num_classes, 2)
            norm = np.asarray(sample['reg_norm_consts'])
            bbox[:, :, 0] = bbox[:, :, 0] * norm[1, 0] + norm[0, 0]
            bbox[:, :, 1] = bbox[:, :, 1] * norm[1, 1] + norm[0, 1]
        return dict(activity_scores=activity, completeness_scores=completeness, bbox_preds=bbox)

    def compute(self, dataset: Any = None) -> dict[str, float]:
        results, self._results = self._results, {}
        if dataset is not None and hasattr(dataset, 'video_infos') and 'gts' in dataset.video_infos[0]:
            video_ids, ground_truth = dataset_ground_truth(dataset.video_infos)
        elif self.ann_file is not None:
            video_ids, ground_truth = ground_truth_by_class(self.ann_file)
        else:
            raise ValueError('SSNMetric needs the ground truth: an SSNDataset in compute(dataset), '
                             'or ann_file')
        if sorted(results) != list(range(len(video_ids))):
            raise ValueError(f'SSNMetric saw {len(results)} videos, the dataset has {len(video_ids)} with '
                             'ground truth; evaluate the whole split')
        ordered = [results[i] for i in range(len(video_ids))]
        out = evaluate_detections(ordered, video_ids, ground_truth, use_regression=self.use_regression,
                                  **self.evaluater)
        return {f'{self.prefix}/{k}' if self.prefix else k: v for k, v in out.items()}
