"""Registries: MMAction2's names mapped to the classes and functions that build things.

A registry maps a ``type`` string from a config to a callable. ``build(cfg)`` pops
``type`` from a copy of ``cfg`` and calls the registered object with the rest as
keyword arguments, so ``dict(type='ResNet', depth=50)`` becomes ``ResNet(depth=50)``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any


class RegistryError(KeyError):
    """An unknown or duplicate name; the message says which registry and what to do."""

    def __str__(self) -> str:  # KeyError would repr() the message and add quotes
        return str(self.args[0]) if self.args else ''


class Registry:
    """A name -> callable table with MMAction2's ``register_module`` and ``build``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._entries: dict[str, Callable[..., Any]] = {}

    def __repr__(self) -> str:
        return f'Registry({self.name!r}, {sorted(self._entries)})'

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def keys(self) -> list[str]:
        return sorted(self._entries)

    def register_module(
        self,
        name: str | Callable[..., Any] | None = None,
        force: bool = False,
        module: Callable[..., Any] | None = None,
    ) -> Callable[..., Any]:
        """Register a class or function, as a decorator or directly.

        ``@REG.register_module()``, ``@REG.register_module('Name')``,
        ``@REG.register_module(name='Name', force=True)`` and
        ``REG.register_module(module=fn)`` all work.
        """
        if callable(name) and module is None:  # bare @REG.register_module
            return self._add(name, None, force)
        if module is not None:
            self._add(module, name, force)
            return module

        def decorator(obj: Callable[..., Any]) -> Callable[..., Any]:
            return self._add(obj, name, force)

        return decorator

    def _add(self, obj: Callable[..., Any], name: Any, force: bool) -> Callable[..., Any]:
        if not callable(obj):
            raise TypeError(f'{self.name}: can only register classes or functions, got {obj!r}')
        key = name if name is not None else obj.__name__
        if not isinstance(key, str):
            raise TypeError(f'{self.name}: name must be a string, got {key!r}')
        if key in self._entries and not force:
            raise RegistryError(
                f'{key!r} is already registered in {self.name} (by {self._entries[key]!r}); '
                'pass force=True to replace it or choose another name')
        self._entries[key] = obj
        return obj

    def get(self, name: str, key_path: str | None = None) -> Callable[..., Any]:
        """The object registered as ``name``; unknown names raise with suggestions."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise RegistryError(self._unknown_message(name, key_path)) from None

    def _unknown_message(self, name: Any, key_path: str | None) -> str:
        where = f' (config key {key_path!r})' if key_path else ''
        close = difflib.get_close_matches(str(name), self._entries, n=3, cutoff=0.5)
        if not close:  # case-insensitive substring matches catch 'resnet' -> 'ResNet'
            close = [k for k in sorted(self._entries) if str(name).lower() in k.lower()][:3]
        hint = f'did you mean {", ".join(map(repr, close))}?' if close else (
            f'registered: {", ".join(sorted(self._entries)) or "nothing"}')
        return (f'{name!r} is not registered in {self.name}{where}; {hint} '
                '(a custom module must be imported, e.g. via custom_imports in the config)')

    def build(self, cfg: Mapping[str, Any], key_path: str | None = None, **default_args: Any) -> Any:
        """Build ``cfg['type']`` with the other keys as arguments.

        ``default_args`` fill in arguments the config does not set. ``cfg`` is not
        modified. ``key_path`` (e.g. ``'model.backbone'``) makes error messages name
        the config key.
        """
        if not isinstance(cfg, Mapping):
            where = f'config key {key_path!r}' if key_path else f'{self.name} config'
            raise TypeError(f'{where} must be a dict with a "type" key, got {cfg!r}')
        if 'type' not in cfg:
            where = f'config key {key_path!r}' if key_path else f'a {self.name} config'
            raise RegistryError(f'{where} has no "type"; add e.g. type={(self.keys() or ["..."])[0]!r}')
        args = dict(cfg)
        obj_type = args.pop('type')
        for key, value in default_args.items():
            args.setdefault(key, value)
        if callable(obj_type):  # a config may hold the class itself
            return obj_type(**args)
        type_path = f'{key_path}.type' if key_path else None
        factory = self.get(obj_type, type_path)
        try:
            return factory(**args)
        except TypeError as err:
            where = f' (config key {key_path!r})' if key_path else ''
            raise TypeError(f'building {obj_type!r} from {self.name}{where}: {err}') from err


BACKBONES = Registry('BACKBONES')
NECKS = Registry('NECKS')
HEADS = Registry('HEADS')
RECOGNIZERS = Registry('RECOGNIZERS')
LOCALIZERS = Registry('LOCALIZERS')
LOSSES = Registry('LOSSES')
OPTIMIZERS = Registry('OPTIMIZERS')
OPTIMIZER_BUILDERS = Registry('OPTIMIZER_BUILDERS')
LR_SCHEDULES = Registry('LR_SCHEDULES')
DATASETS = Registry('DATASETS')
PIPELINES = Registry('PIPELINES')
# Metrics on host predictions: process(predictions, batch) per batch, then compute(dataset).
METRICS = Registry('METRICS')
