"""MMAction2 1.x / mmengine ``param_scheduler`` lists as pure ``step -> value`` functions.

::

    param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=5,
             convert_to_iter_based=True),
        dict(type='MultiStepLR', by_epoch=True, begin=0, end=100, milestones=[40, 80], gamma=0.1)]

What mmengine does: every scheduler steps once when it is built, then after every iteration
(``by_epoch=False``) or every epoch (``by_epoch=True``). A step with ``begin <= count < end``
rewrites the group's value *from its current value* (the chainable form), so schedulers
compose: overlapping multiplicative ones (Linear, Constant, Step, MultiStep, Exponential,
Cosine/Poly towards 0) multiply, and a scheduler that starts later starts from whatever
value the earlier ones left.

How it is done here: each scheduler has a closed form in its own step count ``k`` (0 at
``begin``). The run is cut into *components*, maximal time spans over which schedulers
overlap. A component of multiplicative schedulers is the product of their factors times
the value it starts from; a lone non-multiplicative scheduler (cosine to a nonzero
``eta_min``, OneCycle, CosineRestart) is its closed form from that value. Only when a
non-multiplicative scheduler overlaps another does the value depend on the exact
interleaving of steps; that component is replayed step by step on the host in float64,
exactly as mmengine orders the steps, and looked up. Between components the value holds.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from actionjax.optim.schedules import (
    RunLength,
    Schedule,
    ScheduleConfigError,
    _BadArg,
    _check_float_in,
    _constant,
    _cos_weights,
    _phases,
    anneal_cos,
    anneal_linear,
    bad_arg,
    count_passed,
    int_power,
)
from actionjax.precision import default_float
from actionjax.registry import Registry

__all__ = ['PARAM_SCHEDULERS', 'ParamScheduler', 'build_param_schedule']

PARAM_SCHEDULERS = Registry('PARAM_SCHEDULERS')
INF = int(1e9)  # mmengine's "no end"


class ParamScheduler:
    """One mmengine scheduler in its own step count ``k`` (mmengine's ``last_step``).

    Subclasses give ``factor(k)`` (multiplicative ones: value = entry * factor) or
    ``value(k, entry)`` (the others), and ``chain(k, v)``: one mmengine step on the host,
    used when the closed form cannot apply. ``base`` is the group's initial value (the
    optimizer's, per group), which some schedulers refer back to. ``xp`` is jnp inside the
    schedule and numpy (float64) where the builder evaluates values on the host.
    """

    multiplicative = True
    epoch_args: tuple[str, ...] = ()  # arguments counted in epochs, scaled by convert_to_iter_based

    def __init__(self, begin: float = 0, end: float = INF, by_epoch: bool = True) -> None:
        if not end > begin:
            raise bad_arg('end', f'must be larger than begin, got begin={begin}, end={end}')
        self.begin, self.end, self.by_epoch = begin, end, by_epoch
        self.base: Any = None

    def last_change(self) -> float | None:
        """The last ``k`` at which this scheduler may change the value (None: any)."""
        return None

    def is_multiplicative(self, k_max: int | None) -> bool:
        return self.multiplicative

    def factor(self, k: jax.Array, xp: Any = jnp) -> jax.Array:
        raise NotImplementedError

    def value(self, k: jax.Array, entry: Any, xp: Any = jnp) -> jax.Array:
        return entry * self.factor(k, xp)

    def chain(self, k: int, v: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _total_iters(begin: float, end: float) -> float:
    return end - begin - 1


@PARAM_SCHEDULERS.register_module('LinearParamScheduler')
class LinearScheduler(ParamScheduler):
    """Factor from ``start_factor`` to ``end_factor`` linearly over ``[begin, end)``."""

    def __init__(self, start_factor: float = 1.0 / 3, end_factor: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for arg, value in (('start_factor', start_factor), ('end_factor', end_factor)):
            if not 0 <= value <= 1:
                raise bad_arg(arg, f'must be in [0, 1], got {value!r}')
        if start_factor == 0:
            raise bad_arg('start_factor', 'must be > 0: mmengine divides by it (ZeroDivisionError)')
        self.start, self.stop = start_factor, end_factor
        self.total = _total_iters(self.begin, self.end)

    def factor(self, k, xp=jnp):
        if self.total == 0:
            return self.start + xp.zeros(xp.shape(k))
        # start + (stop - start) k / total, as a sum of non-negative terms
        return (self.start * (self.total - k) + self.stop * k) / self.total

    def chain(self, k, v):
        if k == 0:
            return v * self.start
        step = self.stop - self.start
        return v * (1 + step / (self.total * self.start + (k - 1) * step))


@PARAM_SCHEDULERS.register_module('ConstantParamScheduler')
class ConstantScheduler(ParamScheduler):
    """Factor ``factor`` until ``end - 1``, then back to 1."""

    def __init__(self, factor: float = 1.0 / 3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0 < factor <= 1:
            raise bad_arg('factor', f'must be in (0, 1], got {factor!r}')
        self.scale = factor
        total = _total_iters(self.begin, self.end)
        # mmengine restores at k == total; never when total is 0 (k == 0 scales first) or fractional
        self.restore = total if total > 0 and float(total).is_integer() else None

    def last_change(self):
        return self.restore if self.restore is not None else 0

    def factor(self, k, xp=jnp):
        if self.restore is None:
            return self.scale + xp.zeros(xp.shape(k))
        return xp.where(k < self.restore, self.scale, 1.0)

    def chain(self, k, v):
        if k == 0:
            return v * self.scale
        return v * (1.0 / self.scale) if k == self.restore else v


@PARAM_SCHEDULERS.register_module('StepParamScheduler')
class StepScheduler(ParamScheduler):
    """Factor ``gamma ** (k // step_size)``."""

    epoch_args = ('step_size',)

    def __init__(self, step_size: int, gamma: float = 0.1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(step_size, numbers.Integral) or step_size < 1:
            raise bad_arg('step_size', f'must be a positive int, got {step_size!r}')
        self.step_size, self.gamma = int(step_size), gamma

    def factor(self, k, xp=jnp):
        return int_power(self.gamma, k // self.step_size, xp)

    def chain(self, k, v):
        return v * self.gamma if k > 0 and k % self.step_size == 0 else v


@PARAM_SCHEDULERS.register_module('MultiStepParamScheduler')
class MultiStepScheduler(ParamScheduler):
    """Factor ``gamma ** (number of milestones <= k)``; milestones count from ``begin``."""

    epoch_args = ('milestones',)

    def __init__(self, milestones: Sequence[int], gamma: float = 0.1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(milestones, (str, bytes)) or not isinstance(milestones, Sequence) \
                or not all(isinstance(m, numbers.Integral) for m in milestones):
            raise bad_arg('milestones', f'must be a list of ints, got {milestones!r}')
        self.milestones = sorted(int(m) for m in milestones if m >= 0)  # k is never negative
        self.gamma = gamma

    def last_change(self):
        return self.milestones[-1] if self.milestones else 0

    def factor(self, k, xp=jnp):
        powers = np.asarray([self.gamma ** j for j in range(len(self.milestones) + 1)])  # exact float64
        return xp.asarray(powers)[count_passed(self.milestones, k, xp)]

    def chain(self, k, v):
        return v * self.gamma ** self.milestones.count(k)


@PARAM_SCHEDULERS.register_module('ExponentialParamScheduler')
class ExponentialScheduler(ParamScheduler):
    """Factor ``gamma ** k``."""

    def __init__(self, gamma: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gamma = gamma

    def factor(self, k, xp=jnp):
        return int_power(self.gamma, k, xp)

    def chain(self, k, v):
        return v * self.gamma if k > 0 else v


def _eta_min(eta_min: float | None, eta_min_ratio: float | None, default_zero: bool) -> tuple:
    if eta_min is None and eta_min_ratio is None and default_zero:
        eta_min = 0.0
    if (eta_min is None) == (eta_min_ratio is None):
        raise bad_arg('eta_min', 'give exactly one of eta_min and eta_min_ratio')
    return eta_min, eta_min_ratio


class _MinValue:
    """``eta_min`` or ``base * eta_min_ratio``."""

    eta_min: float | None
    eta_min_ratio: float | None
    base: Any

    def minimum(self) -> Any:
        return self.eta_min if self.eta_min_ratio is None else self.base * self.eta_min_ratio

    def towards_zero(self) -> bool:
        return (self.eta_min_ratio if self.eta_min is None else self.eta_min) == 0


@PARAM_SCHEDULERS.register_module('CosineAnnealingParamScheduler')
class CosineAnnealingScheduler(_MinValue, ParamScheduler):
    """Cosine from the entry value to ``eta_min`` over ``T_max`` steps (default ``end - begin``).

    Past ``T_max`` mmengine's chainable form climbs back along the cosine towards the
    *initial* value (``base``), so there the closed form refers to ``base``, not the entry.
    """

    epoch_args = ('T_max',)

    def __init__(self, T_max: int | None = None, eta_min: float | None = None,  # noqa: N803 (mmengine's name)
                 eta_min_ratio: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.eta_min, self.eta_min_ratio = _eta_min(eta_min, eta_min_ratio, default_zero=True)
        self.period = T_max or (self.end - self.begin)

    def is_multiplicative(self, k_max):
        return self.towards_zero() and k_max is not None and k_max <= self.period

    def _weights(self, k, xp):
        r = xp.mod(k, 2 * self.period)  # the cosine is 2T-periodic and symmetric about T
        return _cos_weights(xp.minimum(r, 2 * self.period - r), self.period, xp)

    def factor(self, k, xp=jnp):
        return self._weights(k, xp)[0]

    def value(self, k, entry, xp=jnp):
        c, one_minus_c = self._weights(k, xp)
        start = xp.where(k <= self.period, entry, self.base)
        return start * c + self.minimum() * one_minus_c

    def chain(self, k, v):
        low, t = self.minimum(), self.period
        if k == 0:
            return v
        if (k - 1 - t) % (2 * t) == 0:
            return v + (self.base - low) * (1 - math.cos(math.pi / t)) / 2
        return (1 + math.cos(math.pi * k / t)) / (1 + math.cos(math.pi * (k - 1) / t)) * (v - low) + low


@PARAM_SCHEDULERS.register_module('PolyParamScheduler')
class PolyScheduler(ParamScheduler):
    """From the entry value to ``eta_min`` as ``(1 - k / total) ** power``, total = end - begin - 1."""

    def __init__(self, eta_min: float = 0.0, power: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.eta_min, self.power = eta_min, power
        self.total = _total_iters(self.begin, self.end)

    def is_multiplicative(self, k_max):
        return self.eta_min == 0

    def factor(self, k, xp=jnp):
        if self.total == 0:
            return xp.ones(xp.shape(k))
        return xp.true_divide(self.total - k, self.total) ** self.power

    def value(self, k, entry, xp=jnp):
        return (entry - self.eta_min) * self.factor(k, xp) + self.eta_min

    def chain(self, k, v):
        if k == 0:
            return v
        return (v - self.eta_min) * (1 - 1 / (self.total - k + 1)) ** self.power + self.eta_min


@PARAM_SCHEDULERS.register_module('OneCycleParamScheduler')
class OneCycleScheduler(ParamScheduler):
    """1cycle: ``eta_max / div_factor -> eta_max -> eta_max / div_factor / final_div_factor``.

    Absolute (not chainable); it also resets the group's initial value to
    ``eta_max / div_factor``, which later schedulers in the list take as their base.
    """

    multiplicative = False
    epoch_args = ('total_steps',)

    def __init__(self, eta_max: float | Sequence[float] = 0, total_steps: int | None = None,
                 pct_start: float = 0.3, anneal_strategy: str = 'cos', div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if total_steps is not None and (not isinstance(total_steps, numbers.Integral) or total_steps <= 0):
            raise bad_arg('total_steps', f'must be a positive int, got {total_steps!r}')
        self.total = total_steps if total_steps is not None else self.end - self.begin
        _check_float_in(pct_start, 'pct_start', 0, 1)
        if anneal_strategy not in ('cos', 'linear'):
            raise bad_arg('anneal_strategy', f"must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.eta_max, self.pct_start, self.three_phase = eta_max, pct_start, three_phase
        self.div_factor, self.final_div_factor = div_factor, final_div_factor
        self.anneal = anneal_cos if anneal_strategy == 'cos' else anneal_linear
        self.anneal_name = anneal_strategy

    def initial(self, groups: tuple[int, ...]) -> Any:
        peak = self.eta_max
        if isinstance(peak, (list, tuple)):
            if groups != (len(peak),):
                groups_n = groups[0] if groups else 1
                raise bad_arg('eta_max', f'has {len(peak)} values for {groups_n} param groups')
            peak = np.asarray(peak, np.float64)
        return peak / self.div_factor

    def _phases(self) -> list[tuple[float, Any, Any]]:
        start = self.base
        peak, low = start * self.div_factor, start / self.final_div_factor
        total, pct = self.total, self.pct_start
        if self.three_phase:
            return [(float(pct * total) - 1, start, peak), (float(2 * pct * total) - 2, peak, start),
                    (total - 1, start, low)]
        return [(float(pct * total) - 1, start, peak), (total - 1, peak, low)]

    def value(self, k, entry, xp=jnp):
        return _phases(k, self._phases(), self.anneal, xp)

    def chain(self, k, v):
        if k > self.total:
            raise bad_arg('total_steps', f'is {self.total} but the scheduler steps {k + 1} times '
                                         '(mmengine raises there)')
        start = 0.0
        phases = self._phases()
        for j, (end, low, high) in enumerate(phases):
            if k <= end or j == len(phases) - 1:
                pct = (k - start) / (end - start)
                if self.anneal_name == 'linear':
                    return (high - low) * pct + low
                return high + (low - high) / 2.0 * (math.cos(math.pi * pct) + 1)
            start = end
        raise AssertionError('unreachable')


@PARAM_SCHEDULERS.register_module('CosineRestartParamScheduler')
class CosineRestartScheduler(_MinValue, ParamScheduler):
    """Cosine annealing restarted every period at ``base * restart_weights[i]``; after the last
    period the value holds."""

    multiplicative = False
    epoch_args = ('periods',)

    def __init__(self, periods: Sequence[int], restart_weights: Sequence[float] = (1,),
                 eta_min: float | None = None, eta_min_ratio: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.eta_min, self.eta_min_ratio = _eta_min(eta_min, eta_min_ratio, default_zero=False)
        if not periods or not all(isinstance(p, numbers.Integral) and p > 0 for p in periods):
            raise bad_arg('periods', f'must be a non-empty list of positive ints, got {periods!r}')
        if len(restart_weights) != len(periods):
            raise bad_arg('restart_weights', f'needs one weight per period ({len(periods)}), '
                                             f'got {len(restart_weights)}')
        self.periods, self.weights = [int(p) for p in periods], list(restart_weights)
        self.cumulative = np.cumsum(self.periods)

    def last_change(self):
        return int(self.cumulative[-1]) - 1

    def value(self, k, entry, xp=jnp):
        k = xp.minimum(k, int(self.cumulative[-1]) - 1)
        idx = count_passed(self.cumulative, k, xp)
        restart = xp.asarray(np.concatenate([[0], self.cumulative[:-1]]))[idx]
        c, one_minus_c = _cos_weights(k - restart, xp.asarray(self.periods)[idx], xp)
        return self.base * xp.asarray(self.weights)[idx] * c + self.minimum() * one_minus_c

    def chain(self, k, v):
        idx = int(np.searchsorted(self.cumulative, k, side='right'))
        if idx == len(self.periods):
            return v
        step = k - (0 if idx == 0 else int(self.cumulative[idx - 1]))
        if step == 0:
            return self.base * self.weights[idx]
        low, period = self.minimum(), self.periods[idx]
        return ((1 + math.cos(math.pi * step / period)) / (1 + math.cos(math.pi * (step - 1) / period))
                * (v - low) + low)


_KINDS = {
    'Linear': LinearScheduler, 'Constant': ConstantScheduler, 'Step': StepScheduler,
    'MultiStep': MultiStepScheduler, 'Exponential': ExponentialScheduler,
    'CosineAnnealing': CosineAnnealingScheduler, 'Poly': PolyScheduler,
    'CosineRestart': CosineRestartScheduler,
}
for _name, _cls in _KINDS.items():  # mmengine's LR and Momentum aliases of each ParamScheduler
    PARAM_SCHEDULERS.register_module(f'{_name}LR', module=_cls)
    PARAM_SCHEDULERS.register_module(f'{_name}Momentum', module=_cls)
PARAM_SCHEDULERS.register_module('OneCycleLR', module=OneCycleScheduler)


# --------------------------------------------------------------------------------------------
# Placing schedulers on the iteration axis and composing them.


class _Placed:
    """A scheduler with its steps on the run's iteration axis.

    Its step number ``g`` counts iterations (``by_epoch=False``) or epochs; step ``g`` happens
    before iteration ``g`` or ``g * iters_per_epoch``. It acts on steps ``first..last`` (its
    ``k`` is ``g - first``); ``t0``/``t1`` are the iterations of those steps (``t1`` None: no end).
    """

    def __init__(self, sched: ParamScheduler, index: int, epoch_length: int | None,
                 horizon: int | None) -> None:
        self.sched, self.index, self.by_epoch = sched, index, sched.by_epoch
        self.epoch_length = epoch_length if sched.by_epoch else 1
        self.first = max(math.ceil(sched.begin), 0)  # mmengine counts from 0
        last = None if sched.end >= INF else math.ceil(sched.end) - 1
        stop = sched.last_change()
        if stop is not None:
            last = self.first + int(stop) if last is None else min(last, self.first + int(stop))
        if horizon is not None:
            last_in_run = horizon // self.epoch_length
            last = last_in_run if last is None else min(last, last_in_run)
        self.last = last
        self.t0 = self.first * self.epoch_length
        self.t1 = None if last is None else last * self.epoch_length
        self.k_max = None if last is None else last - self.first
        self.multiplicative = sched.is_multiplicative(self.k_max)

    @property
    def acts(self) -> bool:
        return self.last is None or self.last >= self.first

    def local_step(self, i: Any, xp: Any = jnp) -> tuple[Any, Any]:
        """``(k, started)`` at iteration ``i``."""
        g = i // self.epoch_length if self.by_epoch else i
        if self.last is not None:
            g = xp.minimum(g, self.last)
        return xp.maximum(g - self.first, 0), g >= self.first


class _Component:
    """Schedulers whose active spans overlap, with the value they start from."""

    def __init__(self, members: list[_Placed]) -> None:
        self.members = sorted(members, key=lambda p: p.index)
        self.t0 = min(p.t0 for p in members)
        self.t1 = None if any(p.t1 is None for p in members) else max(p.t1 for p in members)
        self.entry: Any = None  # the value before t0 (float64, host)
        self.exit: Any = None  # the value after t1
        self.table: np.ndarray | None = None  # replayed values for t0..t1, when there is no closed form

    @property
    def kind(self) -> str:
        if all(p.multiplicative for p in self.members):
            return 'product'
        return 'single' if len(self.members) == 1 else 'replay'

    def value(self, i: Any, xp: Any = jnp) -> Any:
        """The value at iteration ``i`` in ``[t0, t1]``, from ``self.entry`` (the value before ``t0``)."""
        if self.table is not None:
            row = xp.clip(i - self.t0, 0, self.table.shape[0] - 1)
            if self.table.ndim == 1:
                return xp.asarray(self.table)[row]
            return xp.asarray(self.table)[row, xp.arange(self.table.shape[1])]  # row: trailing group axis
        if self.kind == 'single':
            (placed,) = self.members
            return placed.sched.value(placed.local_step(i, xp)[0], self.entry, xp)
        out = self.entry
        for placed in self.members:
            k, started = placed.local_step(i, xp)
            out = out * xp.where(started, placed.sched.factor(k, xp), 1.0)
        return out

    def replay(self, entry: Any) -> np.ndarray:
        """Values at iterations ``t0..t1``, stepping the schedulers one by one as mmengine does."""
        events = []
        for placed in self.members:
            for g in range(placed.first, placed.last + 1):
                t = g * placed.epoch_length
                # at t=0 all are built (and step) in list order; later the iteration hook runs
                # before the epoch hook
                phase = 0 if t == 0 else (2 if placed.by_epoch else 1)
                events.append((t, phase, placed.index, g - placed.first, placed.sched))
        events.sort(key=lambda e: e[:3])
        values = np.empty((self.t1 - self.t0 + 1,) + np.shape(entry), np.float64)
        v, filled = np.asarray(entry, np.float64), self.t0
        for t, _, _, k, sched in events:
            values[filled - self.t0:t - self.t0] = v
            filled = t
            v = np.asarray(sched.chain(k, v), np.float64)
        values[filled - self.t0:] = v
        return values


def _components(placed: list[_Placed]) -> list[_Component]:
    """Group schedulers whose ``[t0, t1]`` spans intersect, in time order."""
    groups: list[list[_Placed]] = []
    end = -math.inf  # the last iteration the current group acts on
    for p in sorted(placed, key=lambda p: p.t0):
        if not groups or p.t0 > end:
            groups.append([])
            end = -math.inf
        groups[-1].append(p)
        end = max(end, math.inf if p.t1 is None else p.t1)
    return [_Component(g) for g in groups]


def _param_of(type_name: str, cfg: Mapping[str, Any]) -> str:
    if type_name.endswith('LR'):
        return 'lr'
    if type_name.endswith('Momentum'):
        return 'momentum'
    return cfg.get('param_name', '')


def _build_one(cfg: Mapping[str, Any], where: str, run: RunLength) -> ParamScheduler:
    """mmengine's Runner._build_param_scheduler for one entry: default end, conversion, build."""
    args = dict(cfg)
    type_name = args.pop('type')
    args.pop('param_name', None)
    if 'ReduceOnPlateau' in str(type_name):
        raise ScheduleConfigError(f'{where}.type={type_name!r} follows validation metrics, not the step; '
                                  'it cannot be a step -> value function')
    cls = PARAM_SCHEDULERS.get(type_name, key_path=f'{where}.type')
    by_epoch = bool(args.get('by_epoch', True))
    if by_epoch:
        epoch_length = run.epoch_length(f'{where}.by_epoch', 'by_epoch=True')
    if 'end' not in args:  # the runner's default: the end of training
        default_end = run.max_epochs if by_epoch else run.max_iters
        args['end'] = default_end if default_end is not None else INF
    if args.pop('convert_to_iter_based', False):
        if not by_epoch:
            raise ScheduleConfigError(f'{where}.convert_to_iter_based needs by_epoch=True '
                                      '(it converts epochs to iterations)')
        args['begin'] = int(args.get('begin', 0) * epoch_length)
        if args['end'] != INF:
            args['end'] = int(args['end'] * epoch_length)
        for arg in cls.epoch_args:
            if args.get(arg) is not None:
                value = args[arg]
                args[arg] = [v * epoch_length for v in value] if isinstance(value, (list, tuple)) \
                    else value * epoch_length
        args['by_epoch'] = False
    try:
        return cls(**args)
    except _BadArg as err:
        raise ScheduleConfigError(f'{where}.{err.arg}: {err}') from None
    except TypeError as err:
        raise ScheduleConfigError(f'{where} ({type_name}): {err}') from None


def build_param_schedule(param_scheduler: Mapping[str, Any] | Sequence[Mapping[str, Any]], param: str,
                         base: float | np.ndarray, run: RunLength,
                         key: str = 'param_scheduler') -> Schedule | None:
    """``step -> value`` of ``param`` ('lr' or 'momentum') under an mmengine ``param_scheduler``.

    Entries for the other parameter are skipped. Returns a constant schedule for 'lr' and
    None for 'momentum' when no entry schedules ``param``.
    """
    entries = [param_scheduler] if isinstance(param_scheduler, Mapping) else list(param_scheduler)
    horizon = None if run.max_iters is None else run.max_iters - 1
    placed, initial = [], base
    for index, cfg in enumerate(entries):
        where = f'{key}[{index}]' if not isinstance(param_scheduler, Mapping) else key
        if not isinstance(cfg, Mapping) or 'type' not in cfg:
            raise ScheduleConfigError(f'{where} must be a dict with a "type", got {cfg!r}')
        if not isinstance(cfg['type'], str):
            raise ScheduleConfigError(f'{where}.type must be a string, got {cfg["type"]!r}')
        if _param_of(cfg['type'], cfg) != param:
            if cfg['type'] not in PARAM_SCHEDULERS and 'ReduceOnPlateau' not in cfg['type']:
                PARAM_SCHEDULERS.get(cfg['type'], key_path=f'{where}.type')  # unknown: say so
            continue
        sched = _build_one(cfg, where, run)
        if isinstance(sched, OneCycleScheduler):
            if param != 'lr':
                raise ScheduleConfigError(f'{where}: OneCycle only schedules the lr (mmengine asserts it)')
            try:
                initial = sched.initial(np.shape(base))
            except _BadArg as err:
                raise ScheduleConfigError(f'{where}.{err.arg}: {err}') from None
        sched.base = initial  # mmengine's base_values: the group's initial value when it is built
        p = _Placed(sched, index, run.iters_per_epoch, horizon)
        if p.acts:
            placed.append(p)
    if not placed:
        return _constant(base) if param == 'lr' else None

    _check_one_cycle(placed, key)
    components = _components(placed)
    value = base  # before the first step: the optimizer's own value
    for comp in components:  # each starts from the value the previous one left (float64, host)
        comp.entry = value
        if comp.kind == 'replay':
            if comp.t1 is None:
                raise ScheduleConfigError(
                    f'{key}: {", ".join(f"[{p.index}]" for p in comp.members)} overlap with no end; '
                    'give them an end, or pass max_epochs/max_iters so that the run length bounds them')
            comp.table = comp.replay(value)
        if comp.t1 is not None:
            value = comp.value(comp.t1, np)
        comp.exit = value
    return _compose(components, base)


def _check_one_cycle(placed: list[_Placed], key: str) -> None:
    for p in placed:
        if isinstance(p.sched, OneCycleScheduler) and p.k_max is not None and p.k_max > p.sched.total:
            raise ScheduleConfigError(
                f'{key}[{p.index}].total_steps: is {p.sched.total} but the scheduler steps {p.k_max + 1} '
                'times in the run (mmengine raises there); raise total_steps or set end')


def _compose(components: list[_Component], base: float | np.ndarray) -> Schedule:
    def schedule(step):
        dtype = default_float()  # when traced: float64 in a float64 run
        step = jnp.asarray(step)
        i = step[..., None] if np.ndim(base) else step  # param groups along a trailing axis
        out = jnp.asarray(base, dtype) + jnp.zeros(step.shape + np.shape(base), dtype)
        for comp in components:
            inside = comp.value(i)
            if comp.t1 is not None:
                inside = jnp.where(i <= comp.t1, inside, jnp.asarray(comp.exit, dtype))
            out = jnp.where(i >= comp.t0, inside, out)
        return out

    return jax.jit(schedule)  # Python ints then cost one dispatch, not dozens of eager ops
