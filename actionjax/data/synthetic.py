"""A small labelled video dataset, generated (``python -m actionjax.tools.make_synthetic``).

Two sets of real mp4 files (MPEG-4 part 2, written by OpenCV, read by decord) with
annotation lists in MMAction2's ``path label`` format:

* ``motion``: a textured square slides over a textured background, wrapping around
  the frame edges. The class is the direction (left, right, up, down). The start
  position is uniform and the motion wraps, so any single frame looks the same for
  every class: a model that averages per-frame scores (TSN) stays at chance, one that
  mixes time (TSM, 3D convs) can learn it.
* ``appearance``: a coloured shape (red disk, green square, blue triangle, yellow
  cross) drifts in a random direction; one frame is enough to tell the class.

Layout, for each set (``data_prefix`` is ``<set>/videos``)::

    <out>/<set>/videos/{train,val}/000000.mp4
    <out>/<set>/{train,val}_list.txt      # "train/000000.mp4 2"
    <out>/<set>/classes.txt               # one class name per line

Everything is drawn from ``--seed``, so two runs write the same frames.
``ensure_synthetic(root)`` writes the folder only when it is missing or incomplete;
``SyntheticVideoDataset`` (used by the demo configs) calls it.
"""

from __future__ import annotations

import logging
import os
import os.path as osp
import shutil
import tempfile
import time
from collections.abc import Sequence

import cv2
import numpy as np

SETS = ('motion', 'appearance')
CLASSES = {
    'motion': ('left', 'right', 'up', 'down'),
    'appearance': ('red_disk', 'green_square', 'blue_triangle', 'yellow_cross'),
}
_DIRECTIONS = np.array([(0, -1), (0, 1), (-1, 0), (1, 0)], np.float64)  # (dy, dx) per motion class
_COLOURS = np.array([(220, 40, 40), (40, 200, 40), (40, 70, 230), (230, 210, 30)], np.float64)  # RGB
_COMPLETE = '.complete'  # marker file: written last, so its presence means the folder is whole


def write_video(path: str, frames: np.ndarray, fps: float = 25.0) -> None:
    """Write ``frames`` (T, H, W, 3) uint8 RGB as an mp4 (MPEG-4 part 2, 'mp4v')."""
    num, height, width, _ = frames.shape
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps, (width, height))
    if not writer.isOpened():
        raise OSError(f'OpenCV cannot write {path!r} with the mp4v codec')
    try:
        for frame in frames:
            writer.write(np.ascontiguousarray(frame[..., ::-1]))  # OpenCV wants BGR
    finally:
        writer.release()


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A muted, smooth random texture with fine grain: something for the encoder to keep."""
    coarse = rng.uniform(40, 170, size=(6, 6, 3)).astype(np.float32)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    grain = rng.normal(0, 12, size=(height, width, 1)).astype(np.float32)
    return np.clip(smooth + grain, 0, 255)


def _textured_patch(rng: np.random.Generator, size: int) -> np.ndarray:
    """A bright checkerboard in two random colours, the moving object of the motion set."""
    cell = max(2, size // 4)
    yy, xx = np.mgrid[:size, :size]
    checks = ((yy // cell + xx // cell) % 2).astype(np.float32)[..., None]
    a, b = rng.uniform(0, 255, size=(2, 3)).astype(np.float32)
    return a * checks + b * (1 - checks)


def _shape_mask(shape: int, size: int) -> np.ndarray:
    """Boolean (size, size) mask of appearance class ``shape``."""
    yy, xx = (np.mgrid[:size, :size] + 0.5) / size - 0.5  # centred coordinates in [-0.5, 0.5]
    if shape == 0:  # disk
        return yy ** 2 + xx ** 2 <= 0.25
    if shape == 1:  # square
        return (abs(yy) <= 0.42) & (abs(xx) <= 0.42)
    if shape == 2:  # triangle, apex up
        return (yy <= 0.45) & (abs(xx) <= (yy + 0.45) / 2)
    return (abs(yy) <= 0.12) | (abs(xx) <= 0.12)  # cross


def _paste_wrapped(frames: np.ndarray, layer: np.ndarray, mask: np.ndarray, ys: np.ndarray,
                   xs: np.ndarray) -> None:
    """Paste ``layer`` where ``mask`` at top-left (ys[t], xs[t]) of frame t, wrapping around."""
    height, width = frames.shape[1:3]
    size = mask.shape[0]
    rows = (np.arange(size)[None, :] + ys[:, None]) % height  # (T, size)
    cols = (np.arange(size)[None, :] + xs[:, None]) % width
    for t in range(frames.shape[0]):
        region = frames[t][np.ix_(rows[t], cols[t])]
        frames[t][np.ix_(rows[t], cols[t])] = np.where(mask[..., None], layer, region)


def render_clip(kind: str, label: int, rng: np.random.Generator, size: int | tuple[int, int] = 64,
                num_frames: int = 32) -> np.ndarray:
    """One clip (num_frames, H, W, 3) uint8 RGB of class ``label`` of set ``kind``.

    ``size`` is the side of square frames or ``(height, width)``.
    """
    height, width = (size, size) if isinstance(size, int) else size
    side = min(height, width)
    background = _background(rng, height, width).round().astype(np.uint8)
    frames = np.repeat(background[None], num_frames, axis=0)
    obj = int(round(side * rng.uniform(0.25, 0.32)))
    start = rng.uniform(0, 1, size=2) * (height, width)  # uniform on the torus: every frame has the same law
    speed = rng.uniform(0.025, 0.04) * side  # pixels per frame
    if kind == 'motion':
        direction = _DIRECTIONS[label]
        layer = _textured_patch(rng, obj)
        mask = np.ones((obj, obj), bool)
    elif kind == 'appearance':
        angle = rng.uniform(0, 2 * np.pi)
        direction = np.array([np.sin(angle), np.cos(angle)])
        colour = np.clip(_COLOURS[label] + rng.normal(0, 12, size=3), 0, 255)
        layer = np.broadcast_to(colour.astype(np.float32), (obj, obj, 3))
        mask = _shape_mask(label, obj)
    else:
        raise ValueError(f'unknown synthetic set {kind!r}; choose from {SETS}')
    path = start[None] + speed * np.arange(num_frames)[:, None] * direction[None]
    ys, xs = np.round(path).astype(np.int64).T
    _paste_wrapped(frames, layer.round().astype(np.uint8), mask, ys, xs)
    return frames


def make_set(out: str, kind: str, num_train: int = 200, num_val: int = 80, size: int = 64,
             num_frames: int = 32, fps: float = 10.0, seed: int = 0) -> None:
    """Write one set (``motion`` or ``appearance``) under ``out/kind``."""
    root = osp.join(out, kind)
    classes = CLASSES[kind]
    with open(osp.join(_makedirs(root), 'classes.txt'), 'w') as f:
        f.write('\n'.join(classes) + '\n')
    for split, count, split_seed in (('train', num_train, 0), ('val', num_val, 1)):
        folder = _makedirs(osp.join(root, 'videos', split))
        rng = np.random.default_rng([seed, SETS.index(kind), split_seed])
        labels = np.arange(count) % len(classes)
        rng.shuffle(labels)
        lines = []
        for i, label in enumerate(labels):
            name = f'{i:06d}.mp4'
            write_video(osp.join(folder, name), render_clip(kind, int(label), rng, size, num_frames), fps)
            if i == 0:
                _check_decord_reads(osp.join(folder, name))
            lines.append(f'{split}/{name} {label}\n')
        with open(osp.join(root, f'{split}_list.txt'), 'w') as f:
            f.writelines(lines)


def _check_decord_reads(path: str) -> None:
    import decord

    try:
        decord.VideoReader(path, num_threads=1).get_batch([0]).asnumpy()
    except Exception as err:  # noqa: BLE001 - decord raises assorted types
        raise ValueError(f'decord cannot decode {path}: {err}. decord mishandles some frame widths '
                         '(16, 24, 48, 72 among them); choose a size such as 32, 64 or 96') from err


def _makedirs(path: str) -> str:
    os.makedirs(path, exist_ok=True)
    return path


def make_synthetic(out: str, sets: Sequence[str] = SETS, **kwargs) -> str:
    """Write ``sets`` under ``out`` (see the module docstring) and mark it complete."""
    for kind in sets:
        make_set(out, kind, **kwargs)
    open(osp.join(out, _COMPLETE), 'w').close()
    return out


def is_complete(root: str) -> bool:
    return osp.isfile(osp.join(root, _COMPLETE))


def ensure_synthetic(root: str = 'data/synthetic', **kwargs) -> str:
    """Make sure the synthetic dataset exists at ``root``; write it if not. Returns ``root``.

    Safe when several processes call it at once (e.g. one per host on a shared disk):
    each writes into its own temporary sibling folder and renames it into place; the
    first rename wins and the others discard their copy.
    """
    if is_complete(root):
        return root
    logger = logging.getLogger('actionjax')
    logger.info(f'generating the synthetic demo videos into {root} (first use only)')
    started = time.perf_counter()
    parent = osp.dirname(osp.abspath(root))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{osp.basename(root)}-', dir=parent)
    try:
        make_synthetic(tmp, **kwargs)
        if osp.isdir(root) and not is_complete(root):
            shutil.rmtree(root, ignore_errors=True)  # a partial folder from an interrupted run
        try:
            os.rename(tmp, root)
        except OSError:
            if not is_complete(root):  # not another process's finished copy: a real error
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info(f'synthetic videos ready in {root} ({time.perf_counter() - started:.0f} s)')
    return root
