"""mmcv 1.x LR and momentum updaters as pure ``step -> value`` functions.

An MMAction2 0.x config says ``lr_config = dict(policy='step', step=[40, 80], warmup='linear',
warmup_iters=500, warmup_ratio=0.1)``; mmcv's ``LrUpdaterHook`` turns that into an lr that
changes at epoch boundaries (the policy) and at every iteration during warmup. Here the same
rule is a pure function of the global iteration written with ``jnp``, so it runs inside the
jitted train step::

    lr_fn = build_lr_schedule(lr_config, base_lr=0.01, iters_per_epoch=100, max_epochs=50)
    lr_fn(0), jax.jit(lr_fn)(jnp.int32(1234))

Two layers, as in mmcv:

* a *policy*, registered in ``LR_SCHEDULES`` under mmcv's name (``'Step'``,
  ``'CosineAnnealing'``, ...), maps progress to the regular lr:
  ``policy(progress, base_lr, max_progress, **cfg) -> lr``. ``progress`` is the epoch when
  ``by_epoch`` else the iteration, ``max_progress`` the run length in the same unit (None
  when the caller did not give it). Policies are plain jnp code, so a user's own policy is
  one registered function (see docs/customize.md).
* the updater (``build_lr_schedule``) picks the progress unit and applies warmup, which always
  moves per iteration: ``lr(i) = warmup(regular(progress(i)), i)`` while ``i < warmup_iters``,
  else ``regular(progress(i))``. This is exactly mmcv's ``regular_lr``/``warmup_lr`` dance.

Momentum (``momentum_config``) works the same way with ``MOMENTUM_SCHEDULES`` and mmcv's
momentum warmup (which divides by the ratio). MMAction2 1.x / mmengine ``param_scheduler``
lists live in ``param_schedulers.py``; ``schedule_builder.py`` picks between the two forms.

Numerics: values are float32, within 3e-7 relative of mmcv's float64 values (the golden
tests allow 1e-6); under ``jax_enable_x64`` (a float64 run, ``actionjax.precision``) they
are float64, within a few ulps of mmcv's. Constants
are computed on the host in float64, integer differences (``max - progress``) are formed
before converting to float, powers use float64 tables instead of ``exp(n * log(x))`` and
cosines use whichever of cos^2/sin^2 has the small angle, so nothing cancels.
"""

from __future__ import annotations

import difflib
import inspect
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from actionjax.precision import default_float
from actionjax.registry import LR_SCHEDULES, Registry

__all__ = [
    'LR_SCHEDULES', 'MOMENTUM_SCHEDULES', 'Schedule', 'ScheduleConfigError', 'anneal_cos', 'anneal_linear',
    'bad_arg', 'count_passed', 'int_power', 'iteration_only', 'mmcv_lr_schedule', 'mmcv_momentum_schedule',
    'require_max_progress',
]

MOMENTUM_SCHEDULES = Registry('MOMENTUM_SCHEDULES')

Schedule = Callable[[Any], jax.Array]

# Arguments of mmcv's LrUpdaterHook / MomentumUpdaterHook base classes; the rest go to the policy.
_LR_HOOK_ARGS = dict(by_epoch=True, warmup=None, warmup_iters=0, warmup_ratio=0.1, warmup_by_epoch=False)
_MOMENTUM_HOOK_ARGS = dict(by_epoch=True, warmup=None, warmup_iters=0, warmup_ratio=0.9)
_WARMUPS = ('constant', 'linear', 'exp')
_INT_POWER_DIGITS = 4  # int_power handles exponents below 64 ** 4 = 2 ** 24


class ScheduleConfigError(ValueError):
    """A bad ``lr_config`` / ``momentum_config`` / ``param_scheduler``; the message names the key."""


class _BadArg(ValueError):
    """Raised by a policy about one of its arguments; the builder adds the config key path."""

    def __init__(self, arg: str, message: str) -> None:
        super().__init__(message)
        self.arg = arg


class _NeedsRunLength(ValueError):
    """Raised by a policy that needs ``max_progress`` when the caller gave no run length."""


def bad_arg(arg: str, message: str) -> _BadArg:
    """The error a policy raises for a bad argument: ``raise bad_arg('step', 'must be > 0')``.

    The builder reports it as ``lr_config.step: must be > 0``.
    """
    return _BadArg(arg, message)


def require_max_progress(max_progress: int | None) -> int:
    """``max_progress``, or an error saying the policy needs the run length."""
    if max_progress is None:
        raise _NeedsRunLength()
    return max_progress


def iteration_only(policy: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a policy that changes every iteration (mmcv's Cyclic, OneCycle): by_epoch defaults to
    False and ``by_epoch=True`` is an error."""
    policy.iteration_only = True
    return policy


# --------------------------------------------------------------------------------------------
# Numerically careful building blocks, shared with param_schedulers.py. ``xp`` is the array
# namespace: jnp in schedules, numpy where param_schedulers.py evaluates values on the host.


def int_power(x: float, n: Any, xp: Any = jnp, max_n: int | None = None) -> jax.Array:
    """``x ** n`` for a host float ``x`` and integer ``n`` in [0, 2**24), to the default float's
    rounding (float32; float64 under ``jax_enable_x64``).

    ``jnp.power`` goes through ``exp(n * log(x))`` in float32, whose relative error grows
    with ``n``; here the float64 powers ``x ** (d * 64**j)`` are tabulated on the host and
    each base-64 digit of ``n`` picks one factor, so the error is a few ulps for any ``n``.
    ``max_n``, when ``n`` is known to stay below it, saves the tables of unused digits.
    """
    if xp is np:
        return np.power(np.float64(x), np.asarray(n, np.float64))
    n_digits = _INT_POWER_DIGITS if max_n is None else min(
        _INT_POWER_DIGITS, max(1, math.ceil(math.log(max_n + 1, 64))))
    n = jnp.clip(jnp.asarray(n, jnp.int32), 0, 64 ** n_digits - 1)
    digits = np.arange(64, dtype=np.float64)
    out = None
    with np.errstate(over='ignore', under='ignore'):
        for j in range(n_digits):
            table = jnp.asarray(np.power(np.float64(x), digits * 64 ** j), default_float())
            factor = table[(n >> (6 * j)) & 63]
            out = factor if out is None else out * factor
    return out


def count_passed(bounds: Sequence[int], x: Any, xp: Any = jnp) -> jax.Array:
    """How many of the (few, static) ``bounds`` are ``<= x``: ``searchsorted(..., side='right')``
    for sorted bounds, as one compare-and-sum (a search loop costs far more to compile)."""
    return xp.sum(xp.asarray(x)[..., None] >= xp.asarray(bounds), axis=-1)


def _cos_weights(num: Any, den: Any, xp: Any = jnp) -> tuple[jax.Array, jax.Array]:
    """``(c, 1 - c)`` with ``c = (1 + cos(pi * num / den)) / 2``, both to float32 rounding.

    ``c = cos^2(pi x / 2)`` and ``1 - c = sin^2(pi x / 2)``. For ``x > 1/2`` both are taken
    from the complementary angle ``pi (1 - x) / 2`` with ``1 - x = (den - num) / den`` formed
    before dividing, so the small one of the two never comes out of a cancellation.
    """
    x = xp.true_divide(num, den)
    y = xp.true_divide(den - num, den)
    near_start = x <= 0.5
    angle = xp.where(near_start, x, y) * (np.pi / 2)
    cos2, sin2 = xp.cos(angle) ** 2, xp.sin(angle) ** 2
    return xp.where(near_start, cos2, sin2), xp.where(near_start, sin2, cos2)


def anneal_cos(start: Any, end: Any, num: Any, den: Any, weight: float = 1.0, xp: Any = jnp) -> jax.Array:
    """mmcv's ``annealing_cos(start, end, num / den, weight)``: cosine from
    ``weight * start + (1 - weight) * end`` to ``end`` as ``num / den`` goes 0 -> 1.

    Written as a weighted sum of ``start`` and ``end`` (no ``start - end``) so that values
    close to either end keep their relative precision.
    """
    c, one_minus_c = _cos_weights(num, den, xp)
    if weight == 1:
        return start * c + end * one_minus_c
    return start * (weight * c) + end * ((1 - weight) + weight * one_minus_c)


def anneal_linear(start: Any, end: Any, num: Any, den: Any, xp: Any = jnp) -> jax.Array:
    """mmcv's ``annealing_linear(start, end, num / den)`` as ``start (1 - x) + end x``."""
    return start * xp.true_divide(den - num, den) + end * xp.true_divide(num, den)


def _anneal_fn(strategy: str, arg: str = 'anneal_strategy') -> Callable[..., jax.Array]:
    if strategy == 'cos':
        return anneal_cos
    if strategy == 'linear':
        return anneal_linear
    raise bad_arg(arg, f"must be 'cos' or 'linear', got {strategy!r}")


def _min_value(base: Any, min_value: float | None, min_ratio: float | None,
               names: tuple[str, str]) -> Any:
    """mmcv's target: ``base * min_ratio`` or the absolute ``min_value``; exactly one is set."""
    if (min_value is None) == (min_ratio is None):
        both = 'both are set' if min_value is not None else 'neither is set'
        raise bad_arg(names[0], f'give exactly one of {names[0]} and {names[1]} ({both})')
    return base * min_ratio if min_ratio is not None else min_value


def _check_steps(step: Any, arg: str = 'step') -> None:
    if isinstance(step, bool) or not isinstance(step, (numbers.Integral, list, tuple)):
        raise bad_arg(arg, f'must be a positive int or a list of them, got {step!r}')
    steps = [step] if isinstance(step, numbers.Integral) else list(step)
    if not steps or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0
                            for s in steps):
        raise bad_arg(arg, f'must be a positive int or a non-empty list of positive ints, got {step!r}')
    if any(b < a for a, b in zip(steps, steps[1:], strict=False)):
        raise bad_arg(arg, f'must be increasing, got {step!r}')


def _step_decay(progress: Any, base: Any, step: Any, gamma: float, min_value: float | None) -> jax.Array:
    """mmcv's step rule: ``base * gamma ** k`` after ``k`` milestones (or every ``step``), floored."""
    if isinstance(step, numbers.Integral):
        factor = int_power(gamma, progress // int(step))
    else:  # k = number of milestones <= progress; the factors are exact float64 powers
        powers = jnp.asarray([gamma ** j for j in range(len(step) + 1)], default_float())
        factor = powers[count_passed(step, progress)]
    value = base * factor
    return value if min_value is None else jnp.maximum(value, min_value)


def _check_float_in(value: Any, arg: str, low: float, high: float) -> None:
    # mmcv insists on a float here (pct_start=1 is an error there too)
    if not isinstance(value, float) or not low <= value <= high:
        raise bad_arg(arg, f'must be a float in [{low:g}, {high:g}], got {value!r}')


def _per_group(value: Any, base: Any, arg: str) -> Any:
    """A number or a per-param-group list (mmcv's ``format_param``) as a float64 host value."""
    if isinstance(value, Mapping):
        raise bad_arg(arg, 'a dict per optimizer is not supported; give a number or one per param group')
    if isinstance(value, (list, tuple)):
        groups = np.shape(base)
        if groups != (len(value),):
            raise bad_arg(arg, f'has {len(value)} values but there are {groups[0] if groups else 1} '
                               'param groups (base_lr)')
        return np.asarray(value, np.float64)
    if not isinstance(value, numbers.Number):
        raise bad_arg(arg, f'must be a number or a list of numbers, got {value!r}')
    return float(value)


def _phases(curr: Any, phases: Sequence[tuple[float, Any, Any]], anneal: Callable[..., jax.Array],
            xp: Any = jnp) -> jax.Array:
    """Piecewise annealing over ``[(end_iter, start_value, end_value), ...]`` as mmcv's OneCycle.

    Phase ``j`` runs from the previous phase's ``end_iter`` (0 for the first) to its own and
    holds for ``curr <= end_iter``; past the last one the last phase is extrapolated.
    """
    spans, start = [], 0.0
    for end, start_value, end_value in phases:
        spans.append((end, anneal(start_value, end_value, curr - start, end - start, xp=xp)))
        start = end
    out = spans[-1][1]
    for end, value in reversed(spans[:-1]):  # the earliest phase that holds wins
        out = xp.where(curr <= end, value, out)
    return out


# --------------------------------------------------------------------------------------------
# LR policies: mmcv's XxxLrUpdaterHook.get_lr as pure functions.
# policy(progress, base_lr, max_progress, **cfg); base_lr is a float or a float64 array (one per
# param group) and stays on the host until it meets a jnp value.


@LR_SCHEDULES.register_module('Fixed')
def fixed_lr(progress, base_lr, max_progress):
    """The lr never changes (mmcv's FixedLrUpdaterHook; warmup still applies)."""
    return base_lr + jnp.zeros(jnp.shape(progress), default_float())


@LR_SCHEDULES.register_module('Step')
def step_lr(progress, base_lr, max_progress, *, step, gamma=0.1, min_lr=None):
    """``base_lr * gamma ** k``: ``k`` milestones of ``step`` (a list) passed, or ``progress // step``
    (an int); floored at ``min_lr``."""
    _check_steps(step)
    return _step_decay(progress, base_lr, step, gamma, min_lr)


@LR_SCHEDULES.register_module('Exp')
def exp_lr(progress, base_lr, max_progress, *, gamma):
    """``base_lr * gamma ** progress``."""
    return base_lr * int_power(gamma, progress)


@LR_SCHEDULES.register_module('Poly')
def poly_lr(progress, base_lr, max_progress, *, power=1.0, min_lr=0.0):
    """``(base_lr - min_lr) * (1 - progress / max_progress) ** power + min_lr``.

    mmcv leaves the formula undefined past the end of the run; here the lr stays at ``min_lr``.
    """
    total = require_max_progress(max_progress)
    left = jnp.true_divide(total - jnp.minimum(progress, total), total)
    return (base_lr - min_lr) * left ** power + min_lr


@LR_SCHEDULES.register_module('Inv')
def inv_lr(progress, base_lr, max_progress, *, gamma, power=1.0):
    """``base_lr * (1 + gamma * progress) ** -power``."""
    return base_lr * (1 + gamma * progress) ** (-power)


@LR_SCHEDULES.register_module('CosineAnnealing')
def cosine_annealing_lr(progress, base_lr, max_progress, *, min_lr=None, min_lr_ratio=None):
    """Cosine from ``base_lr`` to ``min_lr`` (or ``base_lr * min_lr_ratio``) over the run."""
    target = _min_value(base_lr, min_lr, min_lr_ratio, ('min_lr', 'min_lr_ratio'))
    return anneal_cos(base_lr, target, progress, require_max_progress(max_progress))


@LR_SCHEDULES.register_module('FlatCosineAnnealing')
def flat_cosine_annealing_lr(progress, base_lr, max_progress, *, start_percent=0.75, min_lr=None,
                             min_lr_ratio=None):
    """``base_lr`` for the first ``start_percent`` of the run, then cosine to the minimum."""
    target = _min_value(base_lr, min_lr, min_lr_ratio, ('min_lr', 'min_lr_ratio'))
    _check_float_in(start_percent, 'start_percent', 0, 1)
    total = require_max_progress(max_progress)
    start = round(total * start_percent)  # Python's round, as mmcv (banker's rounding)
    annealed = anneal_cos(base_lr, target, progress - start, total - start)
    return jnp.where(progress < start, base_lr + jnp.zeros_like(annealed), annealed)


@LR_SCHEDULES.register_module('CosineRestart')
def cosine_restart_lr(progress, base_lr, max_progress, *, periods, restart_weights=(1,), min_lr=None,
                      min_lr_ratio=None):
    """Cosine annealing restarted after each of ``periods``, peaking at ``restart_weights``.

    mmcv raises once progress passes ``sum(periods)``; that is checked here against the run
    length, and past it the lr holds at the minimum.
    """
    target = _min_value(base_lr, min_lr, min_lr_ratio, ('min_lr', 'min_lr_ratio'))
    periods, weights = list(periods), list(restart_weights)
    if not periods or not all(isinstance(p, numbers.Integral) and p > 0 for p in periods):
        raise bad_arg('periods', f'must be a non-empty list of positive ints, got {periods!r}')
    if len(weights) != len(periods):
        raise bad_arg('restart_weights', f'needs one weight per period: {len(periods)} periods, '
                                         f'{len(weights)} weights')
    cumulative = np.cumsum(periods)
    if max_progress is not None and cumulative[-1] < max_progress:
        raise bad_arg('periods', f'sum to {cumulative[-1]} but the run is {max_progress} long '
                                 '(mmcv stops with an error there); make them cover the run')
    idx = jnp.minimum(count_passed(cumulative, progress), len(periods) - 1)
    restart = jnp.asarray(np.concatenate([[0], cumulative[:-1]]), jnp.int32)[idx]
    period = jnp.asarray(periods, jnp.int32)[idx]
    num = jnp.minimum(progress - restart, period)
    if all(w == weights[0] for w in weights):
        return anneal_cos(base_lr, target, num, period, weights[0])
    weight = jnp.asarray(weights, default_float())[idx]
    c, one_minus_c = _cos_weights(num, period)  # anneal_cos with a traced weight
    return base_lr * (weight * c) + target * ((1 - weight) + weight * one_minus_c)


def _cyclic(progress, base, max_progress, *, target_ratio, cyclic_times, step_ratio_up, anneal_strategy,
            gamma):
    """mmcv's Cyclic updater (lr and momentum): up to ``target_ratio[0]``, down to ``[1]``, repeated."""
    if isinstance(target_ratio, numbers.Number):
        target_ratio = (target_ratio, target_ratio / 1e5)
    elif isinstance(target_ratio, (tuple, list)) and len(target_ratio) == 1:
        target_ratio = (target_ratio[0], target_ratio[0] / 1e5)
    if not isinstance(target_ratio, (tuple, list)) or len(target_ratio) != 2:
        raise bad_arg('target_ratio', f'must be a float or a tuple of two floats, got {target_ratio!r}')
    if not 0 <= step_ratio_up < 1:
        raise bad_arg('step_ratio_up', f'must be in [0, 1), got {step_ratio_up!r}')
    anneal = _anneal_fn(anneal_strategy)
    per_cycle = require_max_progress(max_progress) // cyclic_times
    if per_cycle < 1:
        raise bad_arg('cyclic_times', f'{cyclic_times} cycles do not fit in {max_progress} iterations')
    up = int(step_ratio_up * per_cycle)
    curr = progress % per_cycle
    scale = int_power(gamma, progress // per_cycle)
    # gamma < 1 shrinks the peak towards 1: ratio 1 + (r - 1) * scale (mmcv's 1 - scale + r * scale)
    peak = 1 + (target_ratio[0] - 1) * scale
    rising = anneal(base, base * peak, curr, max(up, 1))
    falling = anneal(base * peak, base * target_ratio[1], curr - up, per_cycle - up)
    return jnp.where(curr < up, rising, falling)


@LR_SCHEDULES.register_module('Cyclic')
@iteration_only
def cyclic_lr(progress, base_lr, max_progress, *, target_ratio=(10, 1e-4), cyclic_times=1,
              step_ratio_up=0.4, anneal_strategy='cos', gamma=1):
    """Cyclical lr (cosine inside a cycle): ``base_lr -> base_lr * target_ratio[0] ->
    base_lr * target_ratio[1]``, ``cyclic_times`` cycles over the run, peaks scaled by ``gamma``."""
    if not 0 < gamma <= 1:
        raise bad_arg('gamma', f'must be in (0, 1], got {gamma!r}')
    return _cyclic(progress, base_lr, max_progress, target_ratio=target_ratio, cyclic_times=cyclic_times,
                   step_ratio_up=step_ratio_up, anneal_strategy=anneal_strategy, gamma=gamma)


@LR_SCHEDULES.register_module('OneCycle')
@iteration_only
def one_cycle_lr(progress, base_lr, max_progress, *, max_lr, total_steps=None, pct_start=0.3,
                 anneal_strategy='cos', div_factor=25, final_div_factor=1e4, three_phase=False):
    """1cycle: ``max_lr / div_factor -> max_lr -> max_lr / div_factor / final_div_factor``.

    The optimizer's lr is ignored, as in mmcv: the cycle starts at ``max_lr / div_factor``.
    """
    max_lr = _per_group(max_lr, base_lr, 'max_lr')
    if total_steps is None:
        total_steps = require_max_progress(max_progress)
    elif not isinstance(total_steps, numbers.Integral) or isinstance(total_steps, bool):
        raise bad_arg('total_steps', f'must be an int, got {total_steps!r}')
    elif max_progress is not None and total_steps < max_progress:
        raise bad_arg('total_steps', f'is {total_steps} but the run has {max_progress} iterations; '
                                     'it must cover the run')
    _check_float_in(pct_start, 'pct_start', 0, 1)
    anneal = _anneal_fn(anneal_strategy)
    start = max_lr / div_factor
    peak, low = start * div_factor, start / final_div_factor
    if three_phase:
        phases = [(float(pct_start * total_steps) - 1, start, peak),
                  (float(2 * pct_start * total_steps) - 2, peak, start),
                  (total_steps - 1, start, low)]
    else:
        phases = [(float(pct_start * total_steps) - 1, start, peak), (total_steps - 1, peak, low)]
    return _phases(progress, phases, anneal)


@LR_SCHEDULES.register_module('LinearAnnealing')
def linear_annealing_lr(progress, base_lr, max_progress, *, min_lr=None, min_lr_ratio=None):
    """Linear from ``base_lr`` to ``min_lr`` (or ``base_lr * min_lr_ratio``) over the run."""
    target = _min_value(base_lr, min_lr, min_lr_ratio, ('min_lr', 'min_lr_ratio'))
    return anneal_linear(base_lr, target, progress, require_max_progress(max_progress))


# --------------------------------------------------------------------------------------------
# Momentum policies: mmcv's XxxMomentumUpdaterHook.get_momentum.


@MOMENTUM_SCHEDULES.register_module('Step')
def step_momentum(progress, base, max_progress, *, step, gamma=0.5, min_momentum=None):
    """``base * gamma ** k`` as the Step lr policy, floored at ``min_momentum``."""
    _check_steps(step)
    return _step_decay(progress, base, step, gamma, min_momentum)


@MOMENTUM_SCHEDULES.register_module('CosineAnnealing')
def cosine_annealing_momentum(progress, base, max_progress, *, min_momentum=None, min_momentum_ratio=None):
    """Cosine from the optimizer's momentum to ``min_momentum`` (or ``* min_momentum_ratio``)."""
    target = _min_value(base, min_momentum, min_momentum_ratio, ('min_momentum', 'min_momentum_ratio'))
    return anneal_cos(base, target, progress, require_max_progress(max_progress))


@MOMENTUM_SCHEDULES.register_module('LinearAnnealing')
def linear_annealing_momentum(progress, base, max_progress, *, min_momentum=None, min_momentum_ratio=None):
    """Linear from the optimizer's momentum to ``min_momentum`` (or ``* min_momentum_ratio``)."""
    target = _min_value(base, min_momentum, min_momentum_ratio, ('min_momentum', 'min_momentum_ratio'))
    return anneal_linear(base, target, progress, require_max_progress(max_progress))


@MOMENTUM_SCHEDULES.register_module('Cyclic')
@iteration_only
def cyclic_momentum(progress, base, max_progress, *, target_ratio=(0.85 / 0.95, 1.0), cyclic_times=1,
                    step_ratio_up=0.4, anneal_strategy='cos', gamma=1.0):
    """Cyclical momentum, usually the mirror image of a Cyclic lr: down to ``target_ratio[0]``
    and back to ``target_ratio[1]`` times the optimizer's momentum."""
    return _cyclic(progress, base, max_progress, target_ratio=target_ratio,
                   cyclic_times=cyclic_times, step_ratio_up=step_ratio_up, anneal_strategy=anneal_strategy,
                   gamma=gamma)


@MOMENTUM_SCHEDULES.register_module('OneCycle')
@iteration_only
def one_cycle_momentum(progress, base, max_progress, *, base_momentum=0.85, max_momentum=0.95,
                       pct_start=0.3, anneal_strategy='cos', three_phase=False):
    """1cycle momentum: ``max_momentum -> base_momentum -> max_momentum``, inverse to the lr.

    The config's ``base_momentum`` is the low point; the optimizer's momentum (``base``) is
    ignored, as in mmcv. The phases span the run (mmcv's momentum updater has no
    ``total_steps``).
    """
    low = _per_group(base_momentum, base, 'base_momentum')
    high = _per_group(max_momentum, base, 'max_momentum')
    _check_float_in(pct_start, 'pct_start', 0, 1)
    anneal = _anneal_fn(anneal_strategy)
    total = require_max_progress(max_progress)
    if three_phase:
        phases = [(float(pct_start * total) - 1, high, low), (float(2 * pct_start * total) - 2, low, high),
                  (total - 1, high, high)]
    else:
        phases = [(float(pct_start * total) - 1, high, low), (total - 1, low, high)]
    return _phases(progress, phases, anneal)


# --------------------------------------------------------------------------------------------
# Builders.


class RunLength:
    """How long the run is, as mmcv's runners know it.

    An epoch-based run (``max_epochs`` given, EpochBasedRunner) has ``max_iters =
    max_epochs * iters_per_epoch``; an iteration-based one (only ``max_iters``,
    IterBasedRunner) has no ``max_epochs``, and mmcv never updates by-epoch schedules there.
    """

    def __init__(self, iters_per_epoch: int | None, max_epochs: int | None, max_iters: int | None) -> None:
        for name, value in (('iters_per_epoch', iters_per_epoch), ('max_epochs', max_epochs),
                            ('max_iters', max_iters)):
            if value is not None and (not isinstance(value, numbers.Integral) or isinstance(value, bool)
                                      or value < 1):
                raise ScheduleConfigError(f'{name} must be a positive int or None, got {value!r}')
        if max_epochs is not None and iters_per_epoch is not None:
            total = max_epochs * iters_per_epoch
            if max_iters is not None and max_iters != total:
                raise ScheduleConfigError(
                    f'max_iters={max_iters} but max_epochs * iters_per_epoch = {max_epochs} * '
                    f'{iters_per_epoch} = {total}; give one of them')
            max_iters = total
        self.iters_per_epoch = None if iters_per_epoch is None else int(iters_per_epoch)
        self.max_epochs = None if max_epochs is None else int(max_epochs)
        self.max_iters = None if max_iters is None else int(max_iters)
        self.iteration_based = max_epochs is None and max_iters is not None

    def epoch_length(self, key: str, why: str) -> int:
        """``iters_per_epoch``, or an error naming the config key that needs it."""
        if self.iteration_based:
            raise ScheduleConfigError(
                f'{key}: {why} needs an epoch-based run, but only max_iters={self.max_iters} was given '
                '(an iteration-based run, where mmcv/mmengine never step by-epoch schedules); '
                'pass max_epochs, or set by_epoch=False')
        if self.iters_per_epoch is None:
            raise ScheduleConfigError(f'{key}: {why} needs iters_per_epoch (the length of the train loader)')
        return self.iters_per_epoch


def host_base(base: Any, name: str) -> float | np.ndarray:
    """The optimizer's base value: a float, or a float64 array with one value per param group."""
    if isinstance(base, numbers.Number) and not isinstance(base, bool):
        return float(base)
    if isinstance(base, (Sequence, np.ndarray, jax.Array)) and not isinstance(base, str):
        array = np.asarray(base, np.float64)
        if array.ndim == 1 and array.size:
            return array
    raise ScheduleConfigError(f'{name} must be a number or a list of numbers (one per param group), '
                              f'got {base!r}')


def _constant(base: float | np.ndarray) -> Schedule:
    def constant(step):
        dtype = default_float()  # when traced: float64 in a float64 run
        return jnp.asarray(base, dtype) + jnp.zeros(jnp.shape(step) + np.shape(base), dtype)
    return jax.jit(constant)


def mmcv_lr_schedule(lr_config: Mapping[str, Any], base: float | np.ndarray, run: RunLength,
                     key: str = 'lr_config') -> Schedule:
    """mmcv's LrUpdaterHook for ``lr_config`` as a ``step -> lr`` function."""
    return _build_updater(lr_config, base, run, LR_SCHEDULES, _LR_HOOK_ARGS, _lr_warmup, key)


def mmcv_momentum_schedule(momentum_config: Mapping[str, Any], base: float | np.ndarray, run: RunLength,
                           key: str = 'momentum_config') -> Schedule:
    """mmcv's MomentumUpdaterHook for ``momentum_config`` as a ``step -> momentum`` function."""
    return _build_updater(momentum_config, base, run, MOMENTUM_SCHEDULES, _MOMENTUM_HOOK_ARGS,
                          _momentum_warmup, key)


def _lr_warmup(kind: str, ratio: float, iters: int) -> Callable[[Any, Any], Any]:
    """mmcv's ``get_warmup_lr``: the regular lr scaled down while ``i < warmup_iters``."""
    if kind == 'constant':
        return lambda regular, i: regular * ratio
    if kind == 'linear':  # 1 - (1 - i / W) (1 - ratio), as a sum of non-negative terms
        return lambda regular, i: regular * (ratio + (1 - ratio) * jnp.true_divide(i, iters))
    step = ratio ** (1 / iters)  # ratio ** (1 - i / W) = (ratio ** (1 / W)) ** (W - i)
    return lambda regular, i: regular * int_power(step, iters - i, max_n=iters)


def _momentum_warmup(kind: str, ratio: float, iters: int) -> Callable[[Any, Any], Any]:
    """mmcv's ``get_warmup_momentum``: the regular momentum divided by the lr warmup factor."""
    if kind == 'constant':
        return lambda regular, i: regular / ratio
    if kind == 'linear':
        return lambda regular, i: regular / (ratio + (1 - ratio) * jnp.true_divide(i, iters))
    step = (1 / ratio) ** (1 / iters)
    return lambda regular, i: regular * int_power(step, iters - i, max_n=iters)


def _build_updater(cfg: Mapping[str, Any], base: float | np.ndarray, run: RunLength, registry: Registry,
                   hook_defaults: Mapping[str, Any], warmup_rule: Callable[..., Any], key: str) -> Schedule:
    """mmcv's XxxUpdaterHook as a function: policy by epoch or iteration, warmup by iteration."""
    if not isinstance(cfg, Mapping):
        raise ScheduleConfigError(f'{key} must be a dict with a policy, got {cfg!r}')
    cfg = dict(cfg)
    if 'policy' not in cfg:
        raise ScheduleConfigError(f"{key} has no 'policy'; e.g. {key} = dict(policy='step', step=[40, 80])")
    name = cfg.pop('policy')
    if not isinstance(name, str):
        raise ScheduleConfigError(f'{key}.policy must be a string, got {name!r}')
    if name == name.lower():  # mmcv: 'step' -> 'Step'; names with capitals are taken as written
        name = name.title()
    policy = registry.get(name, key_path=f'{key}.policy')
    stepwise = getattr(policy, 'iteration_only', False)

    by_epoch_given = 'by_epoch' in cfg
    hook = {arg: cfg.pop(arg, default) for arg, default in hook_defaults.items()}
    if stepwise and not by_epoch_given:  # mmcv's Cyclic/OneCycle default to by_epoch=False
        hook['by_epoch'] = False
    if stepwise and hook['by_epoch']:
        raise ScheduleConfigError(
            f'{key}.by_epoch=True is not supported by policy {name!r}: it changes every iteration '
            '(mmcv asserts by_epoch=False); remove by_epoch or set it to False')
    kwargs = _policy_kwargs(policy, cfg, key, name, extra=list(hook_defaults))

    by_epoch, warmup = bool(hook['by_epoch']), hook['warmup']
    epoch_length = run.epoch_length(f'{key}.by_epoch', 'by_epoch=True') if by_epoch else None
    max_progress = run.max_epochs if by_epoch else run.max_iters
    warmup_iters = 0
    if warmup is not None:
        if warmup not in _WARMUPS:
            raise ScheduleConfigError(f'{key}.warmup must be one of {", ".join(map(repr, _WARMUPS))} '
                                      f'or None, got {warmup!r}')
        warmup_iters, ratio = hook['warmup_iters'], hook['warmup_ratio']
        if not isinstance(warmup_iters, numbers.Integral) or warmup_iters <= 0:
            raise ScheduleConfigError(f'{key}.warmup_iters must be a positive int, got {warmup_iters!r}')
        if not (isinstance(ratio, numbers.Number) and 0 < ratio <= 1):
            raise ScheduleConfigError(f'{key}.warmup_ratio must be in (0, 1], got {ratio!r}')
        if hook.get('warmup_by_epoch'):
            warmup_iters *= run.epoch_length(f'{key}.warmup_by_epoch', 'warmup_by_epoch=True')
        warmup_fn = warmup_rule(warmup, float(ratio), int(warmup_iters))

    def schedule(step):
        step = jnp.asarray(step)
        i = step[..., None] if np.ndim(base) else step  # param groups along a trailing axis
        regular = policy(i // epoch_length if by_epoch else i, base, max_progress, **kwargs)
        dtype = default_float()
        regular = jnp.asarray(regular, dtype) + jnp.zeros(step.shape + np.shape(base), dtype)
        if warmup is None:
            return regular
        return jnp.where(i < warmup_iters, warmup_fn(regular, i), regular)

    _check_policy(schedule, key, name, by_epoch)
    return jax.jit(schedule)  # Python ints then cost one dispatch, not dozens of eager ops


def _policy_kwargs(policy: Callable[..., Any], cfg: dict[str, Any], key: str, name: str,
                   extra: list[str]) -> dict[str, Any]:
    """The config's policy arguments, checked against the policy's signature."""
    params = list(inspect.signature(policy).parameters.values())[3:]
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    names = [p.name for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD]
    for arg in cfg:
        if arg not in names and not takes_any:
            close = difflib.get_close_matches(arg, names + extra, n=2, cutoff=0.6)
            hint = f'did you mean {" or ".join(map(repr, close))}? ' if close else ''
            raise ScheduleConfigError(
                f'{key}.{arg} is not an argument of policy {name!r}; {hint}'
                f'it takes {", ".join(names + extra) or "no arguments"}')
    for p in params:
        if p.default is inspect.Parameter.empty and p.kind is not inspect.Parameter.VAR_KEYWORD \
                and p.name not in cfg:
            raise ScheduleConfigError(f'{key}.{p.name} is required by policy {name!r}; '
                                      f'e.g. {key} = dict(policy={name!r}, {p.name}=...)')
    return cfg


def _check_policy(schedule: Schedule, key: str, name: str, by_epoch: bool) -> None:
    """Evaluate step 0 once so that a bad config fails now, naming its key, not inside jit."""
    try:
        jax.eval_shape(schedule, jax.ShapeDtypeStruct((), jnp.int32))
    except _BadArg as err:
        raise ScheduleConfigError(f'{key}.{err.arg}: {err}') from None
    except _NeedsRunLength:
        unit = 'max_epochs (total_epochs)' if by_epoch else 'max_iters (or max_epochs)'
        raise ScheduleConfigError(
            f'{key}.policy={name!r} anneals over the whole run, so it needs the run length: '
            f'pass {unit} to the schedule builder') from None
    except (TypeError, ValueError, IndexError) as err:
        raise ScheduleConfigError(f'{key} (policy {name!r}): {err}') from err
