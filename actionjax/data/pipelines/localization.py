"""Temporal localization pipelines: video features, ground-truth segments, BSN proposals.

MMAction2 1.2.0's transforms under their names, with two differences that JAX asks for:

* features stay channels-last: ``raw_feature`` is ``(temporal_dim, feat_dim)``
  (MMAction2 transposes it to ``(feat_dim, temporal_dim)``);
* ``PackLocalizationInputs`` pads the per-instance arrays (``gt_bbox``, a video's BSN
  proposals) with zero rows to a fixed ``max_instances`` and records the real count as
  ``num_instances``, so that every sample of a batch has one shape. The models mask the
  padding out.

Steps that read files raise ``OSError`` naming the file, so the loader reports a
missing feature file and goes on with another sample.
"""

from __future__ import annotations

import os.path as osp
from collections.abc import Sequence
from typing import Any

import numpy as np

from actionjax.registry import PIPELINES

# Enough for ActivityNet (a few videos have a few dozen segments); raise it for denser data.
DEFAULT_MAX_GT = 64


def load_csv(path: str) -> np.ndarray:
    """A ``(rows, columns)`` float32 array from a csv file with one header row."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'feature file {path!r} does not exist')
    return np.loadtxt(path, dtype=np.float32, delimiter=',', skiprows=1, ndmin=2)


@PIPELINES.register_module()
class LoadLocalizationFeature:
    """Read ``results['feature_path']`` (csv) into ``raw_feature``, ``(temporal_dim, feat_dim)`` float32.

    ``raw_feature_ext`` is MMAction2 0.x's argument; only '.csv' exists there too.
    """

    def __init__(self, raw_feature_ext: str = '.csv') -> None:
        if raw_feature_ext != '.csv':
            raise ValueError(f"LoadLocalizationFeature reads csv features only; raw_feature_ext must be "
                             f"'.csv', got {raw_feature_ext!r}")
        self.raw_feature_ext = raw_feature_ext

    def __call__(self, results: dict) -> dict:
        results['raw_feature'] = load_csv(results['feature_path'])
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}()'


@PIPELINES.register_module()
class GenerateLocalizationLabels:
    """Ground-truth segments as fractions of the featured part of the video: ``gt_bbox`` ``(n, 2)``.

    The features cover ``feature_frame`` of the ``duration_frame`` frames, i.e.
    ``feature_frame / duration_frame * duration_second`` seconds; a segment
    ``[start, end]`` (seconds) becomes ``[start, end] / that``, clipped to ``[0, 1]``.
    """

    def __call__(self, results: dict) -> dict:
        frames = float(results['feature_frame']) / results['duration_frame']
        covered_seconds = frames * results['duration_second']
        segments = [ann['segment'] for ann in results['annotations']]
        bbox = np.asarray(segments, np.float64).reshape(-1, 2) / covered_seconds
        results['gt_bbox'] = np.clip(bbox, 0.0, 1.0)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}()'


@PIPELINES.register_module()
class LoadProposals:
    """BSN's proposals of a video and their boundary-sensitive features (input of PEM).

    Reads ``<pgm_proposals_dir>/<video_name>.csv`` (columns ``tmin, tmax, tmin_score,
    tmax_score, score, match_iou, match_ioa``, one header row) and
    ``<pgm_features_dir>/<video_name>.npy`` (``(proposals, 32)``), keeps the first
    ``top_k`` rows and adds ``tmin``, ``tmax``, ``tmin_score``, ``tmax_score``,
    ``reference_temporal_iou`` (``match_iou``) and ``bsp_feature``. ``proposal_top_k``
    tells ``PackLocalizationInputs`` how many rows to pad to.
    """

    def __init__(self, top_k: int, pgm_proposals_dir: str, pgm_features_dir: str,
                 proposal_ext: str = '.csv', feature_ext: str = '.npy') -> None:
        if proposal_ext != '.csv':
            raise ValueError(f"LoadProposals: proposal_ext must be '.csv', got {proposal_ext!r}")
        if feature_ext != '.npy':
            raise ValueError(f"LoadProposals: feature_ext must be '.npy', got {feature_ext!r}")
        self.top_k = int(top_k)
        self.pgm_proposals_dir = pgm_proposals_dir
        self.pgm_features_dir = pgm_features_dir
        self.proposal_ext = proposal_ext
        self.feature_ext = feature_ext

    def __call__(self, results: dict) -> dict:
        name = results['video_name']
        proposals = load_csv(osp.join(self.pgm_proposals_dir, name + self.proposal_ext))[:self.top_k]
        feature_path = osp.join(self.pgm_features_dir, name + self.feature_ext)
        if not osp.isfile(feature_path):
            raise FileNotFoundError(f'BSP feature file {feature_path!r} does not exist; run BSN\'s PGM first')
        bsp_feature = np.load(feature_path).astype(np.float32)[:self.top_k]
        results.update(tmin=proposals[:, 0], tmax=proposals[:, 1], tmin_score=proposals[:, 2],
                       tmax_score=proposals[:, 3], reference_temporal_iou=proposals[:, 5],
                       bsp_feature=bsp_feature, proposal_top_k=self.top_k)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(top_k={self.top_k}, pgm_proposals_dir={self.pgm_proposals_dir!r}, '
                f'pgm_features_dir={self.pgm_features_dir!r})')


@PIPELINES.register_module()
class PackLocalizationInputs:
    """Keep what a localizer's batch holds: features, fixed-size instance arrays, their count.

    Output keys:

    * ``raw_feature`` float32 ``(temporal_dim, feat_dim)`` when the results have it;
    * each of ``keys`` that the results have (e.g. ``gt_bbox``; PEM's ``bsp_feature``,
      ``tmin``, ...), float32, zero-padded along its first (instance) axis to
      ``max_instances`` rows; all of them must have the same number of rows;
    * ``num_instances`` int32: that number of rows before padding;
    * ``meta``: the ``meta_keys`` the results have (names, durations; the loader does
      not batch it, metrics look the video up in the dataset).

    ``max_instances`` defaults to ``LoadProposals``' ``top_k`` for proposals and to
    64 for ground-truth segments.
    """

    def __init__(self, keys: Sequence[str] = (), meta_keys: Sequence[str] = ('video_name',),
                 max_instances: int | None = None) -> None:
        self.keys = tuple(keys)
        self.meta_keys = tuple(meta_keys)
        self.max_instances = max_instances

    def __call__(self, results: dict) -> dict:
        if 'raw_feature' not in results and 'bsp_feature' not in results:
            raise KeyError('PackLocalizationInputs: the results have neither raw_feature nor bsp_feature; '
                           'start the pipeline with LoadLocalizationFeature or LoadProposals')
        packed: dict[str, Any] = {}
        if 'raw_feature' in results:
            packed['raw_feature'] = np.asarray(results['raw_feature'], np.float32)
        instances = {key: np.asarray(results[key], np.float32) for key in self.keys if key in results}
        if instances:
            counts = {key: len(value) for key, value in instances.items()}
            if len(set(counts.values())) > 1:
                raise ValueError(f'PackLocalizationInputs: keys {counts} have different numbers of rows; '
                                 'pack ground truth and proposals in separate pipelines')
            count = next(iter(counts.values()))
            size = self._size(results)
            if count > size:
                raise ValueError(
                    f'video {results.get("video_name", "?")!r} has {count} rows of {list(instances)}, more '
                    f'than PackLocalizationInputs max_instances={size}; raise max_instances in the pipeline '
                    'config')
            for key, value in instances.items():
                padded = np.zeros((size,) + value.shape[1:], np.float32)
                padded[:count] = value
                packed[key] = padded
            packed['num_instances'] = np.int32(count)
        packed['meta'] = {key: results[key] for key in self.meta_keys if key in results}
        return packed

    def _size(self, results: dict) -> int:
        if self.max_instances is not None:
            return int(self.max_instances)
        return int(results.get('proposal_top_k', DEFAULT_MAX_GT))

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(keys={self.keys}, meta_keys={self.meta_keys}, '
                f'max_instances={self.max_instances})')
