"""``python -m actionjax.train --config CONFIG``: train a recognizer from an MMAction2-style config."""

from __future__ import annotations

import argparse
import sys

from actionjax.config import Config, ConfigError, DictAction


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='python -m actionjax.train', description='Train a recognizer from an MMAction2-style config.')
    parser.add_argument('--config', required=True, help='config file, e.g. configs/tsn_demo.py')
    parser.add_argument('--work-dir', help='where logs and checkpoints go (default: work_dirs/<config name>)')
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument('--resume-from',
                        help='checkpoint to resume from: model, optimizer, step and data order')
    resume.add_argument('--auto-resume', action='store_true',
                        help='resume from the latest checkpoint in the work dir, if there is one')
    parser.add_argument('--load-from', help='checkpoint whose weights initialise the model (fine-tuning)')
    parser.add_argument('--seed', type=int, default=None, help='random seed (default: config seed or 0)')
    parser.add_argument('--deterministic', action='store_true',
                        help='deterministic XLA reductions (slower on GPU)')
    parser.add_argument('--no-validate', action='store_true', help='skip evaluation during training')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={}, metavar='KEY=VALUE',
                        help="override config values, e.g. model.backbone.depth=18 "
                             "data.train.pipeline.0.clip_len=2 x='[1,2]'; '+key=value' adds a new key")
    return parser.parse_args(argv)


def load_config(path: str, cfg_options: dict | None = None) -> Config:
    """The config file with ``--cfg-options`` applied; config errors exit with one line."""
    try:
        cfg = Config.fromfile(path)
        cfg.merge_from_dict(cfg_options or {})
    except ConfigError as err:
        sys.exit(f'error: {err}')
    return cfg


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    print(cfg.pretty_text)
    sys.exit('error: the training engine is not part of this build yet; the config above loaded fine')


if __name__ == '__main__':
    main()
