"""``--what schedule``: what the lr schedule costs inside the jitted train step.

Times one jitted SGD update ``(params, momentum, grads, step) -> (params, momentum)`` as a
TSN recipe trains it (global grad-norm clip at 40, coupled weight decay 1e-4, momentum
0.9; buffers donated) on a TSN-R50 sized param tree (24M parameters, shapes from the
model config, random values), with the lr taken

* ``constant``: from a Python float (what a schedule could at best cost: nothing);
* ``lr_config``: from ``build_lr_schedule`` of an mmcv ``lr_config`` (default: the TSN
  recipe's step [40, 80] plus a 500-iteration linear warmup; ``--config`` takes the
  config's own ``lr_config`` / ``param_scheduler``);
* ``param_scheduler``: from an mmengine list, LinearLR warmup (converted to iterations)
  then CosineAnnealingLR to a nonzero ``eta_min``, i.e. two composed pieces.

The step counter changes every call, so nothing is constant-folded. Candidates run
interleaved, one call each per round in a shuffled order; the report gives median
milliseconds per update and each schedule's ratio to ``constant``, plus the latency of
calling a schedule on its own (a Python int in, one jitted dispatch).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

TSN_R50 = dict(
    type='Recognizer2D',
    backbone=dict(type='ResNet', pretrained=None, depth=50, norm_eval=False),
    cls_head=dict(type='TSNHead', num_classes=400, in_channels=2048, spatial_type='avg',
                  consensus=dict(type='AvgConsensus', dim=1), dropout_ratio=0.4, init_std=0.01))
LR_CONFIG = dict(policy='step', step=[40, 80], warmup='linear', warmup_iters=500, warmup_ratio=0.1)
PARAM_SCHEDULER = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=5, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=5, end=100)]
BASE_LR, MOMENTUM, WEIGHT_DECAY, MAX_NORM, EPOCHS = 0.01, 0.9, 1e-4, 40.0, 100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group('schedule')
    group.add_argument('--config', help="use this config's optimizer.lr and lr_config / param_scheduler")
    group.add_argument('--iters-per-epoch', type=int, default=940,
                       help='train loader length (default 940: Kinetics-400 at 8 x 32 videos)')
    group.add_argument('--params', choices=('tsn_r50', 'tiny'), default='tsn_r50',
                       help='param tree to update: TSN-R50 (24M) or a tiny one (for smoke tests)')
    group.add_argument('--repeats', type=int, default=30, help='timed rounds (one call per candidate each)')
    group.add_argument('--warmup', type=int, default=3, help='untimed rounds after compiling')


def _param_shapes(which: str) -> Any:
    if which == 'tiny':
        return {'conv': jax.ShapeDtypeStruct((3, 3, 16, 32), jnp.float32),
                'fc': {'kernel': jax.ShapeDtypeStruct((32, 10), jnp.float32),
                       'bias': jax.ShapeDtypeStruct((10,), jnp.float32)}}
    from actionjax.models import build_model

    model = build_model(dict(model=TSN_R50))
    imgs = jax.ShapeDtypeStruct((1, 3, 64, 64, 3), jnp.uint8)
    rngs = {'params': jax.random.key(0), 'dropout': jax.random.key(1)}
    return jax.eval_shape(lambda x: model.init(rngs, x, train=False), imgs)['params']


def _random_tree(shapes: Any, seed: int, scale: float) -> Any:
    rng = np.random.default_rng(seed)  # numpy: jax.random would compile a sampler per leaf shape
    return jax.tree.map(lambda s: jnp.asarray((scale * rng.standard_normal(s.shape)).astype(s.dtype)), shapes)


def sgd_step(lr_fn: Callable[[jax.Array], jax.Array]) -> Callable[..., Any]:
    """The TSN recipe's update (torch SGD semantics) with the lr from ``lr_fn(step)``."""
    def step(params, momentum, grads, i):
        lr = lr_fn(i)
        norm = jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(grads)))
        clip = jnp.minimum(1.0, MAX_NORM / (norm + 1e-6))

        def update(p, m, g):
            m = MOMENTUM * m + (g * clip + WEIGHT_DECAY * p)
            return p - lr * m, m

        out = jax.tree.map(update, params, momentum, grads)
        is_pair = lambda x: isinstance(x, tuple)  # noqa: E731
        return (jax.tree.map(lambda pair: pair[0], out, is_leaf=is_pair),
                jax.tree.map(lambda pair: pair[1], out, is_leaf=is_pair))

    return jax.jit(step, donate_argnums=(0, 1))


def _schedules(config: str | None, iters_per_epoch: int) -> dict[str, Callable[[Any], Any]]:
    from actionjax.optim.schedule_builder import build_lr_schedule

    base_lr, lr_config, epochs = BASE_LR, LR_CONFIG, EPOCHS
    if config:
        from actionjax.config import Config

        cfg = Config.fromfile(config)
        base_lr = cfg['optimizer']['lr'] if 'optimizer' in cfg else cfg['optim_wrapper']['optimizer']['lr']
        lr_config = cfg.get('param_scheduler', cfg.get('lr_config'))
        epochs = cfg.get('total_epochs') or cfg.get('train_cfg', {}).get('max_epochs') or EPOCHS
    run = dict(iters_per_epoch=iters_per_epoch, max_epochs=epochs)
    return {
        'constant': lambda i: base_lr,
        'lr_config': build_lr_schedule(lr_config, base_lr, **run),
        'param_scheduler': build_lr_schedule(PARAM_SCHEDULER, base_lr, **run),
    }


def run(args: argparse.Namespace) -> dict:
    schedules = _schedules(getattr(args, 'config', None), args.iters_per_epoch)
    shapes = _param_shapes(args.params)
    n_params = sum(int(np.prod(s.shape)) for s in jax.tree.leaves(shapes))
    grads = _random_tree(shapes, 1, 1e-3)
    steps, states, times = {}, {}, {name: [] for name in schedules}
    for name, lr_fn in schedules.items():
        steps[name] = sgd_step(lr_fn)
        params = _random_tree(shapes, 0, 0.05)
        momentum = jax.tree.map(jnp.zeros_like, params)
        states[name] = steps[name](params, momentum, grads, jnp.int32(0))  # compiles
        jax.block_until_ready(states[name])

    order = list(schedules)
    shuffle = random.Random(0).shuffle  # a fixed position in each round would bias the comparison
    for round_ in range(args.warmup + args.repeats):
        shuffle(order)
        i = jnp.int32(1 + round_ * 37 % (args.iters_per_epoch * EPOCHS))
        for name in order:
            params, momentum = states[name]
            start = time.perf_counter()
            states[name] = out = steps[name](params, momentum, grads, i)
            jax.block_until_ready(out)
            if round_ >= args.warmup:
                times[name].append(time.perf_counter() - start)

    call_us = {}
    for name in ('lr_config', 'param_scheduler'):  # a schedule on its own: Python int in
        fn = schedules[name]
        jax.block_until_ready(fn(0))
        samples = []
        for i in range(200):
            start = time.perf_counter()
            jax.block_until_ready(fn(i))
            samples.append(time.perf_counter() - start)
        call_us[name] = statistics.median(samples) * 1e6

    medians = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    results = {
        'device': str(jax.devices()[0]),
        'params': n_params,
        'repeats': args.repeats,
        'median_ms': medians,
        'ratio_to_constant': {name: medians[name] / medians['constant'] for name in medians},
        'schedule_call_us': call_us,
    }
    print(f'SGD train-step update, {n_params / 1e6:.1f}M params, {results["device"]}, '
          f'median of {args.repeats} interleaved rounds')
    for name, ms in medians.items():
        print(f'  {name:<16} {ms:9.3f} ms   / constant: {results["ratio_to_constant"][name]:.3f}')
    for name, us in call_us.items():
        print(f'  {name} alone, called with a Python int: {us:.1f} us')
    return results
