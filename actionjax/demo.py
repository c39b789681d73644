"""``python -m actionjax.demo VIDEO --config CONFIG --checkpoint CKPT --label-map labels.txt``.

Prints the top-5 labels of one video with their scores, as MMAction2's demo/demo.py
does. The video goes through the config's test pipeline (decoded with decord) and the
recognizer's test mode (views averaged as ``model.test_cfg.average_clips`` says).
``CKPT`` is a training checkpoint (``work_dir/epoch_N``, ``best_*``) or a directory
written by ``python -m convert.mmaction2``.
"""

from __future__ import annotations

import argparse
import os
import sys

from actionjax.config import DictAction
from actionjax.runtime_config import load_config


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='python -m actionjax.demo',
                                     description='Top-5 action labels of one video.')
    parser.add_argument('video', help='video file')
    parser.add_argument('--config', required=True, help='config file')
    parser.add_argument('--checkpoint', required=True,
                        help='training checkpoint (work_dir/epoch_N, work_dir/best) or converted dir')
    parser.add_argument('--label-map', required=True,
                        help='text file with one class name per line (line i names class i)')
    parser.add_argument('--top-k', type=int, default=5, help='how many labels to print (default 5)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={}, metavar='KEY=VALUE',
                        help='override config values, as for actionjax.train')
    return parser.parse_args(argv)


def read_label_map(path: str) -> list[str]:
    """Class names, one per line (MMAction2's label_map_k400.txt format)."""
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def main(argv: list[str] | None = None) -> list[tuple[str, float]]:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    from actionjax.engine.checkpoint import resolve_checkpoint

    checkpoint = resolve_checkpoint(args.checkpoint)
    for path, what in ((args.video, 'video'), (args.label_map, 'label map'), (checkpoint, 'checkpoint')):
        if not os.path.exists(path):
            sys.exit(f'error: {what} {path!r} does not exist')
    labels = read_label_map(args.label_map)

    from actionjax.apis import inference_recognizer, init_recognizer

    model = init_recognizer(cfg, checkpoint)
    top = inference_recognizer(model, args.video, topk=args.top_k)
    if any(index >= len(labels) for index, _ in top):
        sys.exit(f'error: the label map {args.label_map} names {len(labels)} classes but the model predicts '
                 f'class {max(i for i, _ in top)}')
    result = [(labels[index], score) for index, score in top]
    print(f'The top-{len(result)} labels with corresponding scores are:')
    for name, score in result:
        print(f'{name}: {score:.4f}')
    return result


if __name__ == '__main__':
    main()
