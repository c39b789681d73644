"""BSN's Proposal Generation Module (PGM): TEM results -> candidate proposals -> BSP features.

Host-side numpy, MMAction2 1.2.0's ``generate_candidate_proposals`` and
``generate_bsp_feature`` for one video (same arithmetic and dtypes, vectorised):

* ``candidate_proposals``: every pair of a start peak and a later end peak of the TEM
  probabilities is a proposal; rows ``tmin, tmax, tmin_score, tmax_score, score,
  match_iou, match_ioa`` (``score = tmin_score * tmax_score``, best first; the matches
  are against the video's ground truth, PEM's training target);
* ``bsp_feature``: each proposal's boundary-sensitive feature, the TEM actionness
  interpolated at 16 points inside it and 8 around each of its boundaries (32 values).

``actionjax.tools.bsn_proposal_generation`` runs both over a dataset with the settings of
``configs/bsn_pgm.py`` and writes the files ``LoadProposals`` reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from actionjax.proposals import peaks, temporal_iop, temporal_iou

PROPOSAL_HEADER = 'tmin,tmax,tmin_score,tmax_score,score,match_iou,match_ioa'


def candidate_proposals(tem_results: np.ndarray, video_info: Mapping[str, Any], temporal_scale: int,
                        peak_threshold: float) -> np.ndarray:
    """``(n, 7)`` float64 proposals of one video from its TEM table ``(T, 5)`` (float32, as read).

    ``video_info`` needs ``duration_frame``, ``duration_second``, ``feature_frame`` and
    ``annotations``. Boundaries sit at snippet centres, ``(i + 0.5) / temporal_scale``.
    """
    start_scores, end_scores = tem_results[:, 1], tem_results[:, 2]
    gap = 1.0 / temporal_scale
    centres = gap / 2 + gap * np.arange(temporal_scale)
    starts = peaks(start_scores[:temporal_scale], peak_threshold)
    ends = peaks(end_scores[:temporal_scale], peak_threshold)
    starts[[0, -1]] = True
    ends[[0, -1]] = True
    tmin, tmin_score = centres[starts], start_scores[:temporal_scale][starts]
    tmax, tmax_score = centres[ends], end_scores[:temporal_scale][ends]
    end_index, start_index = np.nonzero(tmin[None, :] < tmax[:, None])  # by end, then start, as MMAction2
    table = np.stack([tmin[start_index], tmax[end_index], tmin_score[start_index], tmax_score[end_index]],
                     axis=1).astype(np.float64)
    table = np.concatenate([table, (table[:, 2] * table[:, 3])[:, None]], axis=1)
    table = table[table[:, -1].argsort()[::-1]]
    frames = float(video_info['feature_frame']) / video_info['duration_frame']
    covered = frames * video_info['duration_second']
    gt_min = np.array([ann['segment'][0] / covered for ann in video_info['annotations']])
    gt_max = np.array([ann['segment'][1] / covered for ann in video_info['annotations']])
    tmin, tmax = table[:, :1], table[:, 1:2]
    match_iou = temporal_iou(tmin, tmax, gt_min[None], gt_max[None]).max(axis=1)
    match_ioa = temporal_iop(tmin, tmax, gt_min[None], gt_max[None]).max(axis=1)
    return np.concatenate([table, match_iou[:, None], match_ioa[:, None]], axis=1)


def _window_means(t_points: np.ndarray, actionness: np.ndarray, first: np.ndarray, step: np.ndarray,
                  num_sample: int, num_sample_interp: int) -> np.ndarray:
    """Means of ``num_sample`` windows of ``num_sample_interp + 1`` interpolated actionness values.

    ``first`` and ``step`` ``(P,)`` float32: point ``j`` of a proposal is ``first + step * j``
    (float32, as MMAction2 computes it), window ``i`` covers points ``i * interp .. (i + 1) * interp``.
    """
    points = first[:, None] + step[:, None] * np.arange(num_sample * num_sample_interp + 1, dtype=np.float32)
    values = np.interp(points, t_points, actionness)
    index = np.arange(num_sample)[:, None] * num_sample_interp + np.arange(num_sample_interp + 1)
    return values[:, index].mean(axis=2)


def bsp_feature(tem_results: np.ndarray, proposals: np.ndarray, bsp_boundary_ratio: float = 0.2,
                num_sample_start: int = 8, num_sample_end: int = 8, num_sample_action: int = 16,
                num_sample_interp: int = 3) -> np.ndarray:
    """``(P, num_sample_action + num_sample_start + num_sample_end)`` BSP features (float64).

    ``tem_results`` ``(T, 5)`` and ``proposals`` ``(P, >= 2)`` as float32 (as read from their
    csv files). The actionness curve is extended with zeros on both sides; the start
    (end) region is ``tmin (tmax) +- bsp_boundary_ratio * length``.
    """
    actionness = tem_results[:, 0]
    seg_tmin, seg_tmax = tem_results[:, 3], tem_results[:, 4]
    scale = len(tem_results)
    gap = seg_tmax[0] - seg_tmin[0]
    extend = int(scale / 4 + 10)
    padded = np.concatenate([np.zeros(extend), actionness, np.zeros(extend)])
    outer = np.arange(extend, dtype=np.float32)
    inner = np.arange(scale, dtype=np.float32)  # float32 times, as MMAction2's python-int x float32
    t_points = np.concatenate([-gap / 2 - (extend - 1 - outer) * gap, gap / 2 + inner * gap,
                               gap / 2 + seg_tmax[-1] + outer * gap])
    tmin, tmax = proposals[:, 0].astype(np.float32), proposals[:, 1].astype(np.float32)
    length = tmax - tmin
    margin = length * bsp_boundary_ratio
    features = []
    for lo, hi, num in ((tmin, tmax, num_sample_action), (tmin - margin, tmin + margin, num_sample_start),
                        (tmax - margin, tmax + margin, num_sample_end)):
        spacing = (hi - lo) / (num - 1)
        step = spacing / num_sample_interp
        features.append(_window_means(t_points, padded, lo - spacing / 2, step, num, num_sample_interp))
    return np.concatenate(features, axis=1)
