"""A small ActivityNet-style feature set (``python -m actionjax.tools.make_synthetic_features``).

What a temporal localizer (BMN, BSN) trains on, in ActivityNet's layout, with no download::

    <out>/features/v_syn00000.csv          # header row, then temporal_dim rows x feat_dim
    <out>/anet_anno_train.json            # MMAction2's annotation format (seconds)
    <out>/anet_anno_val.json

Each video is 20-150 s long and holds one to three non-overlapping actions covering 4-60 %
of it. Feature row ``t`` describes the ``t``-th of ``temporal_dim`` equal snippets of the
part of the video the features cover (``feature_frame`` frames, as in ActivityNet):

    feature = noise + video_offset + actionness(t) * u_action + start(t) * u_start + end(t) * u_end

``actionness`` is the fraction of the snippet inside an action, ``start``/``end`` are
bumps a snippet wide around every action's boundaries, ``u_*`` are fixed random directions
and the unit Gaussian noise per value keeps any single snippet ambiguous: a model has to
look at its neighbours to find the boundaries, which is what BMN's temporal convolutions do.

Everything is drawn from ``--seed``; ``ensure_synthetic_features(root)`` writes the folder
only when it is missing or incomplete (``SyntheticActivityNetDataset`` calls it).
"""

from __future__ import annotations

import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Any

import numpy as np

_COMPLETE = '.complete'  # written last: its presence means the folder is whole
FEATURE_INTERVAL = 16  # frames per feature snippet in ActivityNet's features: feature_frame is a multiple


def _segments(rng: np.random.Generator, covered: float) -> list[tuple[float, float]]:
    """1-3 non-overlapping (start, end) in seconds inside ``[0, covered]``, of varied length."""
    count = int(rng.integers(1, 4))
    lengths = rng.uniform(0.04, 0.6 / count, size=count) * covered
    gaps = rng.dirichlet(np.ones(count + 1)) * (covered - lengths.sum())
    segments, t = [], 0.0
    for gap, length in zip(gaps[:-1], lengths, strict=True):
        t += gap
        segments.append((t, t + length))
        t += length
    return segments


def video_features(rng: np.random.Generator, segments: list[tuple[float, float]], covered: float,
                   directions: np.ndarray, temporal_dim: int) -> np.ndarray:
    """``(temporal_dim, feat_dim)`` float32 features of a video with ``segments`` (seconds)."""
    feat_dim = directions.shape[1]
    edges = np.linspace(0.0, 1.0, temporal_dim + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    actionness = np.zeros(temporal_dim)
    starts = np.zeros(temporal_dim)
    ends = np.zeros(temporal_dim)
    width = 1.0 / temporal_dim
    for start, end in segments:
        s, e = start / covered, end / covered
        overlap = np.clip(np.minimum(edges[1:], e) - np.maximum(edges[:-1], s), 0, None) / width
        actionness = np.maximum(actionness, overlap)
        starts = np.maximum(starts, np.exp(-0.5 * ((centres - s) / width) ** 2))
        ends = np.maximum(ends, np.exp(-0.5 * ((centres - e) / width) ** 2))
    offset = rng.normal(0, 0.5, size=feat_dim)
    noise = rng.normal(0, 1.0, size=(temporal_dim, feat_dim))
    signal = np.stack([actionness, starts, ends], axis=1) @ directions
    return (noise + offset + signal).astype(np.float32)


def make_synthetic_features(out: str, num_train: int = 160, num_val: int = 40, temporal_dim: int = 100,
                            feat_dim: int = 32, seed: int = 0) -> dict[str, Any]:
    """Write the feature set into ``out`` (see the module docstring); returns its summary."""
    rng = np.random.default_rng(seed)
    # Three well separated directions of norm 2.5 (so per-value SNR stays below 1).
    directions = np.linalg.qr(rng.normal(size=(feat_dim, 3)))[0].T * 2.5
    os.makedirs(osp.join(out, 'features'), exist_ok=True)
    header = ','.join(f'f{i}' for i in range(feat_dim))
    index = 0
    for split, count in (('train', num_train), ('val', num_val)):
        database = {}
        for _ in range(count):
            name = f'v_syn{index:05d}'
            index += 1
            fps = float(rng.choice([24.0, 25.0, 30.0]))
            duration_second = round(float(rng.uniform(20.0, 150.0)), 2)
            duration_frame = int(duration_second * fps)
            feature_frame = duration_frame // FEATURE_INTERVAL * FEATURE_INTERVAL
            covered = feature_frame / duration_frame * duration_second
            segments = _segments(rng, covered)
            features = video_features(rng, segments, covered, directions, temporal_dim)
            np.savetxt(osp.join(out, 'features', f'{name}.csv'), features, fmt='%.4f', delimiter=',',
                       header=header, comments='')
            database[name] = dict(
                duration_second=duration_second, duration_frame=duration_frame,
                annotations=[dict(segment=[round(s, 3), round(e, 3)], label='synthetic action')
                             for s, e in segments],
                feature_frame=feature_frame, fps=fps, rfps=fps)
        with open(osp.join(out, f'anet_anno_{split}.json'), 'w') as f:
            json.dump(database, f, indent=1)
    summary = dict(num_train=num_train, num_val=num_val, temporal_dim=temporal_dim, feat_dim=feat_dim,
                   seed=seed)
    with open(osp.join(out, _COMPLETE), 'w') as f:
        json.dump(summary, f)
    return summary


def is_complete(root: str, **kwargs: Any) -> bool:
    """True when ``root`` holds a finished feature set made with these arguments."""
    marker = osp.join(root, _COMPLETE)
    if not osp.isfile(marker):
        return False
    with open(marker) as f:
        summary = json.load(f)
    return all(summary.get(key) == value for key, value in kwargs.items())


def ensure_synthetic_features(root: str = 'data/synthetic_activitynet', **kwargs: Any) -> str:
    """Make sure the feature set exists at ``root`` (made with ``kwargs``); write it if not.

    Safe when several processes call it at once: each writes a temporary sibling folder
    and renames it into place; the first rename wins.
    """
    if is_complete(root, **kwargs):
        return root
    parent = osp.dirname(osp.abspath(root))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{osp.basename(root)}-', dir=parent)
    try:
        make_synthetic_features(tmp, **kwargs)
        if osp.isdir(root) and not is_complete(root, **kwargs):
            shutil.rmtree(root, ignore_errors=True)  # partial, or made with other arguments
        try:
            os.rename(tmp, root)
        except OSError:
            if not is_complete(root, **kwargs):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root
