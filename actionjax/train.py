"""``python -m actionjax.train CONFIG``: train a recognizer from an MMAction2-style config.

Reads top to bottom like MMAction2's ``tools/train.py``: parse arguments, resolve
the config and work dir, set up logs, build data / model / optimizer, run the loop
(``actionjax.engine.runner``). MMAction2 0.x and 1.x configs both work, and so do
MMAction2's habits: ``CONFIG [--validate] [--work-dir DIR]`` (``--config CONFIG`` too).
A config, data or checkpoint error is one line (``actionjax.errors``); anything else keeps
its traceback, and the log file in the work dir always has it.
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
        prog='python -m actionjax.train', description='Train a recognizer from an MMAction2-style config.',
        usage='python -m actionjax.train CONFIG [--work-dir DIR] [--validate | --no-validate] [...]')
    parser.add_argument('config', nargs='?', help='config file, e.g. configs/tsn_demo.py')
    parser.add_argument('--config', dest='config_option', metavar='CONFIG', help='the config, as a flag')
    parser.add_argument('--work-dir', help='where logs and checkpoints go (default: work_dirs/<config name>)')
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument('--resume-from',
                        help='checkpoint to resume from: model, optimizer, step and data order')
    resume.add_argument('--auto-resume', action='store_true',
                        help='resume from the newest intact checkpoint in the work dir, if there is one')
    parser.add_argument('--load-from', help='checkpoint whose weights initialise the model (fine-tuning)')
    parser.add_argument('--seed', type=int, default=None, help='random seed (default: config seed or 0)')
    parser.add_argument('--deterministic', action='store_true',
                        help='deterministic XLA reductions (slower on GPU)')
    validate = parser.add_mutually_exclusive_group()
    validate.add_argument('--validate', action='store_true',
                          help="evaluate during training (MMAction2 0.x's flag; the default here)")
    validate.add_argument('--no-validate', action='store_true', help='skip evaluation during training')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={}, metavar='KEY=VALUE',
                        help="override config values, e.g. model.backbone.depth=18 "
                             "data.train.pipeline.0.clip_len=2 x='[1,2]'; '+key=value' adds a new key")
    args = parser.parse_args(argv)
    if args.config and args.config_option and args.config != args.config_option:
        parser.error(f'two configs given: {args.config} and --config {args.config_option}; give one')
    args.config = args.config or args.config_option
    if not args.config:
        parser.error('give the config file: python -m actionjax.train CONFIG (or --config CONFIG)')
    return args


def main(argv: list[str] | None = None) -> dict:
    """Train as the command line asks; returns ``train``'s dict (``{'state': None, 'eval': None,
    'finished': checkpoint}`` when ``--auto-resume`` finds the run already finished)."""
    args = parse_args(argv)
    if args.deterministic:  # must be set before the backend starts
        flags = os.environ.get('XLA_FLAGS', '')
        os.environ['XLA_FLAGS'] = f'{flags} --xla_gpu_deterministic_ops=true'.strip()
    cfg = load_config(args.config, args.cfg_options)
    from actionjax.precision import enable_precision
    enable_precision(cfg.precision)  # dtype='float64': jax_enable_x64 before any array exists
    from actionjax.engine.compile_cache import enable_compilation_cache
    enable_compilation_cache()  # a second launch reuses the compiled steps

    from actionjax.engine.logger import setup_logger
    from actionjax.engine.sharding import init_distributed
    from actionjax.errors import is_user_error, one_line

    work_dir = args.work_dir or cfg.work_dir or osp.join(
        'work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.work_dir = work_dir
    seed = args.seed if args.seed is not None else cfg.seed or 0
    cfg.seed = seed

    init_distributed(cfg.dist_params)
    import jax

    is_main = jax.process_index() == 0
    created = not osp.isdir(work_dir)
    os.makedirs(work_dir, exist_ok=True)
    timestamp = time.strftime('%Y%m%d_%H%M%S', time.localtime())
    log_file = osp.join(work_dir, f'{timestamp}.log')
    logger = setup_logger(log_file if is_main else None, cfg.log_level)
    config_dump = osp.join(work_dir, osp.basename(args.config))
    if is_main:  # the file's config as this run resolved it (seed and work dir included)
        cfg.source.update(seed=seed, work_dir=work_dir)
        cfg.source.dump(config_dump)
    logger.info(f'config {args.config} -> work dir {work_dir}; seed {seed}; '
                f'{jax.device_count()} device(s): {jax.devices()[0].device_kind}')

    try:
        resume_from = _resume_point(args, cfg, work_dir, logger)
        if isinstance(resume_from, _Finished):
            return {'state': None, 'eval': None, 'finished': resume_from.checkpoint}
        return train(cfg, work_dir, timestamp=timestamp, validate=not args.no_validate,
                     resume_from=resume_from, load_from=args.load_from or cfg.load_from, seed=seed)
    except Exception as err:
        user_error = is_user_error(err)
        # The log file gets the whole story; the screen gets one line or the traceback.
        logger.error(one_line(err) if user_error else f'{type(err).__name__}: {err}', exc_info=err,
                     extra={'console': False})
        if not user_error:
            raise  # the work dir stays: its log has the traceback
        if created and is_main:
            _remove_unused_work_dir(work_dir, {log_file, config_dump}, logger)
        sys.exit(f'error: {one_line(err)}')


class _Finished:
    """``--auto-resume`` found a checkpoint at the end of the run: nothing left to train."""

    def __init__(self, checkpoint: str) -> None:
        self.checkpoint = checkpoint


def _resume_point(args: argparse.Namespace, cfg: Any, work_dir: str, logger: logging.Logger
                  ) -> str | None | _Finished:
    """The checkpoint to resume from: ``--resume-from``, or for ``--auto-resume`` (and 1.x
    ``resume=True``) the newest intact one of the work dir, passing over damaged ones."""
    from actionjax.engine.checkpoint import find_resumable, read_meta, resolve_checkpoint

    resume_from = args.resume_from or cfg.resume_from
    if not (args.auto_resume or resume_from == 'auto'):
        if resume_from:
            resume_from = resolve_checkpoint(resume_from)
            logger.info(f'resuming from {resume_from}')
        return resume_from
    resume_from, damaged = find_resumable(work_dir)
    for path, why in damaged:
        logger.warning(f'--auto-resume: {why}; passing over it (nothing is deleted: it stays until this run '
                       f'saves {os.path.basename(path)} again)')
    if resume_from is None:
        logger.info(f'--auto-resume: no {"intact " if damaged else ""}checkpoint in {work_dir}, '
                    'starting from scratch')
        return None
    meta = read_meta(resume_from)
    loop = cfg.train_loop
    if loop is not None and (meta['iter'] >= loop['max_iters'] if not loop['by_epoch'] else
                             meta['epoch'] >= loop['max_epochs'] and not meta.get('inner_iter')):
        done = f'epoch {meta["epoch"]}' if loop['by_epoch'] else f'iteration {meta["iter"]}'
        logger.info(f'--auto-resume: the run in {work_dir} already finished ({resume_from} is {done} of '
                    f'{loop["max_epochs"] if loop["by_epoch"] else loop["max_iters"]}); nothing to train. '
                    'To train longer, raise total_epochs / max_iters and resume again, or use another '
                    '--work-dir for a new run')
        return _Finished(resume_from)
    newest = ' (the newest intact checkpoint)' if damaged else ''
    logger.info(f'--auto-resume: resuming from {resume_from}{newest}, iteration {meta["iter"]}')
    return resume_from


def _remove_unused_work_dir(work_dir: str, own_files: set[str], logger: logging.Logger) -> None:
    """Delete a work dir this run created when it holds only this run's log and config dump
    (the run failed before training): no empty work dir is left behind."""
    import shutil

    present = {osp.join(work_dir, name) for name in os.listdir(work_dir)}
    if present <= own_files:
        for handler in list(logger.handlers):  # release the log file before deleting it
            if isinstance(handler, logging.FileHandler):
                logger.removeHandler(handler)
                handler.close()
        shutil.rmtree(work_dir, ignore_errors=True)


def train(cfg: Any, work_dir: str, *, timestamp: str, validate: bool = True, resume_from: str | None = None,
          load_from: str | None = None, seed: int = 0) -> dict:
    """Build everything from a runtime config (``actionjax.runtime_config``) and run the loop.

    Returns ``{'state': final TrainState, 'eval': last validation results or None}``.
    """
    import jax
    import numpy as np

    from actionjax.data import build_dataset
    from actionjax.engine import build
    from actionjax.engine.evaluation import build_metrics
    from actionjax.engine.logger import RunLogger
    from actionjax.engine.runner import LoopConfig, Validation, run_training
    from actionjax.engine.sharding import batch_sharded, local_batch_size, make_mesh, replicated
    from actionjax.engine.state import TrainState
    from actionjax.models import build_model
    from actionjax.runtime_config import runtime_config

    started = time.time()
    cfg = runtime_config(cfg)
    logger = logging.getLogger('actionjax')
    loop = LoopConfig.from_config(cfg, work_dir)
    validate = validate and cfg.data.val is not None
    build.check_data(cfg, ('train', 'val') if validate else ('train',))

    # Data: batch_size samples per device; this process loads its devices' share.
    logger.info('building the datasets and data loaders')
    mesh = make_mesh()
    train_set = build_dataset(cfg, 'data.train')
    train_data = build.train_data(cfg, train_set, local_batch_size(cfg.data.train.batch_size, mesh), seed)
    val = None
    if validate:
        val_set = build_dataset(cfg, 'data.val', test_mode=True)
        val_data = build.eval_data(cfg, val_set, local_batch_size(cfg.data.val.batch_size, mesh), 'val')
        val = Validation(val_data, val_set, build_metrics(cfg.val_metrics, 'val_metrics', cfg.model))
    logger.info(f'train: {train_set!r}, {len(train_data)} iterations per epoch'
                + (f'; val: {val.dataset!r}' if val is not None else ''))
    if not resume_from:  # a resumed loader moves to its checkpoint's position first
        train_data.start_prefetch()  # the workers start while the model is built and compiled

    # Model and its initial variables: init, then pretrained backbone, then --load-from.
    logger.info('building the model and initialising its variables')
    model = build_model(cfg)
    sample = build.sample_batch(train_set)
    variables = build.init_variables(model, sample, seed, cache_key=loop.trace_key)
    num_params = sum(np.size(x) for x in jax.tree.leaves(variables['params']))
    logger.info(f'model: {type(model).__name__} with {num_params:,} parameters')
    variables = build.load_pretrained(variables, cfg)
    if load_from and not resume_from:
        variables = build.load_from(variables, load_from)

    # The optimizer holds each param group's lr and momentum schedule; the state the loop carries.
    logger.info('building the optimizer and its schedules')
    tx = build.build_tx(cfg, model, variables, sample, len(train_data))
    state = TrainState.create(variables, tx, jax.random.PRNGKey(seed))

    run_log = RunLogger(work_dir, timestamp, cfg.log.tensorboard, logger, enabled=jax.process_index() == 0,
                        started=started)
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
