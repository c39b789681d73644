"""MMAction2's ``SwinOptimWrapperConstructor``: lr / decay multipliers by substring, multiplied.

Its ``paramwise_cfg`` maps substrings to multipliers directly (no ``custom_keys``), as the
Video Swin recipes write it::

    paramwise_cfg=dict(absolute_pos_embed=dict(decay_mult=0.),
                       relative_position_bias_table=dict(decay_mult=0.),
                       norm=dict(decay_mult=0.), backbone=dict(lr_mult=0.1))

A parameter takes the *product* of the multipliers of every key found in its name
(MMAction2 prefixes the names with ``base.``: ``base.backbone.norm3.weight``), unlike
mmengine's ``custom_keys`` where only the longest key counts. No other rule applies: a
bias or norm parameter matched by no key keeps the base lr and weight decay.
"""

from __future__ import annotations

from collections.abc import Mapping

from actionjax.config import ConfigError
from actionjax.optim.constructors import DefaultOptimWrapperConstructor, ParamRule
from actionjax.optim.param_info import ParamInfo
from actionjax.registry import OPTIMIZER_BUILDERS

ROOT_PREFIX = 'base'  # what MMAction2's add_params calls the model


@OPTIMIZER_BUILDERS.register_module()
class SwinOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Every ``paramwise_cfg`` key is a substring rule ``dict(lr_mult=..., decay_mult=...)``."""

    def _validate_cfg(self) -> None:
        for key, value in self.paramwise_cfg.untracked().items():
            if not isinstance(value, Mapping) or set(value) - {'lr_mult', 'decay_mult'}:
                raise ConfigError(f'optimizer.paramwise_cfg.{key} must be a dict with lr_mult and/or '
                                  f'decay_mult for SwinOptimWrapperConstructor, got {value!r}')

    def param_rule(self, param: ParamInfo) -> ParamRule:
        full_name = f'{ROOT_PREFIX}.{param.name}'
        lr_mult = decay_mult = 1.0
        for key, value in self.paramwise_cfg.items():
            if key in full_name:
                lr_mult *= value.get('lr_mult', 1.0)
                decay_mult *= value.get('decay_mult', 1.0)
        return ParamRule(lr_mult, decay_mult if self.base_wd is not None else 1.0)
