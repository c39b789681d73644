"""Optimizers (``OPTIMIZERS``), param-wise constructors (``OPTIMIZER_BUILDERS``), grad clipping,
lr / momentum schedules (``LR_SCHEDULES``, actionjax/optim/schedules.py).

``build_optimizer(optimizer_cfg, model, variables, sample_imgs, lr_schedule=...,
momentum_schedule=..., grad_clip=...)`` turns an MMAction2 ``optimizer=`` config into one
optax transformation that holds each param group's lr and momentum schedules;
``current_hyperparams(opt_state, 'lr')`` reads back what each group used in the last step.
"""

from actionjax.optim.constructors import (
    DefaultOptimizerConstructor,
    ParamAssignment,
    ParamRule,
    TSMOptimizerConstructor,
    build_constructor,
    build_optimizer,
    current_hyperparams,
    current_lrs,
)
from actionjax.optim.grad_clip import build_grad_clip, clip_grad_norm
from actionjax.optim.layer_decay import LearningRateDecayOptimizerConstructor  # noqa: F401 (registers)
from actionjax.optim.optimizers import (
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    CopyOfSGD,
    RMSprop,
)
from actionjax.optim.param_info import ModuleInfo, ParamInfo, describe_model, describe_params
from actionjax.optim.schedule_builder import ScheduleConfig, build_lr_schedule, build_momentum_schedule
from actionjax.optim.swin_constructor import SwinOptimWrapperConstructor  # noqa: F401 (registers)

__all__ = [
    'SGD', 'Adadelta', 'Adagrad', 'Adam', 'AdamW', 'Adamax', 'CopyOfSGD', 'RMSprop',
    'DefaultOptimizerConstructor', 'TSMOptimizerConstructor', 'ModuleInfo', 'ParamAssignment', 'ParamInfo',
    'ParamRule',
    'ScheduleConfig', 'build_constructor', 'build_grad_clip', 'build_lr_schedule', 'build_momentum_schedule',
    'build_optimizer', 'clip_grad_norm', 'current_hyperparams', 'current_lrs', 'describe_model',
    'describe_params',
]
