"""Proposal post-processing on the host, in numpy, as MMAction2 1.2.0 does it.

A proposal table has one row per candidate, ``[tmin, tmax, ..., score]`` with times as
fractions of the featured part of the video and the score last. ``soft_nms`` decays
the scores of candidates that overlap a better one; ``post_processing`` keeps the best
``top_k`` and turns them into MMAction2's proposal list in seconds::

    [{'score': 0.93, 'segment': [12.1, 57.6]}, ...]

Ties are broken exactly as MMAction2's ``argsort()[::-1]`` / ``argmax`` do, the
arithmetic is written in MMAction2's order and stays in the table's dtype (float64 for
BMN's table, float32 for PEM's, as there), so the same table gives the same list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def temporal_iou(tmin: Any, tmax: Any, gt_min: Any, gt_max: Any) -> np.ndarray:
    """Intersection over union of ``[tmin, tmax]`` and ``[gt_min, gt_max]`` (broadcasting)."""
    inter = np.maximum(np.minimum(tmax, gt_max) - np.maximum(tmin, gt_min), 0.0)
    return inter / ((tmax - tmin) - inter + gt_max - gt_min)


def temporal_iop(tmin: Any, tmax: Any, gt_min: Any, gt_max: Any) -> np.ndarray:
    """Intersection of ``[tmin, tmax]`` with ``[gt_min, gt_max]`` over the length of the first."""
    inter = np.maximum(np.minimum(tmax, gt_max) - np.maximum(tmin, gt_min), 0.0)
    return inter / np.asarray(tmax - tmin)


def soft_nms(proposals: np.ndarray, alpha: float, low_threshold: float, high_threshold: float,
             top_k: int) -> np.ndarray:
    """Gaussian soft-NMS: ``(n, >= 3)`` proposals -> ``(k, 3)`` ``[tmin, tmax, score]``, k <= top_k + 1.

    Repeatedly takes the best remaining candidate and multiplies the score of every other
    candidate whose IoU with it exceeds ``low + (high - low) * width(best)`` by
    ``exp(-iou^2 / alpha)``. Like MMAction2 it stops after ``top_k + 1`` picks.
    """
    order = np.argsort(proposals[:, -1])[::-1]
    tmin, tmax, score = proposals[order, 0], proposals[order, 1], proposals[order, -1]
    alive = np.ones(len(order), bool)
    picked = []
    while alive.any() and len(picked) <= top_k:
        best = int(np.argmax(np.where(alive, score, -np.inf)))  # first of equal scores, as MMAction2
        width = tmax[best] - tmin[best]
        iou = temporal_iou(tmin[best], tmax[best], tmin, tmax)
        decay = alive & (iou > low_threshold + (high_threshold - low_threshold) * width)
        decay[best] = False
        score = np.where(decay, score * np.exp(-np.square(iou) / alpha), score)
        picked.append((tmin[best], tmax[best], score[best]))
        alive[best] = False
    return np.array(picked, proposals.dtype).reshape(-1, 3)


def featured_seconds(video_info: Mapping[str, Any], feature_extraction_interval: int) -> float:
    """Seconds of the video the features cover: whole ``feature_extraction_interval`` frame chunks."""
    frames = video_info['duration_frame']
    covered = frames // feature_extraction_interval * feature_extraction_interval
    return float(covered) / frames * video_info['duration_second']


def select_proposals(proposals: np.ndarray, soft_nms_alpha: float, soft_nms_low_threshold: float,
                     soft_nms_high_threshold: float, post_process_top_k: int) -> np.ndarray:
    """Soft-NMS (when there are several candidates), then the best ``post_process_top_k``.

    ``(k, 3)`` rows ``[tmin, tmax, score]``, best first, times still fractions.
    """
    if len(proposals) > 1:
        proposals = soft_nms(proposals, soft_nms_alpha, soft_nms_low_threshold, soft_nms_high_threshold,
                             post_process_top_k)
    proposals = proposals[np.argsort(proposals[:, -1])[::-1]]
    return proposals[:post_process_top_k][:, [0, 1, -1]]


def proposal_list(selected: np.ndarray, video_info: Mapping[str, Any],
                  feature_extraction_interval: int) -> list[dict[str, Any]]:
    """``[tmin, tmax, score]`` rows -> ``[{'score', 'segment': [start_s, end_s]}]``, clipped to the video.

    ``video_info`` needs ``duration_frame`` and ``duration_second``.
    """
    seconds = featured_seconds(video_info, feature_extraction_interval)
    return [dict(score=float(row[2]), segment=[max(0, row[0]) * seconds, min(1, row[1]) * seconds])
            for row in selected]


def post_processing(proposals: np.ndarray, video_info: Mapping[str, Any], soft_nms_alpha: float,
                    soft_nms_low_threshold: float, soft_nms_high_threshold: float, post_process_top_k: int,
                    feature_extraction_interval: int) -> list[dict[str, Any]]:
    """MMAction2's ``post_processing``: ``select_proposals``, then ``proposal_list``."""
    selected = select_proposals(proposals, soft_nms_alpha, soft_nms_low_threshold, soft_nms_high_threshold,
                                post_process_top_k)
    return proposal_list(selected, video_info, feature_extraction_interval)


def peaks(scores: np.ndarray, ratio: float) -> np.ndarray:
    """Where a boundary may be: local maxima and scores above ``ratio * max`` (inner positions only).

    The first and last positions are left out (``False``); callers decide about them.
    """
    inner = scores[1:-1]
    is_peak = (inner > scores[2:]) & (inner > scores[:-2])
    keep = np.zeros(len(scores), bool)
    keep[1:-1] = is_peak | (inner > ratio * scores.max())
    return keep


def bmn_candidates(start: np.ndarray, end: np.ndarray, confidence_map: np.ndarray) -> np.ndarray:
    """BMN's candidate proposals of one video, MMAction2's ``BMN.predict`` table ``(n, 7)``.

    ``start``/``end`` ``(T,)`` and ``confidence_map`` ``(2, D, T)`` (regression, then
    classification; ``[d, s]`` is the proposal from snippet ``s`` to ``s + d + 1``). A
    candidate starts at a start peak (or at 0) and ends at an end peak (or at ``T - 1``).
    Rows ``[tmin, tmax, start score, end score, cls score, reg score, score]`` in
    MMAction2's order (by duration, then start).
    """
    tscale = len(start)
    start_bins = peaks(start, 0.5)
    start_bins[0] = True
    end_bins = peaks(end, 0.5)
    end_bins[-1] = True
    duration, first = np.nonzero(np.ones((tscale, tscale), bool))  # every (d, s), duration-major
    last = first + duration + 1
    inside = last < tscale
    duration, first, last = duration[inside], first[inside], last[inside]
    keep = start_bins[first] & end_bins[last]
    duration, first, last = duration[keep], first[keep], last[keep]
    start_score, end_score = start[first], end[last]
    reg_score, cls_score = confidence_map[0][duration, first], confidence_map[1][duration, first]
    score = start_score * end_score * cls_score * reg_score  # float32 products, left to right
    return np.stack([first / tscale, last / tscale, start_score, end_score, cls_score, reg_score, score],
                    axis=1).astype(np.float64)
