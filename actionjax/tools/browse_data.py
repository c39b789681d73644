"""``python -m actionjax.tools.browse_data --config CONFIG --out grid.png``: look at augmented clips.

Draws ``--n`` samples of a split through the config's pipeline (with the loader's
randomness for epoch ``--epoch``, so the picture shows what training sees) and saves a
grid: one row per sample, up to ``--frames`` frames per row, titled with the dataset
index, label (and class name, from ``--label-map`` or a ``classes.txt`` next to the
annotation file) and file name. Use it to check crops, flips and frame sampling by eye.
"""

from __future__ import annotations

import argparse
import os.path as osp
from typing import Any

import numpy as np


def clip_frames(imgs: np.ndarray, max_frames: int) -> np.ndarray:
    """Frames (N, H, W, C) to show for one sample's ``imgs``.

    ``(V, H, W, C)`` (2D recognizers: segments/crops) shows the views; ``(V, T, H, W, C)``
    (3D) shows the frames of the first view. At most ``max_frames``, evenly spaced.
    """
    imgs = np.asarray(imgs)
    frames = imgs[0] if imgs.ndim == 5 else imgs
    if frames.ndim != 4:
        raise ValueError(f"expected imgs of shape (V, H, W, C) or (V, T, H, W, C), got {imgs.shape}; "
                         "is FormatShape the pipeline's last shaping step?")
    if frames.shape[-1] != 3:  # flow (x, y) or grey: show the first channel in grey
        frames = np.repeat(frames[..., :1], 3, axis=-1)
    if len(frames) > max_frames:
        frames = frames[np.linspace(0, len(frames) - 1, max_frames).round().astype(int)]
    return frames


def label_text(label: Any, class_names: list[str] | None) -> str:
    """``'2 (up)'`` for a single label, ``'1, 4'`` for a multi-hot vector."""
    label = np.asarray(label)
    ids = [int(label)] if label.ndim == 0 else [int(i) for i in np.flatnonzero(label > 0)]
    parts = []
    for i in ids:
        name = class_names[i] if class_names and 0 <= i < len(class_names) else None
        parts.append(f'{i} ({name})' if name else str(i))
    return ', '.join(parts) if parts else 'none'


def find_class_names(dataset: Any, label_map: str | None) -> list[str] | None:
    path = label_map
    if path is None:
        ann_file = getattr(getattr(dataset, 'dataset', dataset), 'ann_file', None)
        candidate = osp.join(osp.dirname(ann_file), 'classes.txt') if ann_file else None
        path = candidate if candidate and osp.isfile(candidate) else None
    if path is None:
        return None
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def draw_grid(samples: list[tuple[np.ndarray, str]], out: str, frame_inches: float = 1.6) -> None:
    """Save rows of frames, each row titled; ``samples`` is ``[(frames (N, H, W, 3), title), ...]``."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    cols = max(len(frames) for frames, _ in samples)
    rows = len(samples)
    title_inches = 0.3
    fig, axes = plt.subplots(rows, cols, figsize=(cols * frame_inches, rows * (frame_inches + title_inches)),
                             squeeze=False, gridspec_kw=dict(wspace=0.03, hspace=title_inches / frame_inches))
    for r, (frames, title) in enumerate(samples):
        for c in range(cols):
            ax = axes[r][c]
            ax.axis('off')
            if c < len(frames):
                ax.imshow(frames[c])
        axes[r][0].set_title(title, loc='left', fontsize=9)
    top = 1 - title_inches / (rows * (frame_inches + title_inches))
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=top)
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    from actionjax.config import DictAction
    from actionjax.data import build_dataset
    from actionjax.runtime_config import load_config

    parser = argparse.ArgumentParser(prog='python -m actionjax.tools.browse_data',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--config', required=True)
    parser.add_argument('--out', required=True, help='image file to write, e.g. grid.png')
    parser.add_argument('--split', default='train', choices=['train', 'val', 'test'])
    parser.add_argument('--n', type=int, default=4, help='number of samples (rows)')
    parser.add_argument('--frames', type=int, default=8, help='at most this many frames per row')
    parser.add_argument('--seed', type=int, default=0, help='picks the samples and their augmentation')
    parser.add_argument('--epoch', type=int, default=0, help="augment as the loader does in this epoch")
    parser.add_argument('--label-map', help='class names, one per line (default: classes.txt next to '
                                            'the annotation file, if there is one)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={}, metavar='KEY=VALUE')
    args = parser.parse_args(argv)

    cfg = load_config(args.config, args.cfg_options)
    dataset = build_dataset(cfg, f'data.{args.split}', test_mode=args.split != 'train')
    class_names = find_class_names(dataset, args.label_map)
    picks = np.random.default_rng(args.seed).choice(len(dataset), min(args.n, len(dataset)), replace=False)
    samples = []
    for index in sorted(int(i) for i in picks):
        results = dataset.prepare(index, np.random.default_rng([args.seed, args.epoch, index]))
        if results is None:
            continue
        frames = clip_frames(results['imgs'], args.frames)
        title = (f'#{index}  label {label_text(results["label"], class_names)}  '
                 f'{osp.basename(dataset.sample_path(index))}  imgs {tuple(np.shape(results["imgs"]))}')
        samples.append((frames, title))
    if not samples:
        raise SystemExit('error: the pipeline dropped every sample it was given')
    draw_grid(samples, args.out)
    print(f'wrote {args.out}: {len(samples)} {args.split} samples')


if __name__ == '__main__':
    main()
