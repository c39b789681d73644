"""``OPTIMIZERS``: torch.optim's algorithms as optax transformations.

Each entry takes torch's argument names and defaults (``SGD(lr, momentum, dampening,
weight_decay, nesterov)``, ``Adam(lr, betas, eps, weight_decay, amsgrad)``, ...) and
returns an ``optax.GradientTransformation`` whose update is ``-lr * step`` exactly as
torch computes the step, so a config moved from MMAction2 trains with the same numbers:

* weight decay is *coupled* (``g + weight_decay * p`` before anything else) for every
  optimizer except ``AdamW``, which decays ``p * (1 - lr * weight_decay)`` as torch does;
* SGD's first momentum step copies the gradient (no dampening on step one);
* bias corrections use the step count, like torch, not optax's ``eps_root`` variants.

``lr`` (and ``momentum`` / ``betas[0]``) may be a number or a schedule ``step -> value``.
They are evaluated by ``optax.inject_hyperparams`` at the update count, so
``state.hyperparams['lr']`` always holds the learning rate of the last update; the
other hyperparameters stay Python floats, folded into the compiled update as torch keeps
them as doubles (``1 - 0.999`` in float32 would be off by 1e-5 relative).

A user optimizer is any function returning an optax transformation, registered with
``@OPTIMIZERS.register_module()``; see docs/customize.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from actionjax.registry import OPTIMIZERS

Scalar = float | jax.Array
ScalarOrSchedule = float | Callable[[jax.Array], Any]


def with_schedules(factory: Callable[..., optax.GradientTransformation], **hyperparams: Any
                   ) -> optax.GradientTransformation:
    """``factory(**hyperparams)`` with ``lr`` and every callable hyperparameter injected.

    ``lr`` always lives in the state (readable for logging, even when constant);
    callables are evaluated at the update count; all other values stay static.
    """
    dynamic = {'lr'} | {name for name, value in hyperparams.items() if callable(value)}
    static = tuple(name for name in hyperparams if name not in dynamic)
    return optax.inject_hyperparams(factory, static_args=static)(**hyperparams)


def _one_minus_pow(base: Scalar, count: jax.Array) -> jax.Array:
    """``1 - base ** count`` without float32 cancellation (``1 - 0.999`` loses 4 digits)."""
    if isinstance(base, int | float):
        if base == 0:  # e.g. Adam without momentum: 0 ** count == 0 for count >= 1
            return jnp.ones([], float)
        log_base = math.log(base)  # in float64, like torch's Python-double bias correction
    else:
        log_base = jnp.log(base)
    return -jnp.expm1(count.astype(float) * log_base)  # float: float64 under jax_enable_x64


def _prepare_grads(updates: optax.Updates, params: optax.Params | None, weight_decay: Scalar,
                   maximize: bool, name: str) -> optax.Updates:
    """Torch's first lines: negate for ``maximize``, add coupled weight decay."""
    if maximize:
        updates = jax.tree.map(jnp.negative, updates)
    if isinstance(weight_decay, int | float) and weight_decay == 0:
        return updates
    if params is None:
        raise ValueError(f'{name} with weight_decay needs params: call tx.update(grads, state, params)')
    return jax.tree.map(lambda g, p: g + weight_decay * p, updates, params)


def _decoupled_decay(params: optax.Params | None, lr: Scalar, weight_decay: Scalar) -> optax.Updates | None:
    """AdamW's ``p *= 1 - lr * wd`` written as the update ``-lr * wd * p`` (None if wd == 0)."""
    if isinstance(weight_decay, int | float) and weight_decay == 0:
        return None
    if params is None:
        raise ValueError('AdamW with weight_decay needs params: call tx.update(grads, state, params)')
    return jax.tree.map(lambda p: -lr * weight_decay * p, params)


def _check(name: str, ok: bool, what: str, value: Any) -> None:
    """torch's argument checks, naming the optimizer config key."""
    if not ok:
        raise ValueError(f'{name}: invalid {what} {value!r} (config key optimizer.{what})')


def _nonneg(value: Any) -> bool:
    return callable(value) or value >= 0


def _is_on(value: Any) -> bool:
    """A hyperparameter that is a schedule, or a nonzero number."""
    return callable(value) or value != 0


# --------------------------------------------------------------------------- SGD


class SGDState(NamedTuple):
    count: jax.Array
    momentum_buffer: optax.Updates | None


def _sgd(lr: Scalar, momentum: Scalar, dampening: float, weight_decay: float, nesterov: bool,
         maximize: bool, use_momentum: bool) -> optax.GradientTransformationExtraArgs:

    def init_fn(params: optax.Params) -> SGDState:
        buf = optax.tree.zeros_like(params) if use_momentum else None
        return SGDState(count=jnp.zeros([], jnp.int32), momentum_buffer=buf)

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        grads = _prepare_grads(updates, params, weight_decay, maximize, 'SGD')
        buf = state.momentum_buffer
        if use_momentum:
            if dampening == 0:  # buf starts at 0, so step one is buf = g as in torch
                buf = jax.tree.map(lambda b, g: momentum * b + g, buf, grads)
            else:  # torch copies the first gradient undamped
                first = state.count == 0
                buf = jax.tree.map(lambda b, g: jnp.where(first, g, momentum * b + (1 - dampening) * g),
                                   buf, grads)
            if nesterov:
                grads = jax.tree.map(lambda g, b: g + momentum * b, grads, buf)
            else:
                grads = buf
        new_updates = jax.tree.map(lambda g: -lr * g, grads)
        return new_updates, SGDState(count=optax.safe_increment(state.count), momentum_buffer=buf)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


@OPTIMIZERS.register_module()
def SGD(lr: ScalarOrSchedule = 1e-3, momentum: ScalarOrSchedule = 0.0, dampening: float = 0.0,
        weight_decay: float = 0.0, nesterov: bool = False, maximize: bool = False
        ) -> optax.GradientTransformation:
    """torch.optim.SGD: coupled weight decay, then (Nesterov) momentum, then ``-lr``."""
    _check('SGD', _nonneg(lr), 'lr', lr)
    _check('SGD', _nonneg(momentum), 'momentum', momentum)
    _check('SGD', weight_decay >= 0, 'weight_decay', weight_decay)
    if nesterov and (not _is_on(momentum) or dampening != 0):
        raise ValueError('SGD: nesterov=True needs momentum > 0 and dampening=0 '
                         '(config key optimizer.nesterov)')
    return with_schedules(_sgd, lr=lr, momentum=momentum, dampening=dampening,
                          weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                          use_momentum=_is_on(momentum))


@OPTIMIZERS.register_module()
def CopyOfSGD(lr: ScalarOrSchedule = 1e-3, momentum: ScalarOrSchedule = 0.0, dampening: float = 0.0,
              weight_decay: float = 0.0, nesterov: bool = False, maximize: bool = False
              ) -> optax.GradientTransformation:
    """MMAction2's example of a user optimizer: SGD under another name."""
    return SGD(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
               nesterov=nesterov, maximize=maximize)


# --------------------------------------------------------------------------- Adam, AdamW


class AdamState(NamedTuple):
    count: jax.Array
    exp_avg: optax.Updates
    exp_avg_sq: optax.Updates
    max_exp_avg_sq: optax.Updates | None


def _adam(lr: Scalar, b1: Scalar, b2: float, eps: float, weight_decay: float, amsgrad: bool,
          maximize: bool, decoupled: bool) -> optax.GradientTransformationExtraArgs:

    def init_fn(params: optax.Params) -> AdamState:
        zeros = optax.tree.zeros_like
        return AdamState(count=jnp.zeros([], jnp.int32), exp_avg=zeros(params), exp_avg_sq=zeros(params),
                         max_exp_avg_sq=zeros(params) if amsgrad else None)

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        name = 'AdamW' if decoupled else 'Adam'
        grads = _prepare_grads(updates, params, 0.0 if decoupled else weight_decay, maximize, name)
        count = optax.safe_increment(state.count)
        # torch: exp_avg.lerp_(grad, 1 - beta1); exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2)
        exp_avg = jax.tree.map(lambda m, g: m + (1 - b1) * (g - m), state.exp_avg, grads)
        exp_avg_sq = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, state.exp_avg_sq, grads)
        second = exp_avg_sq
        max_sq = state.max_exp_avg_sq
        if amsgrad:
            max_sq = jax.tree.map(jnp.maximum, max_sq, exp_avg_sq)
            second = max_sq
        step_size = lr / _one_minus_pow(b1, count)
        bc2_sqrt = jnp.sqrt(_one_minus_pow(b2, count))
        new_updates = jax.tree.map(lambda m, v: -step_size * m / (jnp.sqrt(v) / bc2_sqrt + eps),
                                   exp_avg, second)
        if decoupled:
            decay = _decoupled_decay(params, lr, weight_decay)
            if decay is not None:
                new_updates = jax.tree.map(jnp.add, decay, new_updates)
        return new_updates, AdamState(count, exp_avg, exp_avg_sq, max_sq)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _adam_family(name: str, lr: ScalarOrSchedule, betas: tuple, eps: float, weight_decay: float,
                 amsgrad: bool, maximize: bool, decoupled: bool) -> optax.GradientTransformation:
    b1, b2 = betas
    _check(name, _nonneg(lr), 'lr', lr)
    _check(name, eps >= 0, 'eps', eps)
    _check(name, weight_decay >= 0, 'weight_decay', weight_decay)
    _check(name, (callable(b1) or 0 <= b1 < 1) and 0 <= b2 < 1, 'betas', betas)
    return with_schedules(_adam, lr=lr, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay,
                          amsgrad=amsgrad, maximize=maximize, decoupled=decoupled)


@OPTIMIZERS.register_module()
def Adam(lr: ScalarOrSchedule = 1e-3, betas: tuple[ScalarOrSchedule, float] = (0.9, 0.999),
         eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, maximize: bool = False
         ) -> optax.GradientTransformation:
    """torch.optim.Adam (weight decay coupled into the gradient)."""
    return _adam_family('Adam', lr, betas, eps, weight_decay, amsgrad, maximize, decoupled=False)


@OPTIMIZERS.register_module()
def AdamW(lr: ScalarOrSchedule = 1e-3, betas: tuple[ScalarOrSchedule, float] = (0.9, 0.999),
          eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, maximize: bool = False
          ) -> optax.GradientTransformation:
    """torch.optim.AdamW: ``p *= 1 - lr * weight_decay``, then the Adam step."""
    return _adam_family('AdamW', lr, betas, eps, weight_decay, amsgrad, maximize, decoupled=True)


# --------------------------------------------------------------------------- RMSprop


class RMSpropState(NamedTuple):
    square_avg: optax.Updates
    grad_avg: optax.Updates | None
    momentum_buffer: optax.Updates | None


def _rmsprop(lr: Scalar, alpha: float, eps: float, weight_decay: float, momentum: Scalar, centered: bool,
             maximize: bool, use_momentum: bool) -> optax.GradientTransformationExtraArgs:

    def init_fn(params: optax.Params) -> RMSpropState:
        zeros = optax.tree.zeros_like
        return RMSpropState(zeros(params), zeros(params) if centered else None,
                            zeros(params) if use_momentum else None)

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        grads = _prepare_grads(updates, params, weight_decay, maximize, 'RMSprop')
        square_avg = jax.tree.map(lambda s, g: alpha * s + (1 - alpha) * g * g, state.square_avg, grads)
        grad_avg = state.grad_avg
        if centered:
            grad_avg = jax.tree.map(lambda a, g: a + (1 - alpha) * (g - a), grad_avg, grads)
            avg = jax.tree.map(lambda s, a: jnp.sqrt(s - a * a) + eps, square_avg, grad_avg)
        else:
            avg = jax.tree.map(lambda s: jnp.sqrt(s) + eps, square_avg)
        buf = state.momentum_buffer
        if use_momentum:
            buf = jax.tree.map(lambda b, g, a: momentum * b + g / a, buf, grads, avg)
            new_updates = jax.tree.map(lambda b: -lr * b, buf)
        else:
            new_updates = jax.tree.map(lambda g, a: -lr * (g / a), grads, avg)
        return new_updates, RMSpropState(square_avg, grad_avg, buf)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


@OPTIMIZERS.register_module()
def RMSprop(lr: ScalarOrSchedule = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
            momentum: ScalarOrSchedule = 0.0, centered: bool = False, maximize: bool = False
            ) -> optax.GradientTransformation:
    """torch.optim.RMSprop: eps outside the square root, square average starting at 0."""
    for what, value in (('lr', lr), ('alpha', alpha), ('eps', eps), ('momentum', momentum),
                        ('weight_decay', weight_decay)):
        _check('RMSprop', _nonneg(value), what, value)
    return with_schedules(_rmsprop, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                          momentum=momentum, centered=centered, maximize=maximize,
                          use_momentum=_is_on(momentum))


# --------------------------------------------------------------------------- Adagrad, Adadelta, Adamax


class AdagradState(NamedTuple):
    count: jax.Array
    state_sum: optax.Updates


def _adagrad(lr: Scalar, lr_decay: float, weight_decay: float, initial_accumulator_value: float,
             eps: float, maximize: bool) -> optax.GradientTransformationExtraArgs:

    def init_fn(params: optax.Params) -> AdagradState:
        state_sum = jax.tree.map(lambda p: jnp.full_like(p, initial_accumulator_value), params)
        return AdagradState(jnp.zeros([], jnp.int32), state_sum)

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        grads = _prepare_grads(updates, params, weight_decay, maximize, 'Adagrad')
        clr = lr / (1 + state.count.astype(float) * lr_decay)  # torch: (step - 1) after increment
        state_sum = jax.tree.map(lambda s, g: s + g * g, state.state_sum, grads)
        new_updates = jax.tree.map(lambda g, s: -clr * (g / (jnp.sqrt(s) + eps)), grads, state_sum)
        return new_updates, AdagradState(optax.safe_increment(state.count), state_sum)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


@OPTIMIZERS.register_module()
def Adagrad(lr: ScalarOrSchedule = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
            initial_accumulator_value: float = 0.0, eps: float = 1e-10, maximize: bool = False
            ) -> optax.GradientTransformation:
    """torch.optim.Adagrad (with ``lr_decay``: ``lr / (1 + (step - 1) * lr_decay)``)."""
    for what, value in (('lr', lr), ('lr_decay', lr_decay), ('weight_decay', weight_decay),
                        ('initial_accumulator_value', initial_accumulator_value), ('eps', eps)):
        _check('Adagrad', _nonneg(value), what, value)
    return with_schedules(_adagrad, lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                          initial_accumulator_value=initial_accumulator_value, eps=eps, maximize=maximize)


class AdadeltaState(NamedTuple):
    square_avg: optax.Updates
    acc_delta: optax.Updates


def _adadelta(lr: Scalar, rho: float, eps: float, weight_decay: float, maximize: bool
              ) -> optax.GradientTransformationExtraArgs:

    def init_fn(params: optax.Params) -> AdadeltaState:
        return AdadeltaState(optax.tree.zeros_like(params), optax.tree.zeros_like(params))

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        grads = _prepare_grads(updates, params, weight_decay, maximize, 'Adadelta')
        square_avg = jax.tree.map(lambda s, g: rho * s + (1 - rho) * g * g, state.square_avg, grads)
        delta = jax.tree.map(lambda a, s, g: jnp.sqrt(a + eps) / jnp.sqrt(s + eps) * g,
                             state.acc_delta, square_avg, grads)
        acc_delta = jax.tree.map(lambda a, d: rho * a + (1 - rho) * d * d, state.acc_delta, delta)
        new_updates = jax.tree.map(lambda d: -lr * d, delta)
        return new_updates, AdadeltaState(square_avg, acc_delta)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


@OPTIMIZERS.register_module()
def Adadelta(lr: ScalarOrSchedule = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0.0,
             maximize: bool = False) -> optax.GradientTransformation:
    """torch.optim.Adadelta."""
    for what, value in (('lr', lr), ('eps', eps), ('weight_decay', weight_decay)):
        _check('Adadelta', _nonneg(value), what, value)
    _check('Adadelta', 0 <= rho <= 1, 'rho', rho)
    return with_schedules(_adadelta, lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)


class AdamaxState(NamedTuple):
    count: jax.Array
    exp_avg: optax.Updates
    exp_inf: optax.Updates


def _adamax(lr: Scalar, b1: Scalar, b2: float, eps: float, weight_decay: float, maximize: bool
            ) -> optax.GradientTransformationExtraArgs:

    def init_fn(params: optax.Params) -> AdamaxState:
        zeros = optax.tree.zeros_like
        return AdamaxState(jnp.zeros([], jnp.int32), zeros(params), zeros(params))

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        grads = _prepare_grads(updates, params, weight_decay, maximize, 'Adamax')
        count = optax.safe_increment(state.count)
        exp_avg = jax.tree.map(lambda m, g: m + (1 - b1) * (g - m), state.exp_avg, grads)
        exp_inf = jax.tree.map(lambda u, g: jnp.maximum(b2 * u, jnp.abs(g) + eps), state.exp_inf, grads)
        clr = lr / _one_minus_pow(b1, count)
        new_updates = jax.tree.map(lambda m, u: -clr * (m / u), exp_avg, exp_inf)
        return new_updates, AdamaxState(count, exp_avg, exp_inf)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


@OPTIMIZERS.register_module()
def Adamax(lr: ScalarOrSchedule = 2e-3, betas: tuple[ScalarOrSchedule, float] = (0.9, 0.999),
           eps: float = 1e-8, weight_decay: float = 0.0, maximize: bool = False
           ) -> optax.GradientTransformation:
    """torch.optim.Adamax (infinity-norm Adam)."""
    b1, b2 = betas
    for what, value in (('lr', lr), ('eps', eps), ('weight_decay', weight_decay)):
        _check('Adamax', _nonneg(value), what, value)
    _check('Adamax', (callable(b1) or 0 <= b1 < 1) and 0 <= b2 < 1, 'betas', betas)
    return with_schedules(_adamax, lr=lr, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay, maximize=maximize)
