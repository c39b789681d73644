"""``python -m actionjax.train --config CONFIG``: train a recognizer from an MMAction2-style config.

Reads top to bottom like MMAction2's ``tools/train.py``: parse arguments, resolve
the config and work dir, set up logs, build data / model / optimizer, run the loop
(``actionjax.engine.runner``). MMAction2 0.x and 1.x configs both work.
"""

from __future__ import annotations

import argparse
import logging
import os
import os.path as osp
import sys
import time
from typing import Any

from actionjax.config import DictAction
from actionjax.runtime_config import load_config


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


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.deterministic:  # must be set before the backend starts
        flags = os.environ.get('XLA_FLAGS', '')
        os.environ['XLA_FLAGS'] = f'{flags} --xla_gpu_deterministic_ops=true'.strip()
    cfg = load_config(args.config, args.cfg_options)

    from actionjax.engine.checkpoint import find_latest, resolve_checkpoint
    from actionjax.engine.logger import setup_logger
    from actionjax.engine.runner import NonFiniteLossError
    from actionjax.engine.sharding import init_distributed

    work_dir = args.work_dir or cfg.work_dir or osp.join(
        'work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.work_dir = work_dir
    resume_from = args.resume_from or cfg.resume_from
    if args.auto_resume or resume_from == 'auto':
        resume_from = find_latest(work_dir)
    elif resume_from:
        resume_from = resolve_checkpoint(resume_from)
    seed = args.seed if args.seed is not None else cfg.seed or 0
    cfg.seed = seed

    init_distributed(cfg.dist_params)
    import jax

    is_main = jax.process_index() == 0
    os.makedirs(work_dir, exist_ok=True)
    timestamp = time.strftime('%Y%m%d_%H%M%S', time.localtime())
    logger = setup_logger(osp.join(work_dir, f'{timestamp}.log') if is_main else None, cfg.log_level)
    if is_main:  # the file's config as this run resolved it (seed and work dir included)
        cfg.source.update(seed=seed, work_dir=work_dir)
        cfg.source.dump(osp.join(work_dir, osp.basename(args.config)))
    logger.info(f'config {args.config} -> work dir {work_dir}; seed {seed}; '
                f'{jax.device_count()} device(s): {jax.devices()[0].device_kind}')
    if resume_from:
        logger.info(f'resuming from {resume_from}')
    elif args.auto_resume:
        logger.info(f'--auto-resume: no checkpoint in {work_dir} yet, starting from scratch')

    try:
        return train(cfg, work_dir, timestamp=timestamp, validate=not args.no_validate,
                     resume_from=resume_from, load_from=args.load_from or cfg.load_from, seed=seed)
    except (NonFiniteLossError, FileNotFoundError, KeyError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)  # no repr quotes
        logger.error(message, extra={'console': False})  # for the log file; the exit prints it
        sys.exit(f'error: {message}')


def train(cfg: Any, work_dir: str, *, timestamp: str, validate: bool = True, resume_from: str | None = None,
          load_from: str | None = None, seed: int = 0) -> dict:
    """Build everything from a runtime config (``actionjax.runtime_config``) and run the loop.

    Returns ``{'state': final TrainState, 'eval': last validation results or None}``.
    """
    import jax

    from actionjax.data import build_dataset
    from actionjax.engine import build
    from actionjax.engine.evaluation import build_metrics
    from actionjax.engine.logger import RunLogger
    from actionjax.engine.runner import LoopConfig, Validation, run_training
    from actionjax.engine.sharding import batch_sharded, local_batch_size, make_mesh, replicated
    from actionjax.engine.state import TrainState
    from actionjax.models import build_model
    from actionjax.runtime_config import runtime_config

    cfg = runtime_config(cfg)
    logger = logging.getLogger('actionjax')
    loop = LoopConfig.from_config(cfg, work_dir)
    validate = validate and cfg.data.val is not None
    build.check_data(cfg, ('train', 'val') if validate else ('train',))

    # Data: batch_size samples per device; this process loads its devices' share.
    mesh = make_mesh()
    train_set = build_dataset(cfg, 'data.train')
    train_data = build.train_data(cfg, train_set, local_batch_size(cfg.data.train.batch_size, mesh), seed)
    val = None
    if validate:
        val_set = build_dataset(cfg, 'data.val', test_mode=True)
        val_data = build.eval_data(cfg, val_set, local_batch_size(cfg.data.val.batch_size, mesh), 'val')
        val = Validation(val_data, val_set, build_metrics(cfg.val_metrics, 'val_metrics'))
    logger.info(f'train: {train_set!r}, {len(train_data)} iterations per epoch'
                + (f'; val: {val.dataset!r}' if val is not None else ''))

    # Model and its initial variables: init, then pretrained backbone, then --load-from.
    model = build_model(cfg)
    sample = build.sample_batch(train_set)
    variables = build.init_variables(model, sample, seed)
    variables = build.load_pretrained(variables, cfg)
    if load_from and not resume_from:
        variables = build.load_from(variables, load_from)

    # The optimizer holds each param group's lr and momentum schedule; the state the loop carries.
    tx = build.build_tx(cfg, model, variables, sample, len(train_data))
    state = TrainState.create(variables, tx, jax.random.PRNGKey(seed))

    run_log = RunLogger(work_dir, timestamp, cfg.log.tensorboard, logger, enabled=jax.process_index() == 0)
    run_log.write_header({'env_info': {'jax': jax.__version__, 'devices': jax.device_count(),
                                       'device_kind': jax.devices()[0].device_kind},
                          'seed': seed, 'config': cfg.filename})
    try:
        state, results = run_training(model, tx, state, train_data, loop,
                                      (replicated(mesh), batch_sharded(mesh)), run_log, val=val,
                                      resume_from=resume_from)
    finally:
        run_log.close()
        for loader in (train_data, val.data if val is not None else None):
            if loader is not None:
                loader.close()
    return {'state': state, 'eval': results}


if __name__ == '__main__':
    main()
