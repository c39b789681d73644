"""``OPTIMIZER_BUILDERS``: param-wise rules turned into one optax transformation.

An optimizer constructor decides, for every parameter, an ``lr_mult`` and a
``decay_mult`` (mmcv 1.x's ``DefaultOptimizerConstructor`` rules, or MMAction2's
``TSMOptimizerConstructor``). Parameters with equal multipliers form a group; each group
gets its own optimizer (``OPTIMIZERS[type]`` with ``lr * lr_mult`` and
``weight_decay * decay_mult``, like a torch param group), and ``optax.partition`` routes
every leaf to its group. Frozen parameters (``model.frozen_prefixes()``, or ``lr_mult=0``)
go to ``optax.set_to_zero()``: no update and no optimizer state.

A constructor is written as in mmcv: ``add_params(self, params, module)`` walks the model
(``module``, a ``ModuleInfo`` tree: ``module.modules()``, ``m.type``, ``m.parameters()``)
and appends torch-style param groups to ``params``; a subclass may instead override
``param_rule(param)``, one parameter at a time (see docs/customize.md).

``build_optimizer`` is the entry point the engine uses; ``current_lrs`` reads the
learning rate of every group back from the optimizer state for logging.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

import flax.linen as nn
import jax
import optax

from actionjax.config import ConfigError, ConfigKeyError
from actionjax.optim.grad_clip import build_grad_clip
from actionjax.optim.param_info import ModuleInfo, ParamInfo, describe_model, module_tree, name_tree
from actionjax.optim.schedule_builder import ScheduleConfig
from actionjax.registry import OPTIMIZER_BUILDERS, OPTIMIZERS

Schedule = Callable[[Any], Any]
ScheduleArg = ScheduleConfig | Schedule | None
Model = ModuleInfo | Sequence[ParamInfo]  # what the constructor's entry points take
FROZEN = 'frozen'
DEFAULT_GROUP = 'default'
# Keys of a param group appended by add_params: torch's absolute values, or multipliers.
GROUP_KEYS = ('params', 'lr', 'weight_decay', 'lr_mult', 'decay_mult')


class ParamRule(NamedTuple):
    """What the rules give one parameter (torch: group lr / base lr, group wd / base wd)."""

    lr_mult: float = 1.0
    decay_mult: float = 1.0


@dataclasses.dataclass(frozen=True)
class ParamAssignment:
    """A parameter with its rule and the optimizer group it ends up in."""

    info: ParamInfo
    lr_mult: float
    decay_mult: float
    group: str


def group_name(rule: ParamRule) -> str:
    """'default' for (1, 1), else e.g. 'lr2_decay0'; readable as a log key."""
    if rule == ParamRule():
        return DEFAULT_GROUP
    return f'lr{rule.lr_mult:g}_decay{rule.decay_mult:g}'


class ParamwiseCfg(dict):
    """``optimizer.paramwise_cfg`` that remembers which keys the constructor read.

    A constructor subclass reads its own keys (``self.paramwise_cfg['fc_lr5']``) and needs
    to declare nothing; a key that no code reads and no class declares (``paramwise_keys``)
    is a typo, reported once the rules have run.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.read.add(key)
        return super().__contains__(key)

    def items(self):  # noqa: ANN201 - dict's own view types
        self.read.update(self.keys())
        return super().items()

    def values(self):  # noqa: ANN201
        self.read.update(self.keys())
        return super().values()

    def untracked(self) -> dict[str, Any]:
        """A plain copy, for validation that must not count as using a key."""
        return dict.copy(self)


def as_module(model: Model) -> ModuleInfo:
    """``model`` as a ``ModuleInfo`` tree (a list of ``ParamInfo`` is turned into one)."""
    return model if isinstance(model, ModuleInfo) else module_tree(list(model))


@OPTIMIZER_BUILDERS.register_module()
class DefaultOptimizerConstructor:
    """mmcv 1.x's param-wise rules (``paramwise_cfg``) on Flax parameters.

    ``paramwise_cfg`` keys, as in mmcv:

    * ``custom_keys``: ``{key: dict(lr_mult=..., decay_mult=...)}``; a key that is a
      substring of the dotted parameter name sets both multipliers (each defaulting to 1)
      and skips every other rule. The longest matching key wins, ties alphabetically.
    * ``bias_lr_mult``: lr of every ``bias`` except norm-layer biases.
    * ``bias_decay_mult``: decay of biases that are neither in norm layers nor depthwise convs.
    * ``norm_decay_mult``: decay of norm-layer weights and biases.
    * ``dwconv_decay_mult``: decay of 2D depthwise conv weights and biases.
    * ``bypass_duplicate``: accepted; a Flax params tree holds a shared parameter once, so
      there are never duplicates to bypass. ``dcn_offset_lr_mult``: accepted, no DCN here.

    A ``*_decay_mult`` (or a custom key's ``decay_mult``) without ``weight_decay`` in the
    optimizer config is an error, as in mmcv.

    To write your own rules, subclass and override ``add_params(params, module)`` (mmcv's
    signature: walk ``module.modules()`` and append param groups to ``params``) or
    ``param_rule(param)`` (one parameter at a time). Read your own ``paramwise_cfg`` keys
    from ``self.paramwise_cfg``; a key that nothing reads is reported as unknown.
    """

    # Keys accepted even when the rules never read them (a bias rule on a model without biases).
    paramwise_keys: ClassVar[frozenset[str]] = frozenset({
        'custom_keys', 'bias_lr_mult', 'bias_decay_mult', 'norm_decay_mult', 'dwconv_decay_mult',
        'bypass_duplicate', 'dcn_offset_lr_mult'})

    def __init__(self, optimizer_cfg: Mapping[str, Any], paramwise_cfg: Mapping[str, Any] | None = None):
        if not isinstance(optimizer_cfg, Mapping):
            raise TypeError(f'the optimizer config must be a dict, got {type(optimizer_cfg).__name__}')
        if 'type' not in optimizer_cfg:
            raise ConfigKeyError('optimizer config has no "type"; add e.g. type=\'SGD\'')
        self.optimizer_cfg = dict(optimizer_cfg)
        if paramwise_cfg is not None and not isinstance(paramwise_cfg, Mapping):
            raise TypeError('optimizer.paramwise_cfg must be None or a dict, '
                            f'got {type(paramwise_cfg).__name__}')
        self.paramwise_cfg = ParamwiseCfg(paramwise_cfg or {})
        lr = self.optimizer_cfg.get('lr', self.optimizer_cfg.get('learning_rate'))
        self.base_lr: float | None = lr
        self.base_wd: float | None = self.optimizer_cfg.get('weight_decay')
        self._validate_cfg()

    # ------------------------------------------------------------------ validation

    def _validate_cfg(self) -> None:
        cfg = self.paramwise_cfg.untracked()
        custom_keys = cfg.get('custom_keys', {})
        if not isinstance(custom_keys, Mapping):
            raise TypeError('optimizer.paramwise_cfg.custom_keys must be a dict like '
                            f"{{'backbone': dict(lr_mult=0.1)}}, got {type(custom_keys).__name__}")
        for key, value in custom_keys.items():
            if not isinstance(value, Mapping) or set(value) - {'lr_mult', 'decay_mult'}:
                raise ConfigError(f'optimizer.paramwise_cfg.custom_keys[{key!r}] must be a dict with '
                                  f'lr_mult and/or decay_mult, got {value!r}')
            if 'decay_mult' in value and self.base_wd is None:
                raise ConfigError(f'optimizer.paramwise_cfg.custom_keys[{key!r}] sets decay_mult but the '
                                  'optimizer has no weight_decay (base_wd should not be None); add '
                                  'optimizer.weight_decay')
        for key in ('bias_decay_mult', 'norm_decay_mult', 'dwconv_decay_mult'):
            if key in cfg and self.base_wd is None:
                raise ConfigError(f'optimizer.paramwise_cfg.{key} needs optimizer.weight_decay (base_wd '
                                  'should not be None); add weight_decay to the optimizer config')
        self._sorted_keys = sorted(sorted(custom_keys), key=len, reverse=True)

    def _check_keys_used(self) -> None:
        """After the rules ran: every paramwise_cfg key was read or is declared, else it is a typo."""
        cfg = self.paramwise_cfg
        unused = sorted(set(cfg) - cfg.read - self.paramwise_keys)
        if not unused:
            return
        known = sorted(self.paramwise_keys | (cfg.read & set(cfg)))
        hints = []
        for key in unused:
            close = difflib.get_close_matches(key, sorted(self.paramwise_keys | cfg.read), n=1, cutoff=0.6)
            hints.append(f'{key!r}' + (f' (did you mean {close[0]!r}?)' if close else ''))
        raise ConfigKeyError(f'unknown key(s) in optimizer.paramwise_cfg: {", ".join(hints)}; '
                             f'{type(self).__name__} never reads them (it knows {known}). A constructor '
                             'subclass reads its own keys from self.paramwise_cfg; list a key it accepts '
                             'without reading in its paramwise_keys')

    # ------------------------------------------------------------------ rules

    def param_rule(self, param: ParamInfo) -> ParamRule:
        """lr_mult and decay_mult of one parameter (mmcv's ``add_params`` for one leaf)."""
        cfg = self.paramwise_cfg
        # mmcv matches f'{prefix}.{name}': a root-level parameter is '.name'.
        full_name = param.name if param.module else f'.{param.name}'
        for key in self._sorted_keys:
            if key in full_name:
                custom = cfg['custom_keys'][key]
                decay_mult = custom.get('decay_mult', 1.0) if self.base_wd is not None else 1.0
                return ParamRule(custom.get('lr_mult', 1.0), decay_mult)
        is_bias = param.leaf == 'bias'
        lr_mult = cfg.get('bias_lr_mult', 1.0) if is_bias and not param.is_norm else 1.0
        decay_mult = 1.0
        if self.base_wd is not None:
            if param.is_norm:
                decay_mult = cfg.get('norm_decay_mult', 1.0)
            elif param.is_dwconv:
                decay_mult = cfg.get('dwconv_decay_mult', 1.0)
            elif is_bias:
                decay_mult = cfg.get('bias_decay_mult', 1.0)
        return ParamRule(lr_mult, decay_mult)

    def add_params(self, params: list[dict[str, Any]], module: ModuleInfo) -> None:
        """Append the param groups of every parameter of ``module`` to ``params`` (mmcv's hook).

        A group is a dict like torch's: ``'params'`` (a list of ``ParamInfo`` from
        ``m.parameters()``, or their names) and optionally ``'lr'`` and ``'weight_decay'``
        (absolute, as torch and mmcv write them) or ``'lr_mult'`` and ``'decay_mult'``
        (relative to ``optimizer.lr`` / ``weight_decay``); what a group leaves out is the
        optimizer's own value. Every parameter must be in exactly one group.
        """
        if not self.paramwise_cfg:  # mmcv: model.parameters() as one group
            params.append({'params': module.parameters()})
            return
        for p in module.parameters():
            rule = self.param_rule(p)
            params.append({'params': [p], 'lr_mult': rule.lr_mult, 'decay_mult': rule.decay_mult})

    def assign(self, model: Model) -> list[ParamAssignment]:
        """Rules plus freezing: every parameter with its multipliers and group label, in model order.

        ``model`` is ``describe_model(...)``'s tree (or ``describe_params(...)``'s list).
        """
        root = as_module(model)
        params = root.parameters()
        try:
            inspect.signature(self.add_params).bind([], root)
        except TypeError:
            raise TypeError(f'{type(self).__name__}.add_params must take (params, module), as mmcv\'s '
                            'add_params(self, params, module) does: append param groups like '
                            "{'params': m.parameters(), 'lr': ...} to params") from None
        groups: list[dict[str, Any]] = []
        returned = self.add_params(groups, root)
        if returned is not None:
            raise TypeError(f'{type(self).__name__}.add_params returned {type(returned).__name__}; like '
                            "mmcv's, it appends param groups ({'params': [...], 'lr': ...}) to its params "
                            'argument and returns None')
        rules = self._rules_of_groups(groups, params)
        self._check_keys_used()
        out = []
        names: dict[ParamRule, str] = {}
        for p in params:
            rule = rules[p.name]
            if p.frozen or rule.lr_mult == 0:
                group = FROZEN
            else:
                group = names.setdefault(rule, group_name(rule))
                if sum(name == group for name in names.values()) > 1:  # e.g. lr_mult 1.0000001 vs 1
                    group = names[rule] = f'lr{rule.lr_mult:.12g}_decay{rule.decay_mult:.12g}'
            out.append(ParamAssignment(p, rule.lr_mult, rule.decay_mult, group))
        return out

    def _rules_of_groups(self, groups: list[dict[str, Any]], params: Sequence[ParamInfo]
                         ) -> dict[str, ParamRule]:
        """``{name: rule}`` from the param groups ``add_params`` appended (torch's form)."""
        where = f'{type(self).__name__}.add_params'
        known = {p.name for p in params}
        rules: dict[str, ParamRule] = {}
        for index, group in enumerate(groups):
            if not isinstance(group, Mapping) or 'params' not in group:
                raise TypeError(f"{where}: param group {index} must be a dict with 'params', got {group!r}")
            extra = sorted(set(group) - set(GROUP_KEYS))
            if extra:
                raise ConfigError(f'{where}: param group {index} sets {extra}; a group takes '
                                  f'{list(GROUP_KEYS)} (per-group momentum, betas, ... are not supported: '
                                  'one optimizer config serves every group)')
            rule = ParamRule(self._group_mult(group, 'lr', 'lr_mult', self.base_lr, index),
                             self._group_mult(group, 'weight_decay', 'decay_mult', self.base_wd, index))
            members = group['params']
            if isinstance(members, (ParamInfo, str)):
                members = [members]
            for member in members:
                name = member.name if isinstance(member, ParamInfo) else member
                if name not in known:
                    raise ConfigError(f'{where}: param group {index} names {name!r}, which is not a '
                                      'parameter of the model')
                if name in rules:
                    raise ConfigError(f'{where}: {name} is in more than one param group (torch: "some '
                                      'parameters appear in more than one parameter group")')
                rules[name] = rule
        missing = [name for name in known if name not in rules]
        if missing:
            raise ConfigError(f'{where} put {len(missing)} parameter(s) in no param group, e.g. '
                              f'{missing[:5]}; every parameter needs one (lr_mult=0 freezes a parameter)')
        return rules

    def _group_mult(self, group: Mapping[str, Any], absolute: str, relative: str, base: float | None,
                    index: int) -> float:
        """A group's multiplier: ``relative`` as given, or ``absolute / base`` (12 significant digits,
        so that ``0.02 * 5 / 0.02`` is 5), or 1."""
        where = f'{type(self).__name__}.add_params: param group {index}'
        if absolute in group and relative in group:
            raise ConfigError(f'{where} sets both {absolute} and {relative}; give one')
        if relative in group:
            return float(group[relative])
        if absolute not in group:
            return 1.0
        value = float(group[absolute])
        if not base:
            if value == (base or 0.0):
                return 1.0
            key = 'lr' if absolute == 'lr' else 'weight_decay'
            raise ConfigError(f'{where} sets {absolute}={value:g} but optimizer.{key} is {base!r}; set '
                              f'optimizer.{key} (the group values are multiples of it)')
        return float(f'{value / base:.12g}')

    # ------------------------------------------------------------------ transformation

    def lr_argument(self) -> str | None:
        """The name under which ``OPTIMIZERS[type]`` takes its learning rate ('lr' or
        'learning_rate'), or None for an optimizer without one."""
        factory = OPTIMIZERS.get(self.optimizer_cfg['type'], key_path='optimizer.type')
        accepted = inspect.signature(factory).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
            return 'lr'
        return 'lr' if 'lr' in accepted else 'learning_rate' if 'learning_rate' in accepted else None

    def group_hyperparams(self, rule: ParamRule, lr_schedule: ScheduleArg = None,
                          momentum_schedule: ScheduleArg = None) -> dict[str, Any]:
        """The lr and momentum of a group with ``rule``: numbers or ``step -> value`` schedules.

        A ``ScheduleConfig`` is built from the group's own initial value (``optimizer.lr *
        lr_mult``; the optimizer's momentum, or ``betas[0]``), as mmcv and mmengine do, so
        absolute floors such as ``min_lr`` stay unscaled; a plain ``step -> lr`` function is
        multiplied by ``lr_mult``. 'momentum' is present only when it is scheduled.
        An optimizer that takes no lr (``MyOptimizer(a, b, c)``) gets ``'lr': None``.
        """
        if isinstance(lr_schedule, ScheduleConfig) and lr_schedule.cfg is None:
            lr_schedule = None  # the config schedules nothing
        if isinstance(momentum_schedule, ScheduleConfig) and momentum_schedule.cfg is None:
            momentum_schedule = None
        lr_mult = rule.lr_mult
        if self.lr_argument() is None:
            self._check_without_lr(lr_mult, lr_schedule)
            lr = None
        elif isinstance(lr_schedule, ScheduleConfig):
            if self.base_lr is None:
                raise ConfigError('an lr schedule (lr_config / param_scheduler) needs optimizer.lr, the '
                                  'base lr it starts from')
            lr = lr_schedule.build(self.base_lr * lr_mult)
        elif lr_schedule is not None:
            lr = lr_schedule if lr_mult == 1 else _scaled(lr_schedule, lr_mult)
        elif self.base_lr is not None:
            lr = self.base_lr * lr_mult
        elif lr_mult != 1:
            raise ConfigError(f'param-wise lr_mult={lr_mult:g} needs optimizer.lr (base_lr is None)')
        else:
            lr = None
        out: dict[str, Any] = {'lr': lr}
        if isinstance(momentum_schedule, ScheduleConfig):
            out['momentum'] = momentum_schedule.build(self.base_momentum())
        elif momentum_schedule is not None:
            out['momentum'] = momentum_schedule
        return out

    def _check_without_lr(self, lr_mult: float, lr_schedule: ScheduleArg) -> None:
        """An optimizer without an lr argument is used as it is: nothing may ask for an lr."""
        opt_type = self.optimizer_cfg['type']
        factory = OPTIMIZERS.get(opt_type, key_path='optimizer.type')
        takes = f'{opt_type}{inspect.signature(factory)}'
        fix = (f'give {opt_type} an `lr` argument (see docs/customize.md, "A new optimizer") to let the '
               'config set and schedule it')
        if self.base_lr is not None:
            raise TypeError(f'optimizer.lr={self.base_lr!r}, but {takes} takes no lr argument: remove '
                            f'optimizer.lr (one a _base_ file sets stays unless the optimizer dict has '
                            f'_delete_=True), or {fix}')
        if lr_schedule is not None:
            raise TypeError(f'the config schedules the lr (lr_config / param_scheduler), but {takes} '
                            f'takes no lr argument: remove the schedule, or {fix}')
        if lr_mult != 1:
            raise ConfigError(f'the param-wise rules give lr_mult={lr_mult:g}, but {takes} takes no lr '
                              f'argument to multiply: {fix}')

    def base_momentum(self) -> float:
        """The momentum a momentum schedule starts from: ``optimizer.momentum``, else ``betas[0]``
        (the optimizer's defaults where the config leaves them out), as mmcv reads it."""
        params = inspect.signature(OPTIMIZERS.get(self.optimizer_cfg['type'], 'optimizer.type')).parameters
        if 'momentum' in params:
            return self.optimizer_cfg.get('momentum', params['momentum'].default)
        if 'betas' in params:
            return self.optimizer_cfg.get('betas', params['betas'].default)[0]
        raise ConfigError(f'a momentum schedule needs an optimizer with momentum or betas; '
                          f'{self.optimizer_cfg["type"]!r} has neither (remove momentum_config / the '
                          'momentum entries of param_scheduler)')

    def group_optimizer(self, rule: ParamRule, hyperparams: Mapping[str, Any] | None = None
                        ) -> optax.GradientTransformation:
        """``OPTIMIZERS[type]`` with this group's lr, momentum and weight decay, like a torch group.

        ``hyperparams`` defaults to ``group_hyperparams(rule)`` (the config's lr, no schedule).
        """
        if hyperparams is None:
            hyperparams = self.group_hyperparams(rule)
        args = dict(self.optimizer_cfg)
        opt_type = args.pop('type')
        factory = OPTIMIZERS.get(opt_type, key_path='optimizer.type')
        accepted = inspect.signature(factory).parameters
        lr_key = self.lr_argument()
        args.pop('lr', None)
        args.pop('learning_rate', None)
        if lr_key is not None and hyperparams['lr'] is not None:
            args[lr_key] = hyperparams['lr']
        if self.base_wd is not None:
            args['weight_decay'] = self.base_wd * rule.decay_mult
        if 'momentum' in hyperparams:  # mmcv's momentum updater: 'momentum', else betas[0]
            if 'momentum' in accepted:
                args['momentum'] = hyperparams['momentum']
            elif 'betas' in accepted:
                betas = args.get('betas', accepted['betas'].default)
                args['betas'] = (hyperparams['momentum'], betas[1])
            else:
                self.base_momentum()  # raises: the optimizer has no momentum to schedule
        try:
            tx = factory(**args)
        except TypeError as err:
            raise TypeError(f'building optimizer {opt_type!r} (config key optimizer): {err}') from err
        if not isinstance(tx, optax.GradientTransformation):
            raise TypeError(f'OPTIMIZERS[{opt_type!r}] returned {type(tx).__name__}; an optimizer here is a '
                            'function returning an optax.GradientTransformation (a torch.optim.Optimizer '
                            'subclass cannot run on JAX arrays; see docs/customize.md, "A new optimizer")')
        return tx

    def groups(self, model: Model, lr_schedule: ScheduleArg = None,
               momentum_schedule: ScheduleArg = None) -> dict[str, tuple[ParamRule, dict[str, Any]]]:
        """``{group: (rule, {'lr': ..., 'momentum': ...})}`` for every trainable param group.

        What each group's optimizer is built with, so a tool that plots or prints the
        schedules (``tools/plot_lr``) shows exactly what trains.
        """
        return self._groups(self.assign(model), lr_schedule, momentum_schedule)

    def _groups(self, assignments: Sequence[ParamAssignment], lr_schedule: ScheduleArg,
                momentum_schedule: ScheduleArg) -> dict[str, tuple[ParamRule, dict[str, Any]]]:
        out: dict[str, tuple[ParamRule, dict[str, Any]]] = {}
        for a in assignments:
            if a.group != FROZEN and a.group not in out:
                rule = ParamRule(a.lr_mult, a.decay_mult)
                out[a.group] = (rule, self.group_hyperparams(rule, lr_schedule, momentum_schedule))
        return out

    def __call__(self, model: Model, lr_schedule: ScheduleArg = None,
                 momentum_schedule: ScheduleArg = None) -> optax.GradientTransformation:
        """One transformation over ``variables['params']``: per-group optimizers + frozen leaves.

        ``model``: ``describe_model(...)`` (or ``describe_params(...)``). ``lr_schedule`` /
        ``momentum_schedule``: a ``ScheduleConfig`` (built per group from the group's base
        value) or a ``step -> value`` function; None keeps the config's value.
        """
        assignments = self.assign(model)
        labels = {a.info.name: a.group for a in assignments}
        groups = self._groups(assignments, lr_schedule, momentum_schedule)
        transforms: dict[str, optax.GradientTransformation] = {
            group: self.group_optimizer(rule, hyperparams) for group, (rule, hyperparams) in groups.items()}
        if FROZEN in labels.values():
            transforms[FROZEN] = optax.set_to_zero()
        return optax.partition(transforms, lambda tree: name_tree(tree, labels))


def _scaled(schedule: Schedule, mult: float) -> Schedule:
    """``step -> schedule(step) * mult``, for a user's own ``step -> lr`` function."""
    def scaled(step):
        return schedule(step) * mult
    return scaled


@OPTIMIZER_BUILDERS.register_module()
class TSMOptimizerConstructor(DefaultOptimizerConstructor):
    """MMAction2's TSM rules; ``paramwise_cfg=dict(fc_lr5=True)``.

    In module order: the first conv's weight (lr x1, decay x1) and bias (x2, no decay);
    every other conv / fc weight x1 / x1 and bias x2 / no decay; BatchNorm and GroupNorm
    weights and biases x1 / no decay; with ``fc_lr5`` the last fc (the last weight and
    the last bias of those convs / fcs) gets lr x5 (weight) and x10 (bias, no decay).
    Any other module owning parameters is an error, as in MMAction2.
    """

    paramwise_keys: ClassVar[frozenset[str]] = frozenset({'fc_lr5'})
    norm_types: ClassVar[tuple[type, ...]] = (nn.BatchNorm, nn.GroupNorm)  # torch: _BatchNorm, GroupNorm

    def _validate_cfg(self) -> None:
        super()._validate_cfg()
        if 'fc_lr5' not in self.paramwise_cfg:
            raise ConfigKeyError('TSMOptimizerConstructor needs optimizer.paramwise_cfg.fc_lr5 '
                                 '(True or False), e.g. paramwise_cfg=dict(fc_lr5=True)')

    def add_params(self, params: list[dict[str, Any]], module: ModuleInfo) -> None:
        first_conv: list[ParamInfo] = []   # the first conv's weight, then its bias
        weights: list[ParamInfo] = []      # every other conv / fc weight, in order
        biases: list[ParamInfo] = []       # ... and their biases
        norms: list[ParamInfo] = []
        for m in module.modules():
            own = m.parameters(recurse=False)
            if issubclass(m.type, (nn.Conv, nn.Dense)):
                leaves = [p.leaf for p in own]
                if leaves not in (['weight'], ['weight', 'bias']):
                    raise ConfigError(f'TSMOptimizerConstructor: {m.name} has parameters {leaves}; a conv '
                                      'or fc has a weight and maybe a bias')
                if issubclass(m.type, nn.Conv) and not first_conv:
                    first_conv = own
                    continue
                weights.append(own[0])
                biases.extend(own[1:])
            elif issubclass(m.type, self.norm_types):
                norms.extend(own)
            elif own:
                raise ConfigError(f'TSMOptimizerConstructor: new atomic module type {m.type.__name__} at '
                                  f'{m.name!r} owns parameters; give it a learning policy (subclass the '
                                  'constructor and override add_params) or use DefaultOptimizerConstructor')
        if not weights or not biases:
            raise ConfigError('TSMOptimizerConstructor: the model needs a last fc layer with weight and bias '
                              '(MMAction2 pops the last conv/fc weight and bias as the "last fc")')
        fc_weight, fc_bias = weights.pop(), biases.pop()
        fc_lr5 = bool(self.paramwise_cfg['fc_lr5'])
        params.append({'params': first_conv[:1], 'lr_mult': 1, 'decay_mult': 1})
        params.append({'params': first_conv[1:], 'lr_mult': 2, 'decay_mult': 0})
        params.append({'params': weights, 'lr_mult': 1, 'decay_mult': 1})
        params.append({'params': biases, 'lr_mult': 2, 'decay_mult': 0})
        params.append({'params': norms, 'lr_mult': 1, 'decay_mult': 0})
        params.append({'params': [fc_weight], 'lr_mult': 5 if fc_lr5 else 1, 'decay_mult': 1})
        params.append({'params': [fc_bias], 'lr_mult': 10 if fc_lr5 else 2, 'decay_mult': 0})


@OPTIMIZER_BUILDERS.register_module()
class DefaultOptimWrapperConstructor(DefaultOptimizerConstructor):
    """mmengine's rules (MMAction2 1.x ``optim_wrapper.paramwise_cfg``).

    Same keys as mmcv 1.x plus ``flat_decay_mult`` (1-D parameters), but a
    ``*_decay_mult`` applies only when it is set, checked in the order norm, bias,
    depthwise, flat: with only ``bias_decay_mult`` set, norm-layer biases get it too, and
    a depthwise conv's bias takes ``bias_decay_mult`` over ``dwconv_decay_mult``.
    """

    paramwise_keys: ClassVar[frozenset[str]] = (DefaultOptimizerConstructor.paramwise_keys
                                                | {'flat_decay_mult'})

    def param_rule(self, param: ParamInfo) -> ParamRule:
        cfg = self.paramwise_cfg
        full_name = param.name if param.module else f'.{param.name}'
        for key in self._sorted_keys:
            if key in full_name:
                return super().param_rule(param)  # custom keys: as mmcv
        is_bias = param.leaf == 'bias'
        lr_mult = cfg['bias_lr_mult'] if is_bias and not param.is_norm and 'bias_lr_mult' in cfg else 1.0
        decay_mult = 1.0
        if self.base_wd is not None:
            for applies, key in ((param.is_norm, 'norm_decay_mult'), (is_bias, 'bias_decay_mult'),
                                 (param.is_dwconv, 'dwconv_decay_mult'),
                                 (len(param.shape) == 1, 'flat_decay_mult')):
                if applies and key in cfg:
                    decay_mult = cfg[key]
                    break
        return ParamRule(lr_mult, decay_mult)


@OPTIMIZER_BUILDERS.register_module()
class TSMOptimWrapperConstructor(TSMOptimizerConstructor):
    """MMAction2 1.x's name for the same TSM rules."""


# ---------------------------------------------------------------------- entry points


def build_constructor(optimizer_cfg: Mapping[str, Any]) -> DefaultOptimizerConstructor:
    """``OPTIMIZER_BUILDERS[optimizer.constructor]`` (default: DefaultOptimizerConstructor)."""
    if not isinstance(optimizer_cfg, Mapping):
        raise TypeError(f'config key optimizer must be a dict like dict(type=\'SGD\', lr=0.01), '
                        f'got {optimizer_cfg!r}')
    cfg = dict(optimizer_cfg)
    name = cfg.pop('constructor', 'DefaultOptimizerConstructor')
    paramwise_cfg = cfg.pop('paramwise_cfg', None)
    constructor = OPTIMIZER_BUILDERS.get(name, key_path='optimizer.constructor')
    return constructor(cfg, paramwise_cfg)


def build_optimizer(optimizer_cfg: Mapping[str, Any], model: Any, variables: Mapping[str, Any] | None,
                    sample_imgs: Any, lr_schedule: ScheduleArg = None, momentum_schedule: ScheduleArg = None,
                    grad_clip: Mapping[str, Any] | None = None, **init_kwargs: Any
                    ) -> optax.GradientTransformation:
    """The optax transformation for an MMAction2 ``optimizer=`` config.

    ``model`` is traced once (abstractly) on ``sample_imgs`` to learn the module type of
    each parameter. ``lr_schedule``: a ``ScheduleConfig`` (each group's curve is built from
    its own base lr) or a ``step -> lr`` function for lr_mult 1; None keeps ``optimizer.lr``.
    ``momentum_schedule`` drives SGD/RMSprop momentum or Adam's ``betas[0]`` the same way.
    ``grad_clip`` (``dict(max_norm, norm_type)``) clips the trainable gradients first.
    ``init_kwargs`` go to the tracing ``model.init`` (``method='predict'`` with a batch dict).
    """
    tree = describe_model(model, variables, sample_imgs, **init_kwargs)
    tx = build_constructor(optimizer_cfg)(tree, lr_schedule=lr_schedule, momentum_schedule=momentum_schedule)
    trainable = {p.name: not p.frozen for p in tree.parameters()}
    clip = build_grad_clip(grad_clip, mask=lambda tree: name_tree(tree, trainable))
    return tx if clip is None else optax.chain(clip, tx)


def current_hyperparams(opt_state: Any, name: str = 'lr') -> dict[str, jax.Array]:
    """``{group: value of the last update}`` of an injected hyperparameter (jit-safe).

    ``name`` is 'lr' (also found as 'learning_rate') or 'momentum' (SGD/RMSprop's
    ``momentum``, Adam's ``b1``), for a state made by ``build_optimizer``. A momentum is
    found only when it is scheduled (a constant one is folded into the compiled update).
    'default' (lr_mult 1, decay_mult 1) comes first when present: it is what mmcv logs as
    ``lr``. Frozen parameters have no lr.
    """
    keys = {'lr': ('lr', 'learning_rate'), 'momentum': ('momentum', 'b1')}[name]
    found: dict[str, jax.Array] = {}

    def visit(node: Any, group: str) -> None:
        inner = getattr(node, 'inner_states', None)
        hyperparams = getattr(node, 'hyperparams', None)
        if isinstance(inner, Mapping):  # optax.partition
            for label, sub in inner.items():
                visit(sub, label)
        elif isinstance(hyperparams, Mapping) and any(k in hyperparams for k in keys):
            found.setdefault(group, next(hyperparams[k] for k in keys if k in hyperparams))
        elif isinstance(node, tuple | list):
            for sub in node:
                visit(sub, group)
        elif isinstance(node, Mapping):
            for sub in node.values():
                visit(sub, group)

    visit(opt_state, DEFAULT_GROUP)
    return dict(sorted(found.items(), key=lambda kv: (kv[0] != DEFAULT_GROUP, kv[0])))


def current_lrs(opt_state: Any) -> dict[str, jax.Array]:
    """``{group: lr of the last update}``; see ``current_hyperparams``."""
    return current_hyperparams(opt_state, 'lr')
