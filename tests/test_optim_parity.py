"""Numerical parity with torch.optim: 5 steps under param-wise rules, grad clipping, schedules.

Both sides start from the same float32 parameters of the tiny model
(tests/fixtures/optim/tiny_net.py) and receive the same gradient sequence. Torch gets
param groups built from the same rules (one group per (lr_mult, decay_mult), frozen
parameters with ``requires_grad=False``), ``clip_grad_norm_`` over the parameters that
require grad, and per-step ``group['lr'] = lr(step) * lr_mult`` (and momentum) as
mmcv's updater hooks set them. actionjax runs ``build_optimizer`` with the same config,
``lr_schedule``, ``momentum_schedule`` and ``optimizer_config``, jitted.
All in float32; parameters must agree within 1e-6 relative.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

from actionjax.optim import build_optimizer, current_lrs, describe_params
from actionjax.optim.constructors import build_constructor

FIXTURES = pathlib.Path(__file__).parent / 'fixtures' / 'optim'
_spec = importlib.util.spec_from_file_location('optim_tiny_net', FIXTURES / 'tiny_net.py')
tiny_net = sys.modules.setdefault('optim_tiny_net', importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(tiny_net)

STEPS = 5
RTOL = 1e-6
GRAD_SCALES = (0.3, 4.0, 0.05, 25.0, 1.0)  # clipping is active on some steps, not on others
MAX_NORM = 2.0
PARAMWISE = dict(bias_lr_mult=2.0, bias_decay_mult=0.0, norm_decay_mult=0.0, dwconv_decay_mult=0.5,
                 custom_keys={'cls_head': dict(lr_mult=5.0), 'gn': dict(lr_mult=0.0)})


def lr_at(base):
    """A changing lr, the same function for jnp steps and Python ints."""
    return lambda step: base * (0.7 ** step) * (1 + 0.5 * (step % 2))


def momentum_at(step):
    return 0.9 - 0.04 * step


CASES = {
    'SGD': (dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-3), False),
    'SGD_nesterov': (dict(type='SGD', lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3), False),
    'SGD_dampening_momentum_schedule': (
        dict(type='SGD', lr=0.1, momentum=0.9, dampening=0.2, weight_decay=1e-3), True),
    'SGD_plain': (dict(type='SGD', lr=0.1, weight_decay=1e-3), False),
    'Adam': (dict(type='Adam', lr=1e-2, weight_decay=1e-3), False),
    'Adam_amsgrad_beta1_schedule': (dict(type='Adam', lr=1e-2, weight_decay=1e-3, amsgrad=True), True),
    'AdamW': (dict(type='AdamW', lr=1e-2, weight_decay=5e-2), False),
    'RMSprop': (dict(type='RMSprop', lr=1e-2, alpha=0.9, weight_decay=1e-3), False),
    'RMSprop_centered_momentum': (
        dict(type='RMSprop', lr=1e-2, momentum=0.5, centered=True, weight_decay=1e-3), True),
    'Adagrad': (dict(type='Adagrad', lr=1e-1, lr_decay=0.1, weight_decay=1e-3), False),
    'Adadelta': (dict(type='Adadelta', lr=1.0, weight_decay=1e-3), False),
    'Adamax': (dict(type='Adamax', lr=1e-2, weight_decay=1e-3), True),
}


@pytest.fixture(scope='module')
def model_and_imgs():
    return tiny_net.TinyNet(frozen=('backbone.stem.',)), jax.ShapeDtypeStruct((2, 3, 8, 8, 3), jnp.uint8)


def make_data(model, imgs, dtype):
    """Starting parameters and a gradient sequence, from the abstract shapes (nothing compiled)."""
    rng = np.random.default_rng(0)
    shapes = jax.eval_shape(lambda x: model.init({'params': jax.random.key(0)}, x), imgs)['params']
    params = jax.tree.map(lambda s: rng.normal(0, 0.5, s.shape).astype(dtype), shapes)
    grads = [jax.tree.map(lambda s, scale=scale: (rng.normal(0, 1, s.shape) * scale).astype(dtype), shapes)
             for scale in GRAD_SCALES]
    return params, grads


def named(tree) -> dict[str, np.ndarray]:
    from actionjax.models.common.param_names import named_params
    return {k: np.asarray(v) for k, v in named_params(tree).items()}


def run_torch(optimizer_cfg, assignments, params, grads, use_momentum_schedule):
    """torch.optim on the same parameters: groups by rule, clip_grad_norm_, mmcv-style lr updates."""
    cfg = dict(optimizer_cfg)
    opt_type = cfg.pop('type')
    base_lr = cfg.pop('lr')
    base_wd = cfg.pop('weight_decay')
    values = named(params)
    tensors = {}
    groups = {}
    for a in assignments:
        t = torch.tensor(values[a.info.name], requires_grad=not a.info.frozen)
        tensors[a.info.name] = t
        groups.setdefault((a.lr_mult, a.decay_mult), []).append(t)
    param_groups = [dict(params=ts, lr=base_lr * lr_mult, weight_decay=base_wd * decay_mult, lr_mult=lr_mult)
                    for (lr_mult, decay_mult), ts in groups.items()]
    opt = getattr(torch.optim, opt_type)(param_groups, lr=base_lr, **cfg)
    trainable = [t for t in tensors.values() if t.requires_grad]
    lr_fn = lr_at(base_lr)
    for step, grad_tree in enumerate(grads):
        g = named(grad_tree)
        for name, t in tensors.items():
            t.grad = torch.tensor(g[name]) if t.requires_grad else None
        torch.nn.utils.clip_grad_norm_(trainable, MAX_NORM, norm_type=2)
        for group in opt.param_groups:
            group['lr'] = lr_fn(step) * group['lr_mult']
            if use_momentum_schedule:
                if 'momentum' in group:
                    group['momentum'] = momentum_at(step)
                else:
                    group['betas'] = (momentum_at(step), group['betas'][1])
        opt.step()
    return {name: t.detach().numpy() for name, t in tensors.items()}


def run_jax(optimizer_cfg, model, imgs, params, grads, use_momentum_schedule):
    tx = build_optimizer(dict(optimizer_cfg, paramwise_cfg=PARAMWISE), model, {'params': params}, imgs,
                         lr_schedule=lr_at(optimizer_cfg['lr']),
                         momentum_schedule=momentum_at if use_momentum_schedule else None,
                         grad_clip=dict(max_norm=MAX_NORM, norm_type=2))
    params = jax.tree.map(jnp.asarray, params)
    state = tx.init(params)

    @jax.jit
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    lrs = []
    for grad_tree in grads:
        params, state = step(params, state, grad_tree)
        lrs.append({k: float(v) for k, v in current_lrs(state).items()})
    return named(params), lrs, state


def rel_errors(ours: dict, theirs: dict) -> tuple[float, float]:
    """(max elementwise |a - b| / |b|, max over tensors of max|a - b| / max|b|)."""
    elementwise = tensorwise = 0.0
    for name, ref in theirs.items():
        diff = np.abs(ours[name].astype(np.float64) - ref)
        elementwise = max(elementwise, float((diff / np.maximum(np.abs(ref), 1e-300)).max()))
        tensorwise = max(tensorwise, float(diff.max() / np.abs(ref).max()))
    return elementwise, tensorwise


# float64 on both sides: every element within 1e-6 relative (in practice ~1e-13). float32:
# each tensor within 1e-6 of its largest value; single elements can differ more where
# p - lr * update cancels to near zero, which float32 rounding order decides (torch's own
# foreach and single-tensor paths differ there too).
DTYPES = {'float64': np.float64, 'float32': np.float32}


FLOAT32_CASES = ('SGD', 'SGD_nesterov', 'Adam', 'AdamW', 'RMSprop')  # each case compiles: keep it short


@pytest.mark.parametrize('case, dtype', [(c, 'float64') for c in sorted(CASES)] +
                         [(c, 'float32') for c in FLOAT32_CASES])
def test_parity_with_torch(model_and_imgs, case, dtype):
    model, imgs = model_and_imgs
    optimizer_cfg, use_momentum_schedule = CASES[case]
    with jax.enable_x64(dtype == 'float64'):
        params, grads = make_data(model, imgs, DTYPES[dtype])
        assignments = build_constructor(dict(optimizer_cfg, paramwise_cfg=PARAMWISE)).assign(
            describe_params(model, None, imgs))
        theirs = run_torch(optimizer_cfg, assignments, params, grads, use_momentum_schedule)
        ours, lrs, _ = run_jax(optimizer_cfg, model, imgs, params, grads, use_momentum_schedule)
    elementwise, tensorwise = rel_errors(ours, theirs)
    print(f'{case} {dtype}: after {STEPS} steps max relative error elementwise {elementwise:.2e}, '
          f'tensorwise {tensorwise:.2e}')
    assert (elementwise if dtype == 'float64' else tensorwise) < RTOL
    # The rules did something in every direction the test relies on.
    start = named(params)
    assert all(ours[name].dtype == start[name].dtype for name in start)
    moved = {name for name in ours if not np.array_equal(ours[name], start[name])}
    frozen = {a.info.name for a in assignments if a.group == 'frozen'}
    assert frozen == {n for n in start if n.startswith('backbone.stem.') or '.gn.' in n}
    assert moved == set(start) - frozen
    # current_lrs: the lr of the last update of every group.
    last = lr_at(optimizer_cfg['lr'])(STEPS - 1)
    assert lrs[-1]['default'] == pytest.approx(last, rel=1e-6)
    assert lrs[-1]['lr5_decay1'] == pytest.approx(5 * last, rel=1e-6)
    assert lrs[-1]['lr2_decay0'] == pytest.approx(2 * last, rel=1e-6)
