"""The last pipeline steps: the clip's final layout and the keys handed to the loader.

actionjax feeds uint8, channels-last arrays to the accelerator, so ``FormatShape``
keeps MMAction2's names but produces the layouts of DESIGN.md:

* ``'NCHW'``  -> ``imgs`` ``(V, H, W, C)``, ``V = crops x clips x segments``
  (MMAction2: ``(V, C, H, W)``);
* ``'NCTHW'`` -> ``imgs`` ``(V, T, H, W, C)``, ``V = crops x clips``
  (MMAction2: ``(V, C, T, H, W)``).

The torch-specific steps (``ToTensor``, ``ImageToTensor``, ``Collect``,
``PackActionInputs``) are accepted so 0.x and 1.x configs load unchanged; they
keep numpy arrays and only select keys. The loader batches ``imgs`` and ``label``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from actionjax.registry import PIPELINES

from .augmentations import as_clip


@PIPELINES.register_module()
class FormatShape:
    """Group the ``M`` frames of ``imgs`` into views, channels last, contiguous.

    Args:
        input_format: 'NCHW' (2D recognizers: ``(V, H, W, C)``; for 'Flow' the
            ``clip_len`` frames of a view are stacked on channels,
            ``(V, H, W, clip_len * C)``), 'NCHW_Flow' (MMAction2 0.x's name for
            that), 'NCTHW' (3D recognizers: ``(V, T, H, W, C)``) or 'NPTCHW' (SSN:
            ``(num_proposals, num_clips * clip_len, H, W, C)``).
        collapse: drop the leading ``V`` axis when there is one view (MMAction2
            uses it for detectors).

    Added key: ``input_shape``.
    """

    _formats = ('NCHW', 'NCTHW', 'NCHW_Flow', 'NPTCHW')

    def __init__(self, input_format: str, collapse: bool = False) -> None:
        if input_format not in self._formats:
            raise ValueError(f'FormatShape input_format must be one of {self._formats}, got {input_format!r}')
        self.input_format = input_format
        self.collapse = collapse

    def __call__(self, results: dict) -> dict:
        imgs = as_clip(results['imgs'])
        if imgs.ndim == 3:  # single-channel frames
            imgs = imgs[..., None]
        if self.collapse and results['num_clips'] != 1:
            raise ValueError(f"FormatShape(collapse=True) needs num_clips == 1, got {results['num_clips']}")
        _, height, width, channels = imgs.shape
        clip_len = results.get('clip_len', 1)
        if self.input_format == 'NCTHW':
            imgs = imgs.reshape(-1, clip_len, height, width, channels)
        elif self.input_format == 'NPTCHW':
            imgs = imgs.reshape(results['num_proposals'], -1, height, width, channels)
        elif self.input_format == 'NCHW_Flow' or results.get('modality') == 'Flow':
            # MMAction2 flattens (clip_len, C) into the channel axis, clip_len-major
            imgs = imgs.reshape(-1, clip_len, height, width, channels).transpose(0, 2, 3, 1, 4)
            imgs = imgs.reshape(-1, height, width, clip_len * channels)
        if self.collapse:
            if imgs.shape[0] != 1:
                raise ValueError(f'FormatShape(collapse=True) needs one view, got {imgs.shape[0]}')
            imgs = imgs[0]
        results['imgs'] = np.ascontiguousarray(imgs)
        results['input_shape'] = results['imgs'].shape
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(input_format={self.input_format!r})'


def _require(results: dict, keys: Sequence[str], transform: str) -> None:
    missing = [k for k in keys if k not in results]
    if missing:
        raise KeyError(f'{transform}: results have no {missing}; available: {sorted(results)}')


@PIPELINES.register_module()
class ToTensor:
    """0.x ``ToTensor``: a no-op that checks ``keys`` exist (arrays stay numpy for JAX)."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = list(keys)

    def __call__(self, results: dict) -> dict:
        _require(results, self.keys, 'ToTensor')
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(keys={self.keys})'


@PIPELINES.register_module()
class ImageToTensor(ToTensor):
    """0.x ``ImageToTensor``: a no-op; images stay channels-last (HWC) numpy arrays."""


@PIPELINES.register_module()
class Rename:
    """Rename result keys: ``mapping = {old: new}``; absent keys are skipped."""

    def __init__(self, mapping: Mapping[str, str]) -> None:
        self.mapping = dict(mapping)

    def __call__(self, results: dict) -> dict:
        for old, new in self.mapping.items():
            if old in results:
                if new in results:
                    raise KeyError(f'Rename: {new!r} already exists in the results')
                results[new] = results.pop(old)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(mapping={self.mapping})'


@PIPELINES.register_module()
class Collect:
    """0.x ``Collect``: keep only ``keys``, plus ``meta_keys`` gathered under ``meta_name``.

    Without meta keys (``meta_keys=[]``, as the recipes set) no ``meta_name``
    entry is added; meta keys the results lack are skipped. ``nested=True`` wraps
    every value in a list, as in MMAction2.
    """

    def __init__(self, keys: Sequence[str],
                 meta_keys: Sequence[str] = ('filename', 'label', 'original_shape', 'img_shape', 'pad_shape',
                                             'flip_direction', 'img_norm_cfg'),
                 meta_name: str = 'img_metas', nested: bool = False) -> None:
        self.keys = list(keys)
        self.meta_keys = list(meta_keys)
        self.meta_name = meta_name
        self.nested = nested

    def __call__(self, results: dict) -> dict:
        _require(results, self.keys, 'Collect')
        data: dict[str, Any] = {key: results[key] for key in self.keys}
        if self.meta_keys:  # MMAction2 fails on absent meta keys (e.g. 'pad_shape'); they are skipped here
            data[self.meta_name] = {key: results[key] for key in self.meta_keys if key in results}
        if self.nested:
            data = {key: [value] for key, value in data.items()}
        return data

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(keys={self.keys}, meta_keys={self.meta_keys}, '
                f'nested={self.nested})')


@PIPELINES.register_module()
class PackActionInputs:
    """1.x ``PackActionInputs``: keep ``imgs`` and ``label`` (what the loader batches).

    ``collect_keys`` are kept as well (MMAction2 packs them into ``inputs``), and
    so are ``algorithm_keys``; the ``meta_keys`` that exist are gathered under
    ``img_metas`` (MMAction2 puts them in the data sample's metainfo).
    """

    def __init__(self, collect_keys: Sequence[str] | None = None,
                 meta_keys: Sequence[str] = ('img_shape', 'img_key', 'video_id', 'timestamp'),
                 algorithm_keys: Sequence[str] = ()) -> None:
        self.collect_keys = None if collect_keys is None else list(collect_keys)
        self.meta_keys = list(meta_keys)
        self.algorithm_keys = list(algorithm_keys)

    def __call__(self, results: dict) -> dict:
        if self.collect_keys is not None:
            _require(results, self.collect_keys, 'PackActionInputs')
            packed = {key: results[key] for key in self.collect_keys}
        elif 'imgs' in results:
            packed = {'imgs': results['imgs']}
        else:
            raise KeyError(f'PackActionInputs: results have no imgs; available: {sorted(results)}')
        for key in ['label', *self.algorithm_keys]:
            if key in results:
                packed[key] = results[key]
        meta = {key: results[key] for key in self.meta_keys if key in results}
        if meta:
            packed['img_metas'] = meta
        return packed

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(collect_keys={self.collect_keys}, meta_keys={self.meta_keys}, '
                f'algorithm_keys={self.algorithm_keys})')
