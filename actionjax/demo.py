"""``python -m actionjax.demo CONFIG CHECKPOINT VIDEO [LABELS]``: the top-5 labels of one video.

Prints the top-5 labels of one video with their scores, as MMAction2's demo/demo.py
does, and takes its arguments in the same order (``VIDEO --config CONFIG --checkpoint
CHECKPOINT [--label-map LABELS]`` works too). The video goes through the config's test
pipeline and the recognizer's test mode (views averaged as ``model.test_cfg.average_clips``
says). ``CHECKPOINT`` is a training checkpoint (``work_dir/epoch_N``, ``best_*``; only its
parameters and batch statistics are read) or a directory written by ``python -m
convert.mmaction2``. Without a label file the class names come from the dataset: a
``classes.txt`` beside its annotation file (the synthetic demo sets have one).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from typing import Any

from actionjax.config import DictAction
from actionjax.runtime_config import load_config


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='python -m actionjax.demo',
                                     description='Top-5 action labels of one video.',
                                     usage='python -m actionjax.demo CONFIG CHECKPOINT VIDEO [LABELS] [...]')
    parser.add_argument('positional', nargs='+', metavar='CONFIG CHECKPOINT VIDEO [LABELS]',
                        help="as MMAction2's demo/demo.py takes them; with --config and --checkpoint, "
                             'just VIDEO')
    parser.add_argument('--config', help='config file')
    parser.add_argument('--checkpoint',
                        help='training checkpoint (work_dir/epoch_N, work_dir/best) or converted dir')
    parser.add_argument('--label-map',
                        help='text file with one class name per line (line i names class i); default: '
                             "the dataset's classes.txt")
    parser.add_argument('--top-k', type=int, default=5, help='how many labels to print (default 5)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={}, metavar='KEY=VALUE',
                        help='override config values, as for actionjax.train')
    args = parser.parse_args(argv)
    names = [n for n in ('config', 'checkpoint') if getattr(args, n) is None] + ['video', 'label_map']
    if args.label_map is not None:
        names.remove('label_map')
    needed = len(names) - ('label_map' in names)
    if not needed <= len(args.positional) <= len(names):
        parser.error('give CONFIG CHECKPOINT VIDEO [LABELS] (or VIDEO --config CONFIG --checkpoint '
                     'CHECKPOINT [--label-map LABELS])')
    for name, value in zip(names, args.positional, strict=False):
        setattr(args, name, value)
    return args


def read_label_map(path: str) -> list[str]:
    """Class names, one per line (MMAction2's label_map_k400.txt format)."""
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def dataset_classes_file(cfg: Mapping[str, Any]) -> str | None:
    """The ``classes.txt`` beside the annotation file of the config's test (else val, train)
    dataset, when there is one."""
    from actionjax.runtime_config import data_config

    for split in ('test', 'val', 'train'):
        dataset = dict((data_config(cfg).get(split) or {}).get('dataset') or {})
        dataset = dict(dataset.get('dataset') or dataset)  # RepeatDataset wraps another
        ann_file = dataset.get('ann_file')
        if not ann_file:
            continue
        if dataset.get('data_root'):
            ann_file = os.path.join(dataset['data_root'], ann_file)
        candidate = os.path.join(os.path.dirname(ann_file), 'classes.txt')
        if os.path.isfile(candidate):
            return candidate
    return None


def main(argv: list[str] | None = None) -> list[tuple[str, float]]:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    from actionjax.engine.checkpoint import resolve_checkpoint
    from actionjax.engine.compile_cache import enable_compilation_cache
    from actionjax.errors import is_user_error, one_line
    from actionjax.precision import enable_precision
    enable_precision(cfg.precision)  # dtype='float64': jax_enable_x64 before any array exists
    enable_compilation_cache()
    checkpoint = resolve_checkpoint(args.checkpoint)
    label_map = args.label_map or dataset_classes_file(cfg)
    for path, what in ((args.video, 'video'), (label_map, 'label map'), (checkpoint, 'checkpoint')):
        if path is not None and not os.path.exists(path):
            sys.exit(f'error: {what} {path!r} does not exist')
    labels = read_label_map(label_map) if label_map else None

    from actionjax.apis import inference_recognizer, init_recognizer

    try:
        model = init_recognizer(cfg, checkpoint)
        top = inference_recognizer(model, args.video, topk=args.top_k)
    except Exception as err:
        if not is_user_error(err):
            raise
        sys.exit(f'error: {one_line(err)}')
    if labels is None:
        print('(no label file given and no classes.txt beside the dataset\'s annotation file: '
              'showing class indices)')
        labels = [f'class {i}' for i in range(max(i for i, _ in top) + 1)]
    if any(index >= len(labels) for index, _ in top):
        sys.exit(f'error: the label map {label_map} names {len(labels)} classes but the model predicts '
                 f'class {max(i for i, _ in top)}')
    result = [(labels[index], score) for index, score in top]
    print(f'The top-{len(result)} labels with corresponding scores are:')
    for name, score in result:
        print(f'{name}: {score:.4f}')
    return result


if __name__ == '__main__':
    main()
