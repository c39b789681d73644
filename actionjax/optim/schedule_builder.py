"""From a schedule config to ``step -> value``: mmcv updater dicts or mmengine scheduler lists.

``lr_config = dict(policy='step', ...)`` (MMAction2 0.x) goes to mmcv's updater rules in
``schedules.py``; ``param_scheduler = [dict(type='LinearLR', ...), ...]`` (1.x) to mmengine's
schedulers in ``param_schedulers.py``. Either way the result is a pure, jit-safe function of
the global iteration.

A ``ScheduleConfig`` is a schedule config together with the run it spans. The optimizer
constructor builds one schedule per param group from it, from that group's own base value
(``optimizer.lr * lr_mult``), as mmcv and mmengine compute each group's curve from the
group's initial lr: absolute floors such as ``min_lr`` or ``eta_min`` are not scaled.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from actionjax.optim.param_schedulers import build_param_schedule
from actionjax.optim.schedules import (
    RunLength,
    Schedule,
    _constant,
    host_base,
    mmcv_lr_schedule,
    mmcv_momentum_schedule,
)

ScheduleCfg = Mapping[str, Any] | Sequence[Mapping[str, Any]]


def is_param_scheduler(cfg: Any) -> bool:
    """mmengine form: a list of dicts, or one dict with ``type`` (lr_config dicts have ``policy``)."""
    if isinstance(cfg, Mapping):
        return 'type' in cfg and 'policy' not in cfg
    return isinstance(cfg, (list, tuple))


def build_lr_schedule(lr_config: ScheduleCfg | None, base_lr: float | Sequence[float],
                      iters_per_epoch: int | None, max_epochs: int | None = None,
                      max_iters: int | None = None, *, key: str | None = None) -> Schedule:
    """``step -> lr`` for an mmcv ``lr_config`` dict or an mmengine ``param_scheduler`` list.

    Args:
        lr_config: ``dict(policy='step', step=[40, 80], warmup='linear', ...)`` as mmcv's
            LrUpdaterHook takes it, or a ``param_scheduler`` list (``[dict(type='LinearLR',
            ...), ...]``; its momentum entries are skipped). None keeps the lr at ``base_lr``.
        base_lr: the param group's initial lr; a list gives one value per group and
            ``fn(step)`` returns a vector.
        iters_per_epoch: the length of the train loader.
        max_epochs / max_iters: the run length; needed by the policies that anneal over the
            run (poly, cosine, cyclic, ...). Only ``max_iters`` means an iteration-based run.
        key: the config key used in error messages (default ``'lr_config'`` /
            ``'param_scheduler'`` by form).

    Returns:
        ``fn(step)``: the lr of the optimizer step at global iteration ``step`` (0-based),
        float32 (float64 under ``jax_enable_x64``); works on Python ints and on int32 arrays
        under ``jax.jit``.
    """
    run = RunLength(iters_per_epoch, max_epochs, max_iters)
    if is_param_scheduler(lr_config):
        base = host_base(base_lr, 'base_lr')
        return build_param_schedule(lr_config, 'lr', base, run, key=key or 'param_scheduler')
    base = host_base(base_lr, 'base_lr (optimizer.lr)')
    if lr_config is None:
        return _constant(base)
    return mmcv_lr_schedule(lr_config, base, run, key or 'lr_config')


def build_momentum_schedule(momentum_config: ScheduleCfg | None,
                            base_momentum: float | Sequence[float] | None, iters_per_epoch: int | None,
                            max_epochs: int | None = None, max_iters: int | None = None, *,
                            key: str | None = None) -> Schedule | None:
    """``step -> momentum`` for an mmcv ``momentum_config`` (or the momentum entries of a
    ``param_scheduler`` list); None when there is nothing to schedule.

    ``base_momentum`` is the optimizer's momentum (Adam: ``betas[0]``), as mmcv's
    MomentumUpdaterHook reads it; the other arguments are as for ``build_lr_schedule``.
    """
    if momentum_config is None:
        return None
    run = RunLength(iters_per_epoch, max_epochs, max_iters)
    if is_param_scheduler(momentum_config):
        base = host_base(base_momentum, 'base_momentum (optimizer momentum)')
        return build_param_schedule(momentum_config, 'momentum', base, run, key=key or 'param_scheduler')
    base = host_base(base_momentum, 'base_momentum (optimizer momentum or betas[0])')
    return mmcv_momentum_schedule(momentum_config, base, run, key or 'momentum_config')


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
    """A schedule config and the run it spans; ``build(base)`` is one param group's curve.

    ``param`` is 'lr' or 'momentum'; ``cfg`` an ``lr_config`` / ``momentum_config`` dict or a
    ``param_scheduler`` list.
    """

    cfg: Any
    param: str = 'lr'
    iters_per_epoch: int | None = None
    max_epochs: int | None = None
    max_iters: int | None = None

    def build(self, base: float) -> Schedule | None:
        builder = build_lr_schedule if self.param == 'lr' else build_momentum_schedule
        return builder(self.cfg, base, self.iters_per_epoch, self.max_epochs, self.max_iters)
