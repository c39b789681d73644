"""``--what train``: steps per second of the jitted train step, and what the optimizer adds.

Times ``train_step(state, batch) -> (state, metrics)`` (forward, loss, backward,
optimizer update; donated state; a batch already on the device) for the model of
``--config`` at its per-device batch (``data.videos_per_gpu`` x devices), with:

* ``full``: the config's optimizer built by ``build_optimizer`` (param-wise groups,
  ``optimizer_config.grad_clip``) with its ``lr_config`` schedule inside: what
  ``actionjax.train`` runs;
* ``plain_sgd``: the same step with a bare ``optax.sgd(lr, momentum=0.9)``.

The candidates run interleaved, ``--steps`` steps each per round in a shuffled order,
and the report gives the median seconds per step over ``--repeats`` rounds, steps/s and
the ratio of ``full`` to ``plain_sgd``. The input shape comes from one sample of the
config's training set (``--input-shape V H W`` skips the data, e.g. for Kinetics recipes).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from typing import Any

import jax
import numpy as np
import optax


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group('train')
    group.add_argument('--config', default='configs/tsn_demo.py', help='model, optimizer and batch size')
    group.add_argument('--input-shape', type=int, nargs=3, metavar=('V', 'H', 'W'),
                       help='views and frame size of one sample (default: read one from the train set)')
    group.add_argument('--steps', type=int, default=5, help='steps per candidate per round')
    group.add_argument('--repeats', type=int, default=7, help='timed rounds')
    group.add_argument('--warmup', type=int, default=1, help='untimed rounds after compiling')


def _sample_shape(cfg: Any, input_shape: list[int] | None) -> tuple[int, ...]:
    if input_shape:
        views, height, width = input_shape
        return (views, height, width, 3)
    from actionjax.data import build_dataset
    from actionjax.engine.build import sample_batch

    return sample_batch(build_dataset(cfg, 'data.train'))['imgs'].shape[1:]


def run(args: argparse.Namespace) -> dict:
    from actionjax.config import Config
    from actionjax.engine import build
    from actionjax.engine.sharding import batch_sharded, make_mesh, replicated, to_device
    from actionjax.engine.state import TrainState
    from actionjax.engine.steps import make_train_step
    from actionjax.models import build_model
    from actionjax.runtime_config import to_runtime_config

    cfg = to_runtime_config(Config.fromfile(args.config))
    mesh = make_mesh()
    batch_size = cfg.data.train.batch_size * jax.device_count()
    shape = _sample_shape(cfg, args.input_shape)
    rng = np.random.default_rng(0)
    batch = {'imgs': rng.integers(0, 256, size=(batch_size, *shape), dtype=np.uint8),
             'label': rng.integers(0, cfg.model.cls_head.num_classes, size=batch_size).astype(np.int32)}
    device_batch = to_device(batch, batch_sharded(mesh))

    model = build_model(cfg)
    sample = {k: v[:1] for k, v in batch.items()}
    variables = build.init_variables(model, sample, seed=0)
    optimizers = {
        'full': build.build_tx(cfg, model, variables, sample, iters_per_epoch=100),
        'plain_sgd': optax.sgd(float(cfg.optimizer['lr']), momentum=0.9),
    }
    candidates = {}
    for name, tx in optimizers.items():
        state = jax.device_put(TrainState.create(variables, tx, jax.random.PRNGKey(0)), replicated(mesh))
        step = make_train_step(model, tx, replicated(mesh), batch_sharded(mesh))
        state, metrics = step(state, device_batch)  # compile
        jax.block_until_ready(metrics)
        candidates[name] = [step, state]

    def run_steps(name: str) -> float:
        step, state = candidates[name]
        start = time.perf_counter()
        for _ in range(args.steps):
            state, metrics = step(state, device_batch)
        jax.block_until_ready(metrics)
        candidates[name][1] = state
        return (time.perf_counter() - start) / args.steps

    times: dict[str, list[float]] = {name: [] for name in candidates}
    order = list(candidates)
    for round_index in range(args.warmup + args.repeats):
        random.Random(round_index).shuffle(order)
        for name in order:
            seconds = run_steps(name)
            if round_index >= args.warmup:
                times[name].append(seconds)

    medians = {name: statistics.median(t) for name, t in times.items()}
    results = {
        'config': args.config, 'devices': jax.device_count(), 'device_kind': jax.devices()[0].device_kind,
        'batch': [batch_size, *shape], 'steps_per_round': args.steps, 'repeats': args.repeats,
        'seconds_per_step': medians,
        'steps_per_s': {name: 1.0 / m for name, m in medians.items()},
        'full_over_plain_sgd': medians['full'] / medians['plain_sgd'],
    }
    print(f'train step, {args.config}, batch {tuple(results["batch"])} on {results["devices"]} '
          f'{results["device_kind"]} device(s); median of {args.repeats} rounds x {args.steps} steps')
    print(f'{"candidate":<12} {"s/step":>10} {"steps/s":>10}')
    for name, m in medians.items():
        print(f'{name:<12} {m:>10.4f} {1.0 / m:>10.2f}')
    print(f'full / plain_sgd: {results["full_over_plain_sgd"]:.3f}')
    return results
