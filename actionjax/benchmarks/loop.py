"""``python -m actionjax.benchmark --what loop --config C``: the training loop against its bare step.

The loop (``engine.runner.run_training``: loader, device prefetch, the jitted step, metrics
kept on the device, logging) runs ``--epochs`` epochs over an in-memory dataset of random
clips of the config's input shape, so no decoding competes for the CPU; its steady-state
step time (the last epoch's, as the JSON log records it) is compared with the same jitted
step called back to back on one device batch. Rounds alternate; the ratio is the median
of per-round ratios. A ratio near 1 means the loop adds nothing to the step: what a real
run adds on top is decoding, which ``--what data`` measures.
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import statistics
import tempfile
import time
from typing import Any

import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--config', default='configs/tsn_demo.py',
                        help='the config whose model and optimizer run')
    parser.add_argument('--batch', type=int, default=8, help='samples per step')
    parser.add_argument('--input-shape', type=lambda s: tuple(int(v) for v in s.split(',')),
                        help="one sample without C: V,H,W (2D) or V,T,H,W (3D); default: the config's")
    parser.add_argument('--iters', type=int, default=50, help='iterations per epoch')
    parser.add_argument('--epochs', type=int, default=2, help='epochs per loop round (the last is timed)')
    parser.add_argument('--repeats', type=int, default=3, help='rounds, alternating loop and bare step')


class _Clips:
    """Random uint8 clips in memory: the loader's dataset protocol without decoding."""

    test_mode = False

    def __init__(self, num: int, shape: tuple[int, ...], num_classes: int) -> None:
        rng = np.random.default_rng(0)
        self.imgs = rng.integers(0, 256, size=(num, *shape), dtype=np.uint8)
        self.labels = rng.integers(0, num_classes, size=num)

    def __len__(self) -> int:
        return len(self.labels)

    def prepare(self, index: int, rng: np.random.Generator | None = None) -> dict:
        return {'imgs': self.imgs[index], 'label': int(self.labels[index])}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import jax

    from actionjax.benchmarks.model import _sample_shape
    from actionjax.data import build_dataloader
    from actionjax.engine import build
    from actionjax.engine.compile_cache import enable_compilation_cache
    from actionjax.engine.logger import RunLogger, setup_logger
    from actionjax.engine.runner import LoopConfig, run_training
    from actionjax.engine.sharding import batch_sharded, make_mesh, replicated, to_device
    from actionjax.engine.state import TrainState
    from actionjax.engine.steps import make_train_step
    from actionjax.engine.trace_cache import trace_key
    from actionjax.models import build_model
    from actionjax.runtime_config import load_config

    enable_compilation_cache()  # the loop runs its train step as actionjax.train does: from the caches
    cfg = load_config(args.config)
    shape = _sample_shape(cfg, args.input_shape)
    data = _Clips(args.batch * args.iters, shape, cfg['model']['cls_head']['num_classes'])
    model = build_model(cfg)
    sample = {'imgs': data.imgs[:1], 'label': data.labels[:1].astype(np.int32)}
    variables = build.init_variables(model, sample, seed=0)
    tx = build.build_tx(cfg, model, variables, sample, iters_per_epoch=args.iters)
    mesh = make_mesh()
    shardings = (replicated(mesh), batch_sharded(mesh))
    step = make_train_step(model, tx, *shardings)
    host_batch = {'imgs': data.imgs[:args.batch], 'label': data.labels[:args.batch].astype(np.int32),
                  'valid': np.ones(args.batch, bool), 'index': np.arange(args.batch, dtype=np.int32)}
    logger = setup_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)  # the loop's log lines would interleave with the table

    loop_s, bare_s = [], []
    try:
        for round_index in range(args.repeats):
            loader = build_dataloader(data, batch_size=args.batch, num_workers=0, shuffle=True,
                                      seed=round_index, drop_last=True)
            work_dir = tempfile.mkdtemp(prefix='actionjax_loop_')
            loop = LoopConfig(work_dir=work_dir, by_epoch=True, max_epochs=args.epochs, max_iters=None,
                              val_interval=0, val_begin=1, log_interval=args.iters, save_best=None, rule=None,
                              checkpoint=dict(interval=args.epochs + 1, save_last=False),
                              trace_key=trace_key(cfg))
            run_log = RunLogger(work_dir, 'loop', False, logger)
            state = TrainState.create(variables, tx, jax.random.PRNGKey(0))
            try:
                run_training(model, tx, state, loader, loop, shardings, run_log)
            finally:
                run_log.close()
                loader.close()
            with open(glob.glob(f'{work_dir}/*.log.json')[0]) as f:
                records = [r for r in map(json.loads, f) if r.get('mode') == 'train']
            loop_s.append(records[-1]['time'])  # the last epoch's mean step time

            state = jax.device_put(TrainState.create(variables, tx, jax.random.PRNGKey(0)), shardings[0])
            device_batch = to_device(host_batch, shardings[1])
            state, metrics = step(state, device_batch)
            jax.block_until_ready(metrics)
            start = time.perf_counter()
            for _ in range(args.iters):
                state, metrics = step(state, device_batch)
            jax.block_until_ready(metrics)
            bare_s.append((time.perf_counter() - start) / args.iters)
    finally:
        logger.setLevel(level)
    ratio = statistics.median(a / b for a, b in zip(loop_s, bare_s, strict=True))
    results = {'config': args.config, 'batch': [args.batch, *shape], 'loop_s': loop_s, 'bare_step_s': bare_s,
               'loop_over_bare': ratio}
    print(f'{args.config}: batch {tuple(results["batch"])}, {args.repeats} rounds of {args.epochs} epochs x '
          f'{args.iters} iterations')
    print(f'  loop step   {statistics.median(loop_s):.4f} s  {[round(s, 4) for s in loop_s]}')
    print(f'  bare step   {statistics.median(bare_s):.4f} s  {[round(s, 4) for s in bare_s]}')
    print(f'  loop / bare {ratio:.3f}')
    return results
