"""ActivityNet for temporal action localization: per-video feature files and one annotation json.

The annotation file maps each video name to its metadata and segments (MMAction2's
``anet_anno_{train,val}.json``)::

    {"v_--1DO2V4K74": {"duration_second": 211.53, "duration_frame": 6337,
                       "feature_frame": 6336, "fps": 30.0, "rfps": 29.96,
                       "annotations": [{"segment": [30.03, 205.23], "label": "Rock climbing"}]},
     ...}

and every video has a feature file ``<data_prefix>/<video_name>.csv``: one header row,
then ``temporal_dim`` rows of ``feat_dim`` comma-separated numbers (the ``csv_mean_100``
layout of the CUHK ActivityNet features). ``feature_frame`` is the number of frames the
features cover; segments are in seconds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from actionjax.data.datasets import BaseDataset
from actionjax.registry import DATASETS

# Keys a video entry of the annotation file must have (the pipelines and metrics read them).
REQUIRED_KEYS = ('duration_second', 'duration_frame', 'feature_frame', 'annotations')


@DATASETS.register_module()
class ActivityNetDataset(BaseDataset):
    """ActivityNet-style localization dataset (MMAction2's ``ActivityNetDataset``).

    Sample ``i`` is the i-th video of the annotation file (file order), as a dict with
    the json entry plus ``video_name`` and ``feature_path``. ``data_prefix`` is the
    folder of the feature files (``dict(video=...)`` as in MMAction2 1.x, or a string).
    """

    prefix_key = 'video'

    def __init__(self, ann_file: str, pipeline: Sequence[Any],
                 data_prefix: str | Mapping[str, str] | None = None, test_mode: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(ann_file, pipeline, data_prefix=data_prefix, test_mode=test_mode, **kwargs)

    def load_annotations(self) -> list[dict[str, Any]]:
        with open(self.ann_file) as f:
            database = json.load(f)
        if not isinstance(database, Mapping):
            raise ValueError(f'{self.ann_file} (config key {self.cfg_key + ".ann_file"!r}) must be a json '
                             'object mapping video names to their info, as ActivityNet annotation files are')
        infos = []
        for video_name, info in database.items():
            missing = [key for key in REQUIRED_KEYS if key not in info]
            if missing:
                raise ValueError(f'{self.ann_file}: video {video_name!r} lacks {missing} (config key '
                                 f'{self.cfg_key + ".ann_file"!r}); every entry needs {list(REQUIRED_KEYS)}')
            infos.append(dict(info, video_name=video_name,
                              feature_path=self._join(f'{video_name}.csv')))
        return infos

    def sample_path(self, index: int) -> str:
        return self.video_infos[index]['feature_path']


@DATASETS.register_module()
class SyntheticActivityNetDataset(ActivityNetDataset):
    """An ``ActivityNetDataset`` over the synthetic feature set, generated on first use.

    ``configs/bmn_demo.py`` uses it so that training needs no download: when
    ``synthetic_root`` is not complete yet,
    ``actionjax.data.synthetic_features.ensure_synthetic_features`` writes it
    (about a second), then this is a plain ``ActivityNetDataset``.

    Args:
        synthetic_root: the folder ``ensure_synthetic_features`` fills.
        synthetic_cfg: its keyword arguments (``temporal_dim``, ``feat_dim``, ...);
            they must match the model config.
        **kwargs: ``ActivityNetDataset`` arguments (``ann_file``, ``data_prefix``, ...).
    """

    def __init__(self, ann_file: str, pipeline: Sequence[Any],
                 synthetic_root: str = 'data/synthetic_activitynet',
                 synthetic_cfg: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        from actionjax.data.synthetic_features import ensure_synthetic_features

        ensure_synthetic_features(synthetic_root, **dict(synthetic_cfg or {}))
        super().__init__(ann_file, pipeline, **kwargs)


def video_info(dataset: Any, index: int) -> dict[str, Any]:
    """The annotation entry of sample ``index`` (through ``RepeatDataset`` wrappers)."""
    while not hasattr(dataset, 'video_infos'):
        index %= len(dataset.dataset)
        dataset = dataset.dataset
    return dataset.video_infos[index]

