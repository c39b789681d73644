"""Datasets: an MMAction2 annotation file becomes a list of samples; ``dataset[i]`` runs the pipeline.

``VideoDataset`` reads ``path label`` lines (``path l1 l2 ...`` when ``multi_class``),
``RawframeDataset`` reads ``frame_dir total_frames label`` lines (``frame_dir offset
total_frames label`` with ``with_offset``). Both take MMAction2 0.x arguments and the
1.x spellings (``data_prefix=dict(video=...)`` / ``dict(img=...)``, ``data_root``), so
configs written for either version build unchanged.

A dataset holds no open files: ``dataset.prepare(i, rng)`` starts from a fresh copy of
the sample's annotation and the pipeline opens the video itself. That is what lets the
loader pickle a dataset into worker processes, where each worker opens its own decoders.
"""

from __future__ import annotations

import copy
import json
import os
import os.path as osp
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from actionjax.registry import DATASETS


def _compose(pipeline: Sequence[Any], key_path: str) -> Callable[[dict], dict | None]:
    # Imported here: the pipelines package registers transforms on import and may
    # import heavier things (decord, cv2) than annotation parsing needs.
    from actionjax.data.pipelines import Compose

    return Compose(pipeline, key_path=key_path)


class BaseDataset:
    """Shared logic of annotation-list datasets (MMAction2's ``BaseDataset``).

    Args:
        ann_file: annotation list (``.txt``) or MMAction2 json list of dicts.
        pipeline: transform configs (or callables) applied by ``prepare``.
        data_prefix: folder the paths in ``ann_file`` are relative to. MMAction2 1.x's
            ``dict(video=...)`` / ``dict(img=...)`` is accepted too.
        test_mode: evaluation split (the loader then masks, rather than replaces,
            samples that fail to load; see ``actionjax/data/loader.py``).
        multi_class: several labels per line; ``label`` becomes a float32 one-hot
            vector of ``num_classes``.
        num_classes: number of classes; required with ``multi_class``.
        start_index: index of the first frame (0 for videos, 1 for ``img_00001.jpg``).
        modality: 'RGB' or 'Flow', passed to the pipeline.
        data_root: MMAction2 1.x: a relative ``ann_file`` and ``data_prefix`` are
            joined to it.
        cfg_key: where this dataset sits in the config (``'data.train'``); error
            messages name ``'data.train.ann_file'`` and the like. ``build_dataset``
            sets it.
    """

    prefix_key = 'video'  # the key of MMAction2 1.x's data_prefix dict for this dataset

    def __init__(self,
                 ann_file: str,
                 pipeline: Sequence[Any],
                 data_prefix: str | Mapping[str, str] | None = None,
                 test_mode: bool = False,
                 multi_class: bool = False,
                 num_classes: int | None = None,
                 start_index: int = 1,
                 modality: str = 'RGB',
                 data_root: str | None = None,
                 cfg_key: str = 'dataset') -> None:
        self.cfg_key = cfg_key
        prefix_cfg_key = f'{cfg_key}.data_prefix'
        if isinstance(data_prefix, Mapping):  # MMAction2 1.x: data_prefix=dict(video='...')
            prefix_cfg_key = f'{prefix_cfg_key}.{self.prefix_key}'
            data_prefix = data_prefix.get(self.prefix_key) or None
        if data_root:
            ann_file = osp.join(data_root, ann_file)
            data_prefix = osp.join(data_root, data_prefix) if data_prefix else data_root
        self.ann_file = os.fspath(ann_file)
        self.data_prefix = os.fspath(data_prefix) if data_prefix else None
        self.test_mode = test_mode
        self.multi_class = multi_class
        self.num_classes = num_classes
        self.start_index = start_index
        self.modality = modality

        if multi_class and not num_classes:
            raise ValueError(f'config key {cfg_key!r}: multi_class=True needs num_classes '
                             '(the length of the one-hot label vector)')
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'annotation file {self.ann_file!r} does not exist (config key {cfg_key + ".ann_file"!r}); '
                'fix the path, or create the list (one "path label" line per video)')
        if self.data_prefix is not None and not osp.isdir(self.data_prefix):
            raise FileNotFoundError(
                f'video root {self.data_prefix!r} is not a directory (config key {prefix_cfg_key!r}); '
                'fix the path, or set it to None when the annotation file holds full paths')
        self.pipeline = _compose(pipeline, key_path=f'{cfg_key}.pipeline')
        self.video_infos: list[dict[str, Any]] = self.load_annotations()
        if not self.video_infos:
            raise ValueError(f'annotation file {self.ann_file!r} (config key {cfg_key + ".ann_file"!r}) '
                             'lists no samples')

    # -- annotation parsing ----------------------------------------------------------------------

    def load_annotations(self) -> list[dict[str, Any]]:
        """The list of sample dicts (``filename``/``frame_dir``, ``label``, ...)."""
        if self.ann_file.endswith('.json'):
            return self._load_json()
        infos = []
        with open(self.ann_file) as f:
            for line_no, line in enumerate(f, 1):
                fields = line.split()
                if not fields:
                    continue
                try:
                    infos.append(self.parse_line(fields))
                except (ValueError, IndexError) as err:
                    raise ValueError(f'{self.ann_file}:{line_no}: cannot parse {line.strip()!r} '
                                     f'(config key {self.cfg_key + ".ann_file"!r}): {err}') from None
        return infos

    def parse_line(self, fields: list[str]) -> dict[str, Any]:
        raise NotImplementedError

    def _labels(self, fields: Sequence[str]) -> int | list[int]:
        """Label fields -> ``int`` (single label, -1 if absent) or ``list[int]`` (multi_class)."""
        labels = [int(x) for x in fields]
        if self.multi_class:
            if not labels:
                raise ValueError('no label')
            return labels
        if len(labels) > 1:
            raise ValueError(f'{len(labels)} labels on one line; set multi_class=True and num_classes')
        return labels[0] if labels else -1  # MMAction2 1.x: an unlabelled list is for inference

    def _join(self, path: str) -> str:
        return osp.join(self.data_prefix, path) if self.data_prefix is not None else path

    def _load_json(self) -> list[dict[str, Any]]:
        with open(self.ann_file) as f:
            infos = json.load(f)
        for info in infos:
            key = 'frame_dir' if 'frame_dir' in info else 'filename'
            info[key] = self._join(info[key])
            label = info.get('label', -1)
            if not self.multi_class and isinstance(label, list):
                info['label'] = self._labels([str(x) for x in label])
        return infos

    # -- samples -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.video_infos)

    def sample_path(self, index: int) -> str:
        """The file (or frame folder) sample ``index`` reads; used in error reports."""
        info = self.video_infos[index]
        return info.get('filename', info.get('frame_dir', '?'))

    def get_info(self, index: int) -> dict[str, Any]:
        """A fresh results dict for sample ``index``, before the pipeline."""
        results = copy.deepcopy(self.video_infos[index])
        results['modality'] = self.modality
        results['start_index'] = self.start_index
        if self.multi_class:
            onehot = np.zeros(self.num_classes, np.float32)
            onehot[results['label']] = 1.0
            results['label'] = onehot
        return results

    def prepare(self, index: int, rng: np.random.Generator | None = None) -> dict[str, Any] | None:
        """Run the pipeline on sample ``index``; random transforms draw from ``rng``.

        Returns the pipeline's results dict, or ``None`` when a transform drops the
        sample (MMAction2's convention; the loader then takes another sample).
        """
        results = self.get_info(index)
        if rng is not None:
            results['rng'] = rng
        return self.pipeline(results)

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        return self.prepare(index)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(ann_file={self.ann_file!r}, data_prefix={self.data_prefix!r}, '
                f'{len(self)} samples, test_mode={self.test_mode})')


@DATASETS.register_module()
class VideoDataset(BaseDataset):
    """Videos listed as ``path label`` lines (``path l1 l2 ...`` with ``multi_class``).

    Example annotation file::

        some/path/000.mp4 1
        some/path/001.mp4 3

    ``start_index`` defaults to 0: decoded video frames count from 0. See
    ``BaseDataset`` for the other arguments.
    """

    def __init__(self, ann_file: str, pipeline: Sequence[Any], start_index: int = 0,
                 delimiter: str | None = None, **kwargs: Any) -> None:
        self.delimiter = delimiter  # MMAction2 1.x: split lines on this instead of whitespace
        super().__init__(ann_file, pipeline, start_index=start_index, **kwargs)

    def load_annotations(self) -> list[dict[str, Any]]:
        if self.delimiter is None or self.ann_file.endswith('.json'):
            return super().load_annotations()
        infos = []
        with open(self.ann_file) as f:
            for line in f:
                if line.strip():
                    infos.append(self.parse_line(line.strip().split(self.delimiter)))
        return infos

    def parse_line(self, fields: list[str]) -> dict[str, Any]:
        return dict(filename=self._join(fields[0]), label=self._labels(fields[1:]))


@DATASETS.register_module()
class RawframeDataset(BaseDataset):
    """Folders of extracted frames listed as ``frame_dir total_frames label`` lines.

    With ``with_offset`` a line is ``frame_dir offset total_frames label`` (clips of
    long videos). Frames are read as ``frame_dir/filename_tmpl.format(i)``;
    ``start_index`` defaults to 1 (``img_00001.jpg`` is the first frame).
    """

    prefix_key = 'img'

    def __init__(self, ann_file: str, pipeline: Sequence[Any], filename_tmpl: str = 'img_{:05}.jpg',
                 with_offset: bool = False, start_index: int = 1, **kwargs: Any) -> None:
        self.filename_tmpl = filename_tmpl
        self.with_offset = with_offset
        super().__init__(ann_file, pipeline, start_index=start_index, **kwargs)

    def parse_line(self, fields: list[str]) -> dict[str, Any]:
        info: dict[str, Any] = dict(frame_dir=self._join(fields[0]))
        if self.with_offset:
            info['offset'] = int(fields[1])
            info['total_frames'] = int(fields[2])
            label_fields = fields[3:]
        else:
            info['total_frames'] = int(fields[1])
            label_fields = fields[2:]
        info['label'] = self._labels(label_fields)
        return info

    def get_info(self, index: int) -> dict[str, Any]:
        results = super().get_info(index)
        results['filename_tmpl'] = self.filename_tmpl
        return results


@DATASETS.register_module()
class SyntheticVideoDataset(VideoDataset):
    """A ``VideoDataset`` over the synthetic demo videos, generated on first use.

    The demo configs use it so that ``python -m actionjax.train --config
    configs/<demo>.py`` works on a fresh checkout with no download: if ``synthetic_root``
    is not complete yet, ``actionjax.data.synthetic.ensure_synthetic`` writes it
    (a few seconds), then this is a plain ``VideoDataset``.

    Args:
        synthetic_root: the folder ``ensure_synthetic`` fills (``data/synthetic``).
        **kwargs: ``VideoDataset`` arguments (``ann_file``, ``data_prefix``, ...).
    """

    def __init__(self, ann_file: str, pipeline: Sequence[Any], synthetic_root: str = 'data/synthetic',
                 **kwargs: Any) -> None:
        from actionjax.data.synthetic import ensure_synthetic

        ensure_synthetic(synthetic_root)
        super().__init__(ann_file, pipeline, **kwargs)


@DATASETS.register_module()
class RepeatDataset:
    """``dataset`` repeated ``times`` times in one epoch (MMAction2's wrapper).

    Fewer, longer epochs for small datasets: less per-epoch overhead (evaluation,
    checkpoints). Index ``i`` is sample ``i % len(dataset)``; the loader still gives
    every index its own random augmentation.
    """

    def __init__(self, dataset: Mapping[str, Any], times: int, test_mode: bool = False,
                 cfg_key: str = 'dataset') -> None:
        self.dataset = _build(dict(dataset, test_mode=test_mode), f'{cfg_key}.dataset')
        self.times = int(times)
        self.test_mode = test_mode

    def __len__(self) -> int:
        return self.times * len(self.dataset)

    def sample_path(self, index: int) -> str:
        return self.dataset.sample_path(index % len(self.dataset))

    def prepare(self, index: int, rng: np.random.Generator | None = None) -> dict[str, Any] | None:
        return self.dataset.prepare(index % len(self.dataset), rng)

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        return self.prepare(index)

    def __repr__(self) -> str:
        return f'RepeatDataset({self.dataset!r}, times={self.times})'


def build_dataset(cfg: Mapping[str, Any], key_path: str = 'data.train', **default_args: Any) -> BaseDataset:
    """Build a dataset (``DATASETS.build``).

    ``cfg`` is a dataset config (it has a ``type``; ``key_path`` then only names it in
    error messages) or a whole config, whose split ``key_path`` names (``'data.train'``,
    ``'data.val'``, ``'data.test'``) is read from its runtime form, wherever the file
    keeps it (0.x ``data.train``, 1.x ``train_dataloader.dataset``). ``default_args``
    fill in arguments the config leaves out (e.g. ``test_mode=True``).
    """
    if 'type' in cfg:
        return _build(cfg, key_path, **default_args)
    from actionjax.runtime_config import data_config

    split = key_path.split('.')[-1]
    entry = data_config(cfg).get(split)
    if entry is None:
        raise KeyError(f'the config has no {split} dataset ({key_path!r}, or {split}_dataloader.dataset in '
                       'MMAction2 1.x); a dataset config looks like '
                       "data=dict(train=dict(type='VideoDataset', ann_file=..., pipeline=[...]))")
    return _build(entry['dataset'], entry['cfg_key'], **default_args)


def _build(ds_cfg: Mapping[str, Any], key_path: str, **default_args: Any) -> Any:
    ds_type = ds_cfg.get('type') if isinstance(ds_cfg, Mapping) else None
    if isinstance(ds_type, str):
        ds_type = DATASETS.get(ds_type, f'{key_path}.type')
    if isinstance(ds_type, type) and issubclass(ds_type, (BaseDataset, RepeatDataset)):
        default_args.setdefault('cfg_key', key_path)  # our datasets name config keys in errors
    return DATASETS.build(ds_cfg, key_path=key_path, **default_args)
