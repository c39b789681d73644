"""Spatial and colour augmentations with MMAction2's names, arguments and result keys.

Every transform works on a whole clip: ``imgs`` is a uint8 array ``(M, H, W, C)``
(a list of ``(H, W, C)`` frames is stacked first). Crops return views, so a crop
costs nothing until the next resize (or ``FormatShape``) reads it; flips copy with
``cv2.flip``, which is far faster than copying a reversed numpy view. Resizing
calls ``cv2.resize`` per frame into one preallocated array, which is exactly what
``mmcv.imresize`` computes, and a resize to the size a clip already has is skipped
(OpenCV would only copy it).

Random choices come from ``results['rng']`` (see ``rng.py``), never from the global
``random``/``np.random`` state MMAction2 uses; the distributions are MMAction2's.

``lazy=True`` is supported as in MMAction2: crops, resizes and flips only record
what to do in ``results['lazy']`` and ``Fuse`` applies them as one crop, one resize
and one flip.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from actionjax.registry import PIPELINES

from .rng import get_rng

_INTERPOLATIONS = {
    'nearest': cv2.INTER_NEAREST,
    'bilinear': cv2.INTER_LINEAR,
    'bicubic': cv2.INTER_CUBIC,
    'area': cv2.INTER_AREA,
    'lanczos': cv2.INTER_LANCZOS4,
}


# -- helpers shared by the transforms --------------------------------------------------


def as_clip(imgs: Any) -> np.ndarray:
    """``imgs`` as one ``(M, H, W, C)`` array (MMAction2-style frame lists are stacked)."""
    return imgs if isinstance(imgs, np.ndarray) else np.stack(imgs)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    """``value`` as ``(w, h)`` ints: an int for both sides, or a pair (a tuple or list).

    As MMAction2 (``_pair`` then ``is_tuple_of(int)``), anything else is a TypeError:
    a float (``0.5``), a string (``'224'``), a pair holding a float.
    """
    if _is_int(value):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_int(v) for v in value):
        return int(value[0]), int(value[1])
    raise TypeError(f'{name} must be an int or a pair of ints (w, h), e.g. 224 or (224, 160); '
                    f'got {value!r}')


def _float_range(value: Any, name: str) -> tuple[float, float]:
    """A ``(low, high)`` tuple of floats, as MMAction2 requires (``is_tuple_of(float)``)."""
    if not (isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, float) for v in value)):
        raise TypeError(f'{name} must be a tuple of two floats, e.g. (0.08, 1.0); got {value!r}')
    return value


def _interpolation_code(interpolation: str) -> int:
    try:
        return _INTERPOLATIONS[interpolation]
    except KeyError:
        raise ValueError(f'interpolation must be one of {sorted(_INTERPOLATIONS)}, '
                         f'got {interpolation!r}') from None


def resize_clip(imgs: np.ndarray, size: tuple[int, int], interpolation: str = 'bilinear') -> np.ndarray:
    """Resize every frame of ``imgs`` to ``size = (w, h)`` with ``cv2.resize`` (as ``mmcv.imresize``)."""
    new_w, new_h = size
    if imgs.shape[1:3] == (new_h, new_w):
        return imgs  # OpenCV copies the input unchanged when the size does not change
    code = _interpolation_code(interpolation)
    out = np.empty((imgs.shape[0], new_h, new_w) + imgs.shape[3:], dtype=imgs.dtype)
    for src, dst in zip(imgs, out, strict=True):
        res = cv2.resize(src, (new_w, new_h), dst=dst, interpolation=code)
        if not np.shares_memory(res, dst):  # OpenCV drops a trailing channel axis of size 1
            dst[...] = res.reshape(dst.shape)
    return out


def rescale_size(old_size: tuple[int, int], scale: float | tuple[float, float]) -> tuple[int, int]:
    """``mmcv.rescale_size``: the ``(w, h)`` after scaling by a factor or fitting in ``scale``."""
    w, h = old_size
    if isinstance(scale, tuple):
        factor = min(max(scale) / max(h, w), min(scale) / min(h, w))
    else:
        factor = scale
    return int(w * float(factor) + 0.5), int(h * float(factor) + 0.5)


def _img_shape(results: dict) -> tuple[int, int]:
    if 'img_shape' not in results:
        results['img_shape'] = tuple(as_clip(results['imgs']).shape[1:3])
    return results['img_shape']


def _init_lazy(results: dict, lazy: bool) -> None:
    """Start recording lazy operations, or check no lazy ones are pending."""
    img_h, img_w = _img_shape(results)
    if lazy:
        results.setdefault('lazy', dict(
            original_shape=(img_h, img_w),
            crop_bbox=np.array([0, 0, img_w, img_h], dtype=np.float32),
            flip=False, flip_direction=None, interpolation=None))
    elif 'lazy' in results:
        raise ValueError('a non-lazy transform follows lazy ones; add dict(type="Fuse") before it')


def _crop(results: dict, left: int, top: int, right: int, bottom: int, lazy: bool) -> None:
    """Crop ``imgs`` to ``[left, right) x [top, bottom)`` and update MMAction2's crop keys."""
    img_h, img_w = results['img_shape']
    new_w, new_h = right - left, bottom - top
    old = results.get('crop_quadruple', np.array([0, 0, 1, 1], dtype=np.float32))
    results['crop_quadruple'] = np.array(
        [old[0] + left / img_w * old[2], old[1] + top / img_h * old[3],
         new_w / img_w * old[2], new_h / img_h * old[3]], dtype=np.float32)
    results['crop_bbox'] = np.array([left, top, right, bottom])
    results['img_shape'] = (new_h, new_w)
    if not lazy:
        if 'imgs' in results:
            results['imgs'] = as_clip(results['imgs'])[:, top:bottom, left:right]
        return
    lazyop = results['lazy']
    if lazyop['flip']:
        raise NotImplementedError('lazy crops must come before Flip; put Flip last')
    l_left, l_top, l_right, l_bottom = lazyop['crop_bbox']
    sx, sy = (l_right - l_left) / img_w, (l_bottom - l_top) / img_h
    lazyop['crop_bbox'] = np.array([l_left + left * sx, l_top + top * sy,
                                    l_left + right * sx, l_top + bottom * sy], dtype=np.float32)


def _check_fits(name: str, crop_w: int, crop_h: int, img_w: int, img_h: int) -> None:
    if crop_w > img_w or crop_h > img_h:
        raise ValueError(f'{name}: crop {crop_w}x{crop_h} (w x h) is larger than the {img_w}x{img_h} '
                         'image; resize first or choose a smaller crop')


# -- resizing --------------------------------------------------------------------------


@PIPELINES.register_module()
class Resize:
    """Resize to a fixed size, or keep the aspect ratio.

    Args:
        scale: with ``keep_ratio`` a float factor or ``(long, short)`` edge limits,
            where -1 leaves an edge free: ``(-1, 256)`` makes the short side 256.
            Without ``keep_ratio`` the output ``(w, h)``.
        keep_ratio: keep the aspect ratio.
        interpolation: 'nearest', 'bilinear', 'bicubic', 'area' or 'lanczos'
            (OpenCV's, as mmcv).
        lazy: only record the resize (see ``Fuse``).

    Modified keys: ``imgs``, ``img_shape``; added ``keep_ratio``, ``scale_factor``.
    """

    def __init__(self, scale: float | Sequence[int], keep_ratio: bool = True,
                 interpolation: str = 'bilinear', lazy: bool = False) -> None:
        if isinstance(scale, float):
            if scale <= 0:
                raise ValueError(f'Resize scale must be positive, got {scale}')
        elif isinstance(scale, tuple) and len(scale) == 2 and all(map(_is_number, scale)):
            if min(scale) == -1:
                if not keep_ratio:
                    raise ValueError(f'Resize(scale={scale}) with -1 needs keep_ratio=True')
                scale = (np.inf, max(scale))  # an unbounded long edge: the short edge decides
        else:
            raise TypeError(f'Resize scale must be a float factor or a tuple of two ints, e.g. (-1, 256) or '
                            f'(340, 256); got {scale!r}')
        _interpolation_code(interpolation)
        self.scale = scale
        self.keep_ratio = keep_ratio
        self.interpolation = interpolation
        self.lazy = lazy

    def __call__(self, results: dict) -> dict:
        _init_lazy(results, self.lazy)
        img_h, img_w = results['img_shape']
        if self.keep_ratio:
            new_w, new_h = rescale_size((img_w, img_h), self.scale)
        else:
            new_w, new_h = self.scale
        step_factor = np.array([new_w / img_w, new_h / img_h], dtype=np.float32)
        results['img_shape'] = (new_h, new_w)
        results['keep_ratio'] = self.keep_ratio
        results['scale_factor'] = results.get('scale_factor', np.ones(2, dtype=np.float32)) * step_factor
        if self.lazy:
            if results['lazy']['flip']:
                raise NotImplementedError('a lazy Resize must come before Flip; put Flip last')
            results['lazy']['interpolation'] = self.interpolation
        elif 'imgs' in results:
            results['imgs'] = resize_clip(as_clip(results['imgs']), (new_w, new_h), self.interpolation)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(scale={self.scale}, keep_ratio={self.keep_ratio}, '
                f'interpolation={self.interpolation!r}, lazy={self.lazy})')


@PIPELINES.register_module()
class RandomRescale:
    """Resize so the short edge is a random length in ``scale_range`` (inclusive)."""

    def __init__(self, scale_range: tuple[int, int], interpolation: str = 'bilinear') -> None:
        if not (isinstance(scale_range, tuple) and len(scale_range) == 2 and all(map(_is_int, scale_range))):
            raise TypeError(f'RandomRescale scale_range must be a tuple of two ints (low, high), e.g. '
                            f'(256, 320); got {scale_range!r}')
        lo, hi = scale_range
        if not (0 < lo < hi):
            raise ValueError(f'RandomRescale scale_range must be (low, high) with 0 < low < high, '
                             f'got {scale_range!r}')
        self.scale_range = (int(lo), int(hi))
        self.interpolation = interpolation
        self.keep_ratio = True

    def __call__(self, results: dict) -> dict:
        short_edge = int(get_rng(results).integers(self.scale_range[0], self.scale_range[1] + 1))
        results = Resize((-1, short_edge), interpolation=self.interpolation)(results)
        results['short_edge'] = short_edge
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(scale_range={self.scale_range}, interpolation={self.interpolation!r})'


# -- cropping --------------------------------------------------------------------------


@PIPELINES.register_module()
class RandomCrop:
    """A random ``size x size`` crop.

    As in MMAction2 the offset is drawn from ``[0, img - size)``, so the crop never
    touches the last row/column unless it spans the whole side.
    """

    def __init__(self, size: int, lazy: bool = False) -> None:
        if not _is_int(size):
            raise TypeError(f'RandomCrop size must be an int (a square crop), got {size!r}')
        self.size = size
        self.lazy = lazy

    def __call__(self, results: dict) -> dict:
        _init_lazy(results, self.lazy)
        img_h, img_w = results['img_shape']
        _check_fits('RandomCrop', self.size, self.size, img_w, img_h)
        rng = get_rng(results)
        y_offset = int(rng.integers(0, img_h - self.size)) if img_h > self.size else 0
        x_offset = int(rng.integers(0, img_w - self.size)) if img_w > self.size else 0
        _crop(results, x_offset, y_offset, x_offset + self.size, y_offset + self.size, self.lazy)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(size={self.size}, lazy={self.lazy})'


@PIPELINES.register_module()
class RandomResizedCrop:
    """A crop of random area and aspect ratio (Inception-style), resized by a later ``Resize``.

    Ten candidates are drawn (log-uniform aspect ratio, uniform area); the first that
    fits is placed uniformly at random, else the centre square is used.
    """

    def __init__(self, area_range: tuple[float, float] = (0.08, 1.0),
                 aspect_ratio_range: tuple[float, float] = (3 / 4, 4 / 3), lazy: bool = False) -> None:
        _float_range(area_range, 'RandomResizedCrop area_range')
        _float_range(aspect_ratio_range, 'RandomResizedCrop aspect_ratio_range')
        if not 0 < area_range[0] <= area_range[1] <= 1:
            raise ValueError(f'RandomResizedCrop area_range must satisfy 0 < low <= high <= 1, '
                             f'got {area_range}')
        if not 0 < aspect_ratio_range[0] <= aspect_ratio_range[1]:
            raise ValueError(f'RandomResizedCrop aspect_ratio_range must satisfy 0 < low <= high, '
                             f'got {aspect_ratio_range}')
        self.area_range = tuple(area_range)
        self.aspect_ratio_range = tuple(aspect_ratio_range)
        self.lazy = lazy

    @staticmethod
    def get_crop_bbox(img_shape: tuple[int, int], area_range: tuple[float, float],
                      aspect_ratio_range: tuple[float, float], rng: np.random.Generator,
                      max_attempts: int = 10) -> tuple[int, int, int, int]:
        """``(left, top, right, bottom)`` of a random crop, as MMAction2 chooses it."""
        img_h, img_w = img_shape
        area = img_h * img_w
        min_ar, max_ar = aspect_ratio_range
        aspect_ratios = np.exp(rng.uniform(np.log(min_ar), np.log(max_ar), size=max_attempts))
        target_areas = rng.uniform(*area_range, size=max_attempts) * area
        crop_ws = np.round(np.sqrt(target_areas * aspect_ratios)).astype(np.int32)
        crop_hs = np.round(np.sqrt(target_areas / aspect_ratios)).astype(np.int32)
        for crop_w, crop_h in zip(crop_ws.tolist(), crop_hs.tolist(), strict=True):
            if crop_h <= img_h and crop_w <= img_w:
                x_offset = int(rng.integers(0, img_w - crop_w + 1))
                y_offset = int(rng.integers(0, img_h - crop_h + 1))
                return x_offset, y_offset, x_offset + crop_w, y_offset + crop_h
        size = min(img_h, img_w)
        x_offset, y_offset = (img_w - size) // 2, (img_h - size) // 2
        return x_offset, y_offset, x_offset + size, y_offset + size

    def __call__(self, results: dict) -> dict:
        _init_lazy(results, self.lazy)
        bbox = self.get_crop_bbox(results['img_shape'], self.area_range, self.aspect_ratio_range,
                                  get_rng(results))
        _crop(results, *bbox, self.lazy)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(area_range={self.area_range}, '
                f'aspect_ratio_range={self.aspect_ratio_range}, lazy={self.lazy})')


@PIPELINES.register_module()
class MultiScaleCrop:
    """A crop whose sides are random fractions (``scales``) of the short side (TSN-style).

    Args:
        input_size: the network input ``(w, h)``; crop sides within 2 pixels of it
            snap to it.
        scales: fractions of the short side; width and height are chosen
            independently, at most ``max_wh_scale_gap`` scale levels apart.
        random_crop: place the crop uniformly at random; otherwise at one of
            ``num_fixed_crops`` (5 or 13) fixed positions.
        lazy: only record the crop (see ``Fuse``).

    Added keys: ``crop_bbox``, ``crop_quadruple``, ``scales``.
    """

    def __init__(self, input_size: int | Sequence[int], scales: Sequence[float] = (1,),
                 max_wh_scale_gap: int = 1, random_crop: bool = False, num_fixed_crops: int = 5,
                 lazy: bool = False) -> None:
        self.input_size = _pair(input_size, 'MultiScaleCrop input_size')
        if not isinstance(scales, tuple):
            raise TypeError(f'MultiScaleCrop scales must be a tuple, e.g. (1, 0.875, 0.75, 0.66); '
                            f'got {scales!r}')
        if num_fixed_crops not in (5, 13):
            raise ValueError(f'MultiScaleCrop num_fixed_crops must be 5 or 13, got {num_fixed_crops}')
        self.scales = tuple(scales)
        self.max_wh_scale_gap = max_wh_scale_gap
        self.random_crop = random_crop
        self.num_fixed_crops = num_fixed_crops
        self.lazy = lazy

    def _fixed_offsets(self, w_step: int, h_step: int) -> list[tuple[int, int]]:
        # (x, y) in units of (w_step, h_step): the corners and centre, then 8 more
        grid = [(0, 0), (4, 0), (0, 4), (4, 4), (2, 2)]
        if self.num_fixed_crops == 13:
            grid += [(0, 2), (4, 2), (2, 4), (2, 0), (1, 1), (3, 1), (1, 3), (3, 3)]
        return [(i * w_step, j * h_step) for i, j in grid]

    def __call__(self, results: dict) -> dict:
        _init_lazy(results, self.lazy)
        img_h, img_w = results['img_shape']
        rng = get_rng(results)
        base_size = min(img_h, img_w)
        crop_sizes = [int(base_size * s) for s in self.scales]
        candidates = [(w, h) for i, h in enumerate(crop_sizes) for j, w in enumerate(crop_sizes)
                      if abs(i - j) <= self.max_wh_scale_gap]
        crop_w, crop_h = candidates[rng.integers(len(candidates))]
        if abs(crop_w - self.input_size[0]) < 3:
            crop_w = self.input_size[0]
        if abs(crop_h - self.input_size[1]) < 3:
            crop_h = self.input_size[1]
        _check_fits('MultiScaleCrop', crop_w, crop_h, img_w, img_h)
        if self.random_crop:
            x_offset = int(rng.integers(0, img_w - crop_w + 1))
            y_offset = int(rng.integers(0, img_h - crop_h + 1))
        else:
            offsets = self._fixed_offsets((img_w - crop_w) // 4, (img_h - crop_h) // 4)
            x_offset, y_offset = offsets[rng.integers(len(offsets))]
        _crop(results, x_offset, y_offset, x_offset + crop_w, y_offset + crop_h, self.lazy)
        results['scales'] = self.scales
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(input_size={self.input_size}, scales={self.scales}, '
                f'max_wh_scale_gap={self.max_wh_scale_gap}, random_crop={self.random_crop}, '
                f'num_fixed_crops={self.num_fixed_crops}, lazy={self.lazy})')


@PIPELINES.register_module()
class CenterCrop:
    """The centre ``crop_size`` (int or ``(w, h)``) of every frame."""

    def __init__(self, crop_size: int | Sequence[int], lazy: bool = False) -> None:
        self.crop_size = _pair(crop_size, 'CenterCrop crop_size')
        self.lazy = lazy

    def __call__(self, results: dict) -> dict:
        _init_lazy(results, self.lazy)
        img_h, img_w = results['img_shape']
        crop_w, crop_h = self.crop_size
        _check_fits('CenterCrop', crop_w, crop_h, img_w, img_h)
        left, top = (img_w - crop_w) // 2, (img_h - crop_h) // 2
        _crop(results, left, top, left + crop_w, top + crop_h, self.lazy)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(crop_size={self.crop_size}, lazy={self.lazy})'


def _multi_crop(results: dict, offsets: list[tuple[int, int]], crop_w: int, crop_h: int,
                with_flips: bool) -> dict:
    """Stack crops at ``offsets`` (each followed by its mirror image if ``with_flips``)."""
    imgs = as_clip(results['imgs'])
    num_frames = len(imgs)
    copies = 2 if with_flips else 1
    out = np.empty((len(offsets) * copies * num_frames, crop_h, crop_w) + imgs.shape[3:], dtype=imgs.dtype)
    bboxes = []
    for k, (x, y) in enumerate(offsets):
        crop = imgs[:, y:y + crop_h, x:x + crop_w]
        start = k * copies * num_frames
        out[start:start + num_frames] = crop
        if with_flips:
            out[start + num_frames:start + 2 * num_frames] = flip_clip(crop, 'horizontal')
        bboxes.extend([[x, y, x + crop_w, y + crop_h]] * (num_frames * copies))
    results['imgs'] = out
    results['crop_bbox'] = np.array(bboxes)
    results['img_shape'] = (crop_h, crop_w)
    return results


@PIPELINES.register_module()
class ThreeCrop:
    """Three crops along the long side (left/top, right/bottom, middle), stacked on ``M``.

    ``crop_size`` must equal the image's short side (e.g. ``Resize((-1, 256))`` then
    ``ThreeCrop(256)``).
    """

    def __init__(self, crop_size: int | Sequence[int]) -> None:
        self.crop_size = _pair(crop_size, 'ThreeCrop crop_size')

    def __call__(self, results: dict) -> dict:
        _init_lazy(results, False)
        img_h, img_w = as_clip(results['imgs']).shape[1:3]
        crop_w, crop_h = self.crop_size
        if crop_h == img_h:
            w_step = (img_w - crop_w) // 2
            offsets = [(0, 0), (2 * w_step, 0), (w_step, 0)]
        elif crop_w == img_w:
            h_step = (img_h - crop_h) // 2
            offsets = [(0, 0), (0, 2 * h_step), (0, h_step)]
        else:
            raise ValueError(f'ThreeCrop crop_size {self.crop_size} (w, h) must match the width or the '
                             f'height of the {img_w}x{img_h} image; resize the short side to it first')
        _check_fits('ThreeCrop', crop_w, crop_h, img_w, img_h)
        return _multi_crop(results, offsets, crop_w, crop_h, with_flips=False)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(crop_size={self.crop_size})'


@PIPELINES.register_module()
class TenCrop:
    """Four corner crops and the centre crop, each followed by its horizontal mirror."""

    def __init__(self, crop_size: int | Sequence[int]) -> None:
        self.crop_size = _pair(crop_size, 'TenCrop crop_size')

    def __call__(self, results: dict) -> dict:
        _init_lazy(results, False)
        img_h, img_w = as_clip(results['imgs']).shape[1:3]
        crop_w, crop_h = self.crop_size
        _check_fits('TenCrop', crop_w, crop_h, img_w, img_h)
        w_step, h_step = (img_w - crop_w) // 4, (img_h - crop_h) // 4
        offsets = [(0, 0), (4 * w_step, 0), (0, 4 * h_step), (4 * w_step, 4 * h_step),
                   (2 * w_step, 2 * h_step)]
        return _multi_crop(results, offsets, crop_w, crop_h, with_flips=True)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(crop_size={self.crop_size})'


# -- flipping --------------------------------------------------------------------------


@PIPELINES.register_module()
class Flip:
    """Flip the clip with probability ``flip_ratio``.

    Args:
        flip_ratio: probability of flipping.
        direction: 'horizontal' or 'vertical'.
        flip_label_map: ``{label: label_when_flipped}`` for classes whose meaning
            flips (e.g. "swiping left" <-> "swiping right"); single-label samples only.
        left_kp, right_kp: accepted for MMAction2 config compatibility (keypoints
            are not handled here).
        lazy: only record the flip (see ``Fuse``).

    Added keys: ``flip``, ``flip_direction``. A clip that owns its array (the
    output of a resize or decoder) is mirrored in place, as MMAction2 does with its
    frame lists; views (e.g. crops) are copied. For 'Flow' clips (channels x, y) a
    horizontal flip also negates the x flow (``255 - x``). MMAction2 1.x inverts
    every other whole frame instead, a leftover of 0.x's alternating x/y frames.
    """

    def __init__(self, flip_ratio: float = 0.5, direction: str = 'horizontal',
                 flip_label_map: dict[int, int] | None = None, left_kp: Any = None, right_kp: Any = None,
                 lazy: bool = False) -> None:
        if direction not in ('horizontal', 'vertical'):
            raise ValueError(f"Flip direction must be 'horizontal' or 'vertical', got {direction!r}")
        self.flip_ratio = flip_ratio
        self.direction = direction
        self.flip_label_map = flip_label_map
        self.left_kp = left_kp
        self.right_kp = right_kp
        self.lazy = lazy

    def __call__(self, results: dict) -> dict:
        _init_lazy(results, self.lazy)
        modality = results.get('modality', 'RGB')
        if modality == 'Flow' and self.direction != 'horizontal':
            raise ValueError("Flip of 'Flow' clips must be horizontal")
        flip = bool(get_rng(results).random() < self.flip_ratio)
        results['flip'] = flip
        results['flip_direction'] = self.direction
        label = results.get('label')
        if flip and self.flip_label_map is not None and isinstance(label, (int, np.integer)):
            results['label'] = self.flip_label_map.get(int(label), label)
        if self.lazy:
            if results['lazy']['flip']:
                raise NotImplementedError('only one lazy Flip is supported')
            results['lazy']['flip'] = flip
            results['lazy']['flip_direction'] = self.direction
        elif flip and 'imgs' in results:
            # mirror in place when the clip owns its buffer (as MMAction2 always does): a fresh
            # multi-megabyte array costs more in page faults than the flip itself
            imgs = results['imgs']
            results['imgs'] = flip_clip(as_clip(imgs), self.direction, modality, inplace=_owned(imgs))
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(flip_ratio={self.flip_ratio}, direction={self.direction!r}, '
                f'flip_label_map={self.flip_label_map}, lazy={self.lazy})')


def flip_clip(imgs: np.ndarray, direction: str, modality: str = 'RGB', inplace: bool = False) -> np.ndarray:
    """A mirrored clip; for 'Flow' the x channel is negated as well.

    ``cv2.flip`` per frame, into a new array or, with ``inplace``, into ``imgs``
    itself. Copying a numpy ``[:, :, ::-1]`` view instead is ~100x slower.
    """
    out = imgs if inplace else np.empty(imgs.shape, dtype=imgs.dtype)
    code = 1 if direction == 'horizontal' else 0
    for src, dst in zip(imgs, out, strict=True):
        res = cv2.flip(src, code, dst=dst)
        if not np.shares_memory(res, dst):  # OpenCV drops a trailing channel axis of size 1
            dst[...] = res.reshape(dst.shape)
    if modality == 'Flow':
        out[..., 0] = 255 - out[..., 0]
    return out


def _owned(imgs: Any) -> bool:
    """Whether ``imgs`` is an array with its own writeable buffer (not a view of another clip)."""
    return isinstance(imgs, np.ndarray) and imgs.flags.owndata and imgs.flags.writeable


@PIPELINES.register_module()
class Fuse:
    """Apply the operations recorded by lazy transforms: one crop, one resize, one flip."""

    def __call__(self, results: dict) -> dict:
        if 'lazy' not in results:
            raise ValueError('Fuse found no lazy operations; set lazy=True on the transforms before it')
        lazyop = results.pop('lazy')
        left, top, right, bottom = lazyop['crop_bbox'].round().astype(int)
        imgs = as_clip(results['imgs'])[:, top:bottom, left:right]
        img_h, img_w = results['img_shape']
        imgs = resize_clip(imgs, (img_w, img_h), lazyop['interpolation'] or 'bilinear')
        if lazyop['flip']:
            imgs = flip_clip(imgs, lazyop['flip_direction'], results.get('modality', 'RGB'))
        results['imgs'] = imgs
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}()'


# -- colour ----------------------------------------------------------------------------


def _gray(imgs: np.ndarray) -> np.ndarray:
    return 0.2989 * imgs[..., 0] + 0.587 * imgs[..., 1] + 0.114 * imgs[..., 2]


def _blend(imgs: np.ndarray, factor: float, other: np.ndarray) -> np.ndarray:
    """``factor * imgs + (1 - factor) * other`` in float32, as MMAction2 computes it."""
    return np.float32(factor) * imgs + (np.float32(1 - factor) * other).astype(np.float32)


def color_jitter(imgs: np.ndarray, brightness: float, contrast: float, saturation: float, hue: float,
                 order: Sequence[int] = (0, 1, 2, 3)) -> np.ndarray:
    """MMAction2's ColorJitter with given factors, applied to a whole uint8 clip.

    ``order`` lists the adjustments (0 brightness, 1 contrast, 2 saturation, 3 hue)
    in the order they are applied. Contrast blends each frame with the mean of its
    own grey image.
    """
    out = imgs.astype(np.float32)
    for fn_id in order:
        if fn_id == 0 and brightness != 1:
            out *= np.float32(brightness)
        elif fn_id == 1 and contrast != 1:
            means = _gray(out).mean(axis=(1, 2), dtype=np.float64).astype(np.float32)
            out = _blend(out, contrast, means[:, None, None, None])
        elif fn_id == 2 and saturation != 1:
            out = _blend(out, saturation, _gray(out)[..., None])
        elif fn_id == 3 and hue != 0:
            u8 = np.clip(out, 0, 255).astype(np.uint8)
            flat = u8.reshape(-1, u8.shape[-2], 3)  # cvtColor is per pixel: one call for the clip
            hsv = cv2.cvtColor(flat, cv2.COLOR_RGB2HSV)
            hsv[..., 0] = (hsv[..., 0].astype(np.int16) + int(hue * 255)) % 180
            out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).reshape(u8.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


@PIPELINES.register_module()
class ColorJitter:
    """Random brightness, contrast, saturation and hue, one draw per clip.

    Each argument is a spread around the identity (``brightness=0.5`` draws a factor
    in ``[0.5, 1.5]``, ``hue=0.1`` a shift in ``[-0.1, 0.1]``) or an explicit
    ``(low, high)``. MMAction2 fixes one random order of the four adjustments when
    the transform is built (from the global ``np.random``, so it depends on the
    process); here the order is drawn per clip from ``results['rng']``, which makes
    it reproducible, as torchvision's ColorJitter does.
    """

    def __init__(self, brightness: float | tuple[float, float] = 0.5,
                 contrast: float | tuple[float, float] = 0.5,
                 saturation: float | tuple[float, float] = 0.5,
                 hue: float | tuple[float, float] = 0.1) -> None:
        self.brightness = self._range('brightness', brightness, 1, 1)
        self.contrast = self._range('contrast', contrast, 1, 1)
        self.saturation = self._range('saturation', saturation, 1, 1)
        self.hue = self._range('hue', hue, 0.5, 0)

    @staticmethod
    def _range(name: str, value: float | Sequence[float], max_spread: float,
               base: float) -> tuple[float, float]:
        if isinstance(value, tuple) and len(value) == 2:
            low, high = value
            if not base - max_spread <= low <= high <= base + max_spread:
                raise ValueError(f'ColorJitter {name}={value!r} must lie in '
                                 f'[{base - max_spread}, {base + max_spread}]')
            return float(low), float(high)
        if not _is_number(value):
            raise TypeError(f'ColorJitter {name} must be a number or a tuple (low, high), got {value!r}')
        if not 0 <= value <= max_spread:
            raise ValueError(f'ColorJitter {name}={value!r} must be in [0, {max_spread}]')
        return base - value, base + value

    def __call__(self, results: dict) -> dict:
        rng = get_rng(results)
        factors = [rng.uniform(*r) for r in (self.brightness, self.contrast, self.saturation, self.hue)]
        results['imgs'] = color_jitter(as_clip(results['imgs']), *factors, order=rng.permutation(4))
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(brightness={self.brightness}, contrast={self.contrast}, '
                f'saturation={self.saturation}, hue={self.hue})')


@PIPELINES.register_module()
class Normalize:
    """Accepted from MMAction2 0.x configs; the mean/std arithmetic runs on the device.

    The runtime config moves a 0.x ``Normalize``'s mean and std into
    ``model.data_preprocessor`` and drops the step from the pipelines, so batches cross to
    the accelerator as uint8 (a quarter of the bytes) and the model normalises them.
    Built directly, the step leaves ``imgs`` uint8 and records ``img_norm_cfg`` (``mean``,
    ``std``, ``to_bgr`` as float32 arrays/bool), as MMAction2 stores it.

    ``to_bgr=True`` reverses the channel order here, on the host (cheap for uint8),
    so the device sees the channels in the order ``mean``/``std`` are given in and
    must not swap them again.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], to_bgr: bool = False,
                 adjust_magnitude: bool = False) -> None:
        if not isinstance(mean, Sequence) or not isinstance(std, Sequence):
            raise TypeError(f'Normalize mean and std must be lists, got {mean!r} and {std!r}')
        self.mean = np.array(mean, dtype=np.float32)
        self.std = np.array(std, dtype=np.float32)
        self.to_bgr = to_bgr
        self.adjust_magnitude = adjust_magnitude

    def __call__(self, results: dict) -> dict:
        if self.to_bgr and 'imgs' in results:
            imgs = np.ascontiguousarray(as_clip(results['imgs']))
            flat = imgs.reshape(-1, imgs.shape[-2], imgs.shape[-1])  # one cvtColor call for the clip
            results['imgs'] = cv2.cvtColor(flat, cv2.COLOR_RGB2BGR).reshape(imgs.shape)
        results['img_norm_cfg'] = dict(mean=self.mean, std=self.std, to_bgr=self.to_bgr)
        if results.get('modality') == 'Flow':
            results['img_norm_cfg']['adjust_magnitude'] = self.adjust_magnitude
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(mean={self.mean.tolist()}, std={self.std.tolist()}, '
                f'to_bgr={self.to_bgr}, adjust_magnitude={self.adjust_magnitude})')
