"""ActivityNet's proposal metric: average recall against the average number of proposals (AR@AN).

For each video only its best ``ratio * (its proposal count)`` proposals are kept, with
``ratio`` chosen so that an average video keeps ``max_avg_proposals``; recall is then
measured at 1 %, 2 %, ..., 100 % of that budget and at every tIoU threshold. Same
numbers as MMAction2's ``average_recall_at_avg_proposals`` (the same float32 / float64
steps), vectorised.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

DEFAULT_TIOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


def pairwise_temporal_iou(candidates: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``(n_targets, n_candidates)`` float32 IoU of ``[start, end]`` rows (computed as MMAction2 does)."""
    candidates = np.asarray(candidates).reshape(-1, 2)
    targets = np.asarray(targets)
    c0, c1 = candidates[None, :, 0], candidates[None, :, 1]
    t0, t1 = targets[:, None, 0], targets[:, None, 1]
    inter = (np.minimum(c1, t1) - np.maximum(c0, t0)).clip(0)
    union = (t1 - t0) + (c1 - c0) - inter
    return (inter.astype(float) / union).astype(np.float32)


def average_recall_at_avg_proposals(
        ground_truth: Mapping[str, np.ndarray], proposals: Mapping[str, np.ndarray], total_num_proposals: int,
        max_avg_proposals: float | None = None,
        temporal_iou_thresholds: np.ndarray = DEFAULT_TIOU_THRESHOLDS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """``(recall, average_recall, proposals_per_video, auc)`` as MMAction2 computes them.

    Args:
        ground_truth: video id -> ``(n, >= 2)`` segments ``[start, end, ...]`` (seconds).
        proposals: video id -> ``(m, 3)`` ``[start, end, score]``; every ground-truth video
            must have an entry (it may be empty).
        total_num_proposals: proposals over all videos (MMAction2 passes the count it read).
        max_avg_proposals: the proposal budget of an average video; default: the
            average count.
        temporal_iou_thresholds: tIoU thresholds.

    ``recall[i, j]`` is the recall at threshold ``i`` with ``(j + 1)`` % of the budget;
    ``auc`` is the area under the average-recall curve over proposals per video, in
    percent of its maximum.
    """
    num_videos = len(ground_truth)
    if not max_avg_proposals:
        max_avg_proposals = float(total_num_proposals) / num_videos
    ratio = max_avg_proposals * float(num_videos) / total_num_proposals
    ious = []
    num_retrieved = 0
    for video_id, segments in ground_truth.items():
        if video_id not in proposals:
            raise KeyError(f'no proposals for video {video_id!r}; every annotated video needs an entry '
                           '(an empty one is fine)')
        video_proposals = np.asarray(proposals[video_id], np.float64).reshape(-1, 3)
        gt = np.asarray(segments)[:, :2].astype(np.float32)
        if len(video_proposals) == 0:
            ious.append(np.zeros((len(gt), 1)))
            continue
        order = video_proposals[:, 2].argsort()[::-1]
        candidates = video_proposals[order, :2].astype(np.float32)
        keep = min(int(len(candidates) * ratio), len(candidates))
        num_retrieved += keep
        ious.append(pairwise_temporal_iou(candidates[:keep], gt))

    fractions = np.arange(1, 101) / 100.0 * (max_avg_proposals * float(num_videos) / num_retrieved)
    positives = np.array([iou.shape[0] for iou in ious], np.float64)
    recall = np.empty((len(temporal_iou_thresholds), len(fractions)))
    for r, threshold in enumerate(temporal_iou_thresholds):
        matches = np.empty((num_videos, len(fractions)))
        for i, iou in enumerate(ious):
            budget = np.minimum((iou.shape[1] * fractions).astype(np.int32), iou.shape[1])
            hit = iou >= threshold
            # the first proposal matching each segment (iou.shape[1]: none); a segment counts
            # for a budget k when that proposal is among the first k
            first = np.where(hit.any(axis=1), hit.argmax(axis=1), iou.shape[1])
            matches[i] = (first[None, :] < budget[:, None]).sum(axis=1)
        recall[r] = matches.sum(axis=0) / positives.sum()
    average_recall = recall.mean(axis=0)
    proposals_per_video = fractions * (float(num_retrieved) / num_videos)
    area = np.trapezoid(average_recall, proposals_per_video)
    auc = 100.0 * float(area) / proposals_per_video[-1]
    return recall, average_recall, proposals_per_video, auc
