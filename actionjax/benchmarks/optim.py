"""``--what optim``: the cost of actionjax's optimizer over a plain optax chain.

Times one jitted update ``(params, state, grads) -> (params, state)`` (donated buffers,
the optimizer update plus ``optax.apply_updates``) on a TSM-R50 sized param tree
(24M parameters by default, built abstractly from the model config, filled with
random values):

* ``actionjax``: ``build_optimizer`` with ``TSMOptimizerConstructor`` (fc_lr5: 4 param
  groups under ``optax.partition``), grad clipping (max_norm 40) and an lr schedule
  (step policy with linear warmup), i.e. what a TSM recipe trains with;
* ``optax_chain``: the same work written by hand as one optax chain over the whole tree,
  ``clip_by_global_norm(40) -> add_decayed_weights(1e-4) -> sgd(schedule, momentum=0.9)``;
* ``optax_sgd``: a bare ``optax.sgd(0.01, momentum=0.9)`` (no clipping, no decay).

The candidates run interleaved, one call each per round in a shuffled order (a fixed
position would bias them: the first of a round runs on a colder cache), and the report
gives the median milliseconds per update and the ratios to ``actionjax``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

TSM_R50 = dict(
    type='Recognizer2D',
    backbone=dict(type='ResNetTSM', pretrained=None, depth=50, norm_eval=False, shift_div=8),
    cls_head=dict(type='TSMHead', num_classes=400, in_channels=2048, spatial_type='avg',
                  consensus=dict(type='AvgConsensus', dim=1), dropout_ratio=0.5, init_std=0.001,
                  is_shift=True))
OPTIMIZER = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4,
                 constructor='TSMOptimizerConstructor', paramwise_cfg=dict(fc_lr5=True))
LR_CONFIG = dict(policy='step', step=[20, 40], warmup='linear', warmup_iters=500, warmup_ratio=0.1)
MAX_NORM = 40.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group('optim')
    group.add_argument('--config', help='take model and optimizer from this config (default: TSM-R50 recipe)')
    group.add_argument('--repeats', type=int, default=50, help='timed rounds (one call per candidate each)')
    group.add_argument('--warmup', type=int, default=3, help='untimed rounds after compiling')


def _setup(config: str | None) -> tuple[Any, dict, dict, Any]:
    from actionjax.models import build_model
    from actionjax.runtime_config import sample_shape

    if config:  # read through the runtime config, as training reads it (0.x or 1.x keys)
        from actionjax.runtime_config import load_config

        cfg = load_config(config)
        optimizer_cfg = dict(cfg['optimizer'])
        lr_config = cfg['lr_schedule'] or dict(policy='fixed')
    else:
        cfg = dict(model=TSM_R50, train_pipeline=[dict(type='SampleFrames', clip_len=1, num_clips=8)])
        optimizer_cfg, lr_config = OPTIMIZER, LR_CONFIG
    model = build_model(cfg)
    imgs = jax.ShapeDtypeStruct(sample_shape(cfg, size=64), jnp.uint8)
    shapes = jax.eval_shape(lambda x: model.init({'params': jax.random.key(0), 'dropout': jax.random.key(1)},
                                                 x, train=False), imgs)['params']
    return model, shapes, dict(optimizer_cfg, lr_config=lr_config), imgs


def _random_tree(shapes: Any, seed: int, scale: float) -> Any:
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda s: jnp.asarray((rng.standard_normal(s.shape) * scale).astype(s.dtype)), shapes)


def _jitted_step(tx: optax.GradientTransformation):
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state
    return jax.jit(step, donate_argnums=(0, 1))


def run(args: argparse.Namespace) -> dict:
    from actionjax.optim import build_optimizer
    from actionjax.optim.schedule_builder import build_lr_schedule

    model, shapes, cfg, imgs = _setup(getattr(args, 'config', None))
    lr_config = cfg.pop('lr_config')
    base_lr = cfg['lr']
    schedule = build_lr_schedule(lr_config, base_lr, iters_per_epoch=100, max_epochs=50)
    txs = {
        'actionjax': build_optimizer(cfg, model, None, imgs, lr_schedule=schedule,
                                     grad_clip=dict(max_norm=MAX_NORM, norm_type=2)),
        'optax_chain': optax.chain(optax.clip_by_global_norm(MAX_NORM), optax.add_decayed_weights(1e-4),
                                   optax.sgd(schedule, momentum=0.9)),
        'optax_sgd': optax.sgd(base_lr, momentum=0.9),
    }
    grads = _random_tree(shapes, 1, 1e-3)
    n_params = sum(int(np.prod(s.shape)) for s in jax.tree.leaves(shapes))
    states, steps, times = {}, {}, {name: [] for name in txs}
    for name, tx in txs.items():
        params = _random_tree(shapes, 0, 0.05)
        steps[name] = _jitted_step(tx)
        states[name] = steps[name](params, tx.init(params), grads)  # compile
        jax.block_until_ready(states[name])
    order = list(txs)
    shuffle = random.Random(0).shuffle  # a fixed position in each round would bias the comparison
    for round_ in range(args.warmup + args.repeats):
        shuffle(order)
        for name in order:
            params, state = states[name]
            start = time.perf_counter()
            states[name] = out = steps[name](params, state, grads)
            jax.block_until_ready(out)
            if round_ >= args.warmup:
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    results = {
        'device': str(jax.devices()[0]),
        'params': n_params,
        'repeats': args.repeats,
        'median_ms': medians,
        'ratio_actionjax_over_optax_chain': medians['actionjax'] / medians['optax_chain'],
        'ratio_actionjax_over_optax_sgd': medians['actionjax'] / medians['optax_sgd'],
    }
    print(f'optimizer update, {n_params / 1e6:.1f}M params, {results["device"]}, '
          f'median of {args.repeats} interleaved rounds')
    for name, ms in medians.items():
        print(f'  {name:<12} {ms:9.3f} ms   actionjax / {name}: {medians["actionjax"] / ms:.3f}')
    return results
