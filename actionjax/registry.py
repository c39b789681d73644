"""Registries: MMAction2's names mapped to the classes and functions that build things.

A registry maps a ``type`` string from a config to a callable. ``build(cfg)`` pops
``type`` from a copy of ``cfg`` and calls the registered object with the rest as
keyword arguments, so ``dict(type='ResNet', depth=50)`` becomes ``ResNet(depth=50)``.

Every registry is complete on first use: looking a name up imports the package that
registers actionjax's built-in entries (``BACKBONES`` imports ``actionjax.models``), so
``from actionjax.registry import PIPELINES`` sees every pipeline step without the user
importing submodules first. The import happens at lookup time, not when this module
loads, so no module imports a package that imports it back.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Mapping
from typing import Any


class RegistryError(KeyError):
    """An unknown or duplicate name; the message says which registry and what to do."""

    def __str__(self) -> str:  # KeyError would repr() the message and add quotes
        return str(self.args[0]) if self.args else ''


class Registry:
    """A name -> callable table with MMAction2's ``register_module`` and ``build``."""

    def __init__(self, name: str, builtins: str | None = None) -> None:
        self.name = name
        self.builtins = builtins  # the package whose import registers the built-in entries
        self._entries: dict[str, Callable[..., Any]] = {}

    @property
    def entries(self) -> dict[str, Callable[..., Any]]:
        """Every entry, the built-in ones included (their package is imported on first use)."""
        if self.builtins is not None:
            package, self.builtins = self.builtins, None
            importlib.import_module(package)
        return self._entries

    def __repr__(self) -> str:
        return f'Registry({self.name!r}, {sorted(self.entries)})'

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def keys(self) -> list[str]:
        return sorted(self.entries)

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
            return self.entries[name]
        except (KeyError, TypeError):
            raise RegistryError(self._unknown_message(name, key_path)) from None

    def _unknown_message(self, name: Any, key_path: str | None) -> str:
        where = f' (config key {key_path!r})' if key_path else ''
        close = difflib.get_close_matches(str(name), self.entries, n=3, cutoff=0.5)
        if not close:  # case-insensitive substring matches catch 'resnet' -> 'ResNet'
            close = [k for k in sorted(self.entries) if str(name).lower() in k.lower()][:3]
        hint = f'did you mean {", ".join(map(repr, close))}?' if close else (
            f'registered: {", ".join(sorted(self.entries)) or "nothing"}')
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


BACKBONES = Registry('BACKBONES', builtins='actionjax.models')
NECKS = Registry('NECKS', builtins='actionjax.models')
HEADS = Registry('HEADS', builtins='actionjax.models')
RECOGNIZERS = Registry('RECOGNIZERS', builtins='actionjax.models')
LOCALIZERS = Registry('LOCALIZERS', builtins='actionjax.models')
LOSSES = Registry('LOSSES', builtins='actionjax.models')
OPTIMIZERS = Registry('OPTIMIZERS', builtins='actionjax.optim')
OPTIMIZER_BUILDERS = Registry('OPTIMIZER_BUILDERS', builtins='actionjax.optim')
LR_SCHEDULES = Registry('LR_SCHEDULES', builtins='actionjax.optim')
DATASETS = Registry('DATASETS', builtins='actionjax.data')
PIPELINES = Registry('PIPELINES', builtins='actionjax.data.pipelines')
# Metrics on host predictions: process(predictions, batch) per batch, then compute(dataset).
METRICS = Registry('METRICS', builtins='actionjax.metrics')
