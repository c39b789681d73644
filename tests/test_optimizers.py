"""OPTIMIZERS entries and grad clipping against torch, one tensor at a time, in float64.

The full pipeline (param groups, clipping, schedules, 5 steps, float32 and float64) is in
test_optim_parity.py; these tests pin down options it does not reach (maximize, Adagrad's
accumulator, amsgrad without decay, norm types) and the argument errors.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

from actionjax.optim import build_grad_clip, clip_grad_norm
from actionjax.optim.grad_clip import global_norm
from actionjax.registry import OPTIMIZERS

STEPS = 4


def torch_steps(opt_type: str, kwargs: dict, p0: np.ndarray, grads: list[np.ndarray]) -> np.ndarray:
    p = torch.tensor(p0, requires_grad=True)
    opt = getattr(torch.optim, opt_type)([p], **kwargs)
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
    return p.detach().numpy()


def jax_steps(opt_type: str, kwargs: dict, p0: np.ndarray, grads: list[np.ndarray]) -> tuple:
    tx = OPTIMIZERS.get(opt_type)(**kwargs)
    params = {'w': jnp.asarray(p0)}
    state = tx.init(params)
    for g in grads:  # eager: a few tiny ops, no compile to wait for
        updates, state = tx.update({'w': jnp.asarray(g)}, state, params)
        params = optax.apply_updates(params, updates)
    return np.asarray(params['w']), state


OPTIONS = [
    ('SGD', dict(lr=0.1)),
    ('SGD', dict(lr=0.1, momentum=0.8, dampening=0.5, weight_decay=0.01, maximize=True)),
    ('SGD', dict(lr=0.1, momentum=0.9, nesterov=True)),
    ('Adam', dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, amsgrad=True)),
    ('Adam', dict(lr=0.01, betas=(0.0, 0.9), maximize=True)),
    ('AdamW', dict(lr=0.01)),  # torch's default weight_decay=1e-2
    ('AdamW', dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ('RMSprop', dict(lr=0.01)),
    ('RMSprop', dict(lr=0.01, alpha=0.5, centered=True, momentum=0.3, weight_decay=0.1)),
    ('Adagrad', dict(lr=0.1, lr_decay=0.5, initial_accumulator_value=0.3, eps=1e-5)),
    ('Adadelta', dict(lr=0.5, rho=0.5, eps=1e-3, maximize=True)),
    ('Adamax', dict(lr=0.01, betas=(0.7, 0.9), weight_decay=0.1)),
]


@pytest.mark.parametrize('opt_type, kwargs', OPTIONS, ids=[f'{t}-{i}' for i, (t, _) in enumerate(OPTIONS)])
def test_matches_torch(opt_type, kwargs):
    rng = np.random.default_rng(1)
    p0 = rng.normal(size=(3, 4))
    grads = [rng.normal(size=(3, 4)) for _ in range(STEPS)]
    with jax.enable_x64(True):
        ours, state = jax_steps(opt_type, kwargs, p0, grads)
    theirs = torch_steps(opt_type, kwargs, p0, grads)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)
    assert float(state.hyperparams['lr']) == kwargs['lr']  # readable for logging, even when constant


def test_defaults_are_torch_defaults():
    import inspect

    for name in ('SGD', 'Adam', 'AdamW', 'RMSprop', 'Adagrad', 'Adadelta', 'Adamax'):
        ours = inspect.signature(OPTIMIZERS.get(name)).parameters
        theirs = inspect.signature(getattr(torch.optim, name)).parameters
        for arg, param in ours.items():
            assert theirs[arg].default == param.default, (name, arg)


def test_copy_of_sgd_is_sgd():
    rng = np.random.default_rng(2)
    p0, grads = rng.normal(size=5), [rng.normal(size=5) for _ in range(3)]
    kwargs = dict(lr=0.1, momentum=0.9, weight_decay=1e-3)
    a, _ = jax_steps('SGD', kwargs, p0, grads)
    b, _ = jax_steps('CopyOfSGD', kwargs, p0, grads)
    np.testing.assert_array_equal(a, b)


def test_lr_and_momentum_schedules_are_evaluated_per_update():
    def lr(step):
        return 0.1 / (1 + step)

    def momentum(step):
        return 0.5 + 0.1 * step

    rng = np.random.default_rng(3)
    p0, grads = rng.normal(size=4), [rng.normal(size=4) for _ in range(STEPS)]
    with jax.enable_x64(True):
        ours, state = jax_steps('SGD', dict(lr=lr, momentum=momentum), p0, grads)
    p = torch.tensor(p0, requires_grad=True)
    opt = torch.optim.SGD([p], lr=1.0, momentum=0.5)
    for step, g in enumerate(grads):
        opt.param_groups[0].update(lr=lr(step), momentum=momentum(step))
        p.grad = torch.tensor(g)
        opt.step()
    np.testing.assert_allclose(ours, p.detach().numpy(), rtol=1e-12)
    assert float(state.hyperparams['lr']) == pytest.approx(lr(STEPS - 1))
    assert float(state.hyperparams['momentum']) == pytest.approx(momentum(STEPS - 1))


def test_jit_and_static_hyperparameters():
    """Only lr (and schedules) live in the state; the update jit-compiles."""
    tx = OPTIMIZERS.get('Adam')(lr=1e-3, weight_decay=1e-4)
    params = {'w': jnp.ones(3)}
    state = tx.init(params)
    assert set(state.hyperparams) == {'lr'}
    updates, state = jax.jit(tx.update)({'w': jnp.ones(3)}, state, params)
    assert updates['w'].shape == (3,) and int(state.count) == 1


@pytest.mark.parametrize('opt_type, kwargs, message', [
    ('SGD', dict(lr=-1.0), 'invalid lr'),
    ('SGD', dict(lr=0.1, nesterov=True), 'nesterov'),
    ('SGD', dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), 'nesterov'),
    ('Adam', dict(betas=(1.0, 0.9)), 'betas'),
    ('AdamW', dict(eps=-1.0), 'eps'),
    ('RMSprop', dict(alpha=-0.1), 'alpha'),
    ('Adagrad', dict(lr_decay=-1.0), 'lr_decay'),
    ('Adadelta', dict(rho=1.5), 'rho'),
    ('Adamax', dict(weight_decay=-1.0), 'weight_decay'),
])
def test_invalid_arguments(opt_type, kwargs, message):
    with pytest.raises(ValueError, match=message):
        OPTIMIZERS.get(opt_type)(**kwargs)


def test_weight_decay_needs_params():
    tx = OPTIMIZERS.get('SGD')(lr=0.1, weight_decay=0.1)
    state = tx.init({'w': jnp.ones(2)})
    with pytest.raises(ValueError, match='needs params'):
        tx.update({'w': jnp.ones(2)}, state)


# ---------------------------------------------------------------------------- grad clipping


def torch_clip(grads: list[np.ndarray], max_norm: float, norm_type: float) -> tuple[list[np.ndarray], float]:
    tensors = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for t, g in zip(tensors, grads, strict=True):
        t.grad = torch.tensor(g)
    total = torch.nn.utils.clip_grad_norm_(tensors, max_norm, norm_type=norm_type)
    return [t.grad.numpy() for t in tensors], float(total)


@pytest.mark.parametrize('norm_type', [2.0, float('inf'), 1.0, 3.0])
@pytest.mark.parametrize('scale', [0.01, 10.0])
def test_clip_matches_torch(norm_type, scale):
    rng = np.random.default_rng(4)
    grads = [rng.normal(size=(4, 3)) * scale, rng.normal(size=(7,)) * scale]
    max_norm = 1.5
    theirs, total = torch_clip(grads, max_norm, norm_type)
    with jax.enable_x64(True):
        tree = {'a': jnp.asarray(grads[0]), 'b': jnp.asarray(grads[1])}
        tx = clip_grad_norm(max_norm, norm_type)
        ours, _ = tx.update(tree, tx.init(tree))
        norm = float(global_norm(tree, norm_type))
    assert norm == pytest.approx(total, rel=1e-12)
    np.testing.assert_allclose(np.asarray(ours['a']), theirs[0], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(ours['b']), theirs[1], rtol=1e-12)


def test_clip_includes_torch_eps_and_mask():
    """A norm of exactly max_norm still scales by max_norm / (max_norm + 1e-6); masked leaves don't count."""
    with jax.enable_x64(True):
        grads = {'a': jnp.array([3.0, 4.0]), 'frozen': jnp.array([100.0])}
        tx = clip_grad_norm(5.0, mask={'a': True, 'frozen': False})
        out, _ = tx.update(grads, tx.init(grads))
        expected = np.array([3.0, 4.0]) * 5.0 / (5.0 + 1e-6)
        np.testing.assert_allclose(np.asarray(out['a']), expected, rtol=1e-14)
        tx = clip_grad_norm(5.0, mask=lambda tree: jax.tree.map(lambda _: True, tree))
        out, _ = tx.update(grads, tx.init(grads))
        assert float(out['frozen'][0]) == pytest.approx(5.0 * 100.0 / (np.sqrt(10025.0) + 1e-6))


def test_build_grad_clip_from_config():
    assert build_grad_clip(None) is None
    assert build_grad_clip(dict(max_norm=40, norm_type=2)) is not None
    with pytest.raises(ValueError, match='max_norm'):
        build_grad_clip(dict(norm_type=2))
    with pytest.raises(ValueError, match='max_norm'):
        build_grad_clip(dict(max_norm=40, clip_value=3))
    with pytest.raises(ValueError, match='grad_clip.max_norm must be > 0'):
        build_grad_clip(dict(max_norm=0))
    with pytest.raises(TypeError, match='grad_clip must be a dict'):
        build_grad_clip(40)
