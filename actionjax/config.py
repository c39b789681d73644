"""MMAction2-style ``.py`` configs: ``_base_`` inheritance, ``_delete_``, ``--cfg-options``.

A config file is Python; its public globals become the config's keys. Semantics follow
mmcv 1.x's ``Config``:

* ``_base_ = 'x.py'`` or a list of files, relative to the config file, loaded first and
  merged in order; the file's own keys are merged on top. Dicts merge recursively, lists
  and scalars replace. A dict with ``_delete_=True`` replaces the base dict instead.
  Two sibling bases defining the same top-level key is an error.
* ``custom_imports = dict(imports=['my_pkg.my_module'], allow_failed_imports=False)``
  imports user modules so their ``@REGISTRY.register_module()`` calls run.
* ``{{_base_.model.backbone}}`` in a file's text is the merged bases' value, and the code
  can read ``_base_.model.backbone.depth`` (mmengine), e.g. to derive a value from a base.
* ``cfg.merge_from_dict({'model.backbone.depth': 101, 'data.train.pipeline.0.clip_len': 2})``
  overrides nested values, list elements by index. A key that does not exist is added,
  as in mmengine (``model.backbone.norm_eval=True``); when it looks like a typo of an
  existing key, a warning names that key (``+path`` adds without the warning).
"""

from __future__ import annotations

import argparse
import ast
import copy
import difflib
import importlib
import os
import pprint
import re
import sys
import types
from collections.abc import Iterable, Mapping
from typing import Any

BASE_KEY = '_base_'
DELETE_KEY = '_delete_'


class ConfigError(ValueError):
    """A config that cannot be loaded or merged; the message names the file or key."""


class ConfigKeyError(ConfigError, KeyError):
    """A missing or unknown config key, where callers have long caught ``KeyError``.

    Command-line tools print a ``ConfigError`` as one line; a plain ``KeyError`` (from user
    code, or a bug) keeps its traceback.
    """

    def __str__(self) -> str:  # KeyError would repr() the message and add quotes
        return str(self.args[0]) if self.args else ''


class ConfigDict(dict):
    """A dict whose keys are also attributes; nested dicts become ConfigDicts too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for key, value in self.items():
            dict.__setitem__(self, key, _wrap(value))

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            close = difflib.get_close_matches(name, [str(k) for k in self], n=3)
            hint = f'; did you mean {", ".join(close)}?' if close else ''
            raise AttributeError(f'config has no key {name!r}{hint}') from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        del self[name]

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, _wrap(value))

    def __deepcopy__(self, memo: dict) -> ConfigDict:
        return ConfigDict({k: copy.deepcopy(v, memo) for k, v in self.items()})

    def to_dict(self) -> dict:
        """A plain ``dict``/``list`` copy, e.g. to hand to code that type-checks ``dict``."""
        return _unwrap(self)


def _wrap(value: Any) -> Any:
    if isinstance(value, dict) and not isinstance(value, ConfigDict):
        return ConfigDict(value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    return value


def _unwrap(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_unwrap(v) for v in value)
    return value


class Config(ConfigDict):
    """A loaded config: a ConfigDict that remembers the file it came from."""

    def __init__(self, cfg_dict: Mapping[str, Any] | None = None, filename: str | None = None,
                 source: Config | None = None) -> None:
        super().__init__(cfg_dict or {})
        object.__setattr__(self, 'filename', filename)
        object.__setattr__(self, 'source', source)  # a runtime config's file config (to_runtime_config)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ('filename', 'source'):  # attributes of the Config, not config keys
            object.__setattr__(self, name, value)
        else:
            self[name] = value

    def __deepcopy__(self, memo: dict) -> Config:
        return Config({k: copy.deepcopy(v, memo) for k, v in self.items()}, self.filename, self.source)

    def __repr__(self) -> str:
        return f'Config(filename={self.filename!r}):\n{self.pretty_text}'

    @staticmethod
    def fromfile(filename: str | os.PathLike, import_custom_modules: bool = True) -> Config:
        """Load a ``.py`` config with its ``_base_`` chain, then run its ``custom_imports``."""
        filename = os.path.abspath(os.fspath(filename))
        cfg = Config(_load_with_bases(filename, chain=()), filename)
        if import_custom_modules and cfg.get('custom_imports'):
            import_modules_from_strings(**cfg['custom_imports'])
        return cfg

    def merge_from_dict(self, options: Mapping[str, Any]) -> None:
        """Override values by dotted paths: ``{'model.backbone.depth': 101}``.

        Integer path parts index into lists (``data.train.pipeline.0.clip_len``). Missing
        keys are added (a warning names a likely typo; ``+a.b.new_key`` adds silently).
        """
        for path, value in options.items():
            _set_by_path(self, path, value)

    @property
    def pretty_text(self) -> str:
        """The config as Python source: ``key = value`` lines, dicts as ``dict(...)``."""
        return ''.join(f'{key} = {_format_value(value, len(key) + 3)}\n' for key, value in self.items())

    def dump(self, path: str | os.PathLike) -> None:
        """Write the resolved config as a ``.py`` file that loads back to the same dict."""
        text = self.pretty_text
        try:
            reloaded = _exec_config_source(text, os.fspath(path))
        except Exception as err:  # noqa: BLE001 - any failure means the dump would not load
            raise ConfigError(f'config cannot be written as Python source: {err}') from err
        if reloaded != _unwrap(self):
            raise ConfigError('config holds values that do not survive a dump (objects that are '
                              'not literals); keep configs to dicts, lists, numbers and strings')
        with open(path, 'w') as f:
            f.write(text)


def _exec_config_source(source: str | ast.Module, filename: str, base: Mapping[str, Any] | None = None
                        ) -> dict[str, Any]:
    """Run config source and return its public, non-module, non-function globals.

    ``base`` (the merged base configs) is visible to the code as ``_base_``, so a file may
    read ``_base_.model.backbone.depth`` as mmengine allows.
    """
    try:
        code = compile(source, filename, 'exec')
    except SyntaxError as err:
        raise ConfigError(f'syntax error in config {err.filename}, line {err.lineno}: {err.msg}') from None
    namespace: dict[str, Any] = {'__file__': filename, '__name__': '__actionjax_config__'}
    if base is not None:
        namespace[BASE_KEY] = ConfigDict(copy.deepcopy(dict(base)))
    config_dir = os.path.dirname(filename)
    sys.path.insert(0, config_dir)  # a config may import a helper module beside it
    try:
        exec(code, namespace)
    except Exception as err:
        raise ConfigError(f'error while executing config {filename}: {type(err).__name__}: {err}') from err
    finally:
        sys.path.remove(config_dir)
    return {
        name: value for name, value in namespace.items()
        if not name.startswith('__') and name != BASE_KEY
        and not isinstance(value, (types.ModuleType, types.FunctionType, type))
    }


# ``{{_base_.a.b}}`` in a config's text: the value of ``a.b`` in the merged bases (mmcv, mmengine).
_BASE_REFERENCE = re.compile(r'\{\{\s*' + BASE_KEY + r'\.([\w.]+)\s*\}\}')


def _split_bases(source: str, filename: str) -> tuple[list[str], ast.Module, dict[str, str]]:
    """The ``_base_`` file list, the rest of the code, and the ``{{_base_.x}}`` placeholders.

    Each ``{{_base_.x}}`` becomes a unique string literal, replaced by the base value after
    the file ran; the ``_base_ = [...]`` assignment is taken out (it must be a literal), so
    the code sees ``_base_`` as the merged base config instead.
    """
    placeholders: dict[str, str] = {}

    def placeholder(match: re.Match) -> str:
        token = f'__actionjax_base_{len(placeholders)}_{match.group(1)}__'
        placeholders[token] = match.group(1)
        return repr(token)

    source = _BASE_REFERENCE.sub(placeholder, source)
    try:
        tree = ast.parse(source, filename)
    except SyntaxError as err:
        raise ConfigError(f'syntax error in config {err.filename}, line {err.lineno}: {err.msg}') from None
    bases: list[str] = []
    body = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(t, ast.Name) and t.id == BASE_KEY for t in targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                raise ConfigError(f'{filename}: _base_ must be a file name or a list of them '
                                  '(a literal)') from None
            bases = [value] if isinstance(value, str) else list(value)
        else:
            body.append(node)
    tree.body = body
    return bases, tree, placeholders


def _substitute(value: Any, placeholders: Mapping[str, str], base: Mapping[str, Any], filename: str) -> Any:
    if isinstance(value, str) and value in placeholders:
        node: Any = base
        for key in placeholders[value].split('.'):
            if isinstance(node, (list, tuple)) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            elif isinstance(node, Mapping) and key in node:
                node = node[key]
            else:
                raise ConfigError(f'{filename}: {{{{_base_.{placeholders[value]}}}}} names no value of the '
                                  'base configs')
        return copy.deepcopy(node)
    if isinstance(value, dict):
        return {k: _substitute(v, placeholders, base, filename) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_substitute(v, placeholders, base, filename) for v in value)
    return value


def _load_with_bases(filename: str, chain: tuple[str, ...]) -> dict[str, Any]:
    if filename in chain:
        cycle = ' -> '.join(os.path.basename(f) for f in (*chain, filename))
        raise ConfigError(f'_base_ cycle: {cycle}')
    if not os.path.isfile(filename):
        origin = f' (listed in _base_ of {chain[-1]})' if chain else ''
        raise ConfigError(f'config file not found: {filename}{origin}')
    if not filename.endswith('.py'):
        raise ConfigError(f'only .py configs are supported, got {filename}')
    with open(filename, encoding='utf-8') as f:
        base_files, code, placeholders = _split_bases(f.read(), filename)

    merged: dict[str, Any] = {}
    key_origin: dict[str, str] = {}
    for base in base_files:
        base_path = os.path.normpath(os.path.join(os.path.dirname(filename), base))
        base_cfg = _load_with_bases(base_path, (*chain, filename))
        for key in base_cfg:
            if key in merged:
                raise ConfigError(f'duplicate key {key!r} in sibling bases {key_origin[key]} and '
                                  f'{base_path} (of {filename}); define it in one base only')
            key_origin[key] = base_path
        merged.update(base_cfg)
    own = _exec_config_source(code, filename, merged)
    own = _substitute(own, placeholders, merged, filename)
    return _strip_delete(_merge(own, merged, prefix=''))


def _merge(new: Mapping[str, Any], base: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """``new`` merged into a copy of ``base``: dicts recursively, anything else replaced."""
    out = copy.deepcopy(dict(base))
    for key, value in new.items():
        if isinstance(value, dict) and not value.get(DELETE_KEY, False) and key in out:
            if not isinstance(out[key], dict):
                raise ConfigError(
                    f'config key {prefix}{key!r} is a dict here but a {type(out[key]).__name__} in the '
                    f'base; add {DELETE_KEY}=True to the dict to replace the base value')
            out[key] = _merge(value, out[key], prefix=f'{prefix}{key}.')
        else:
            out[key] = copy.deepcopy(value)
    return out


def _strip_delete(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_delete(v) for k, v in value.items() if k != DELETE_KEY}
    if isinstance(value, list):
        return [_strip_delete(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_strip_delete(v) for v in value)
    return value


def _set_by_path(cfg: dict, path: str, value: Any) -> None:
    add = path.startswith('+')
    keys = path.lstrip('+').split('.')
    node: Any = cfg
    for depth, key in enumerate(keys):
        here = '.'.join(keys[:depth + 1])
        last = depth == len(keys) - 1
        if isinstance(node, list):
            if not key.lstrip('-').isdigit():
                raise ConfigError(f'cfg-options {path!r}: {".".join(keys[:depth]) or "the config"} is a '
                                  f'list; index it with a number, e.g. {".".join(keys[:depth])}.0')
            index = int(key)
            if not -len(node) <= index < len(node):
                raise ConfigError(f'cfg-options {path!r}: index {index} is out of range for '
                                  f'{".".join(keys[:depth])} (length {len(node)})')
            if last:
                node[index] = _merged_value(value, node[index])
                return
            node = node[index]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f'cfg-options {path!r}: {".".join(keys[:depth])} is a '
                              f'{type(node).__name__}, not a dict, so it has no key {key!r}')
        if key not in node:
            # mmengine adds a missing key; one that looks like a typo of a sibling is worth a word
            close = difflib.get_close_matches(key, [str(k) for k in node], n=1, cutoff=0.8)
            if close and not add:
                print(f'warning: cfg-options {path!r}: the config has no key {here!r} and it is added; '
                      f'did you mean {".".join(keys[:depth] + [close[0]])!r}?', file=sys.stderr)
            if last:
                node[key] = value
                return
            node[key] = {}
        if last:
            node[key] = _merged_value(value, node[key])
            return
        node = node[key]


def _merged_value(value: Any, old: Any) -> Any:
    """An override dict merges into an existing dict (unless ``_delete_=True``), as in mmcv."""
    if isinstance(value, dict) and isinstance(old, dict) and not value.get(DELETE_KEY, False):
        return _strip_delete(_merge(value, old, prefix=''))
    return _strip_delete(value)


def import_modules_from_strings(imports: str | Iterable[str], allow_failed_imports: bool = False) -> None:
    """Import user modules named in ``custom_imports`` so their registrations run."""
    if isinstance(imports, str):
        imports = [imports]
    for name in imports:
        if not isinstance(name, str):
            raise ConfigError(f'custom_imports.imports must be module names (strings), got {name!r}')
        try:
            importlib.import_module(name)
        except ImportError as err:
            if not allow_failed_imports:
                raise ConfigError(f'custom_imports: cannot import {name!r} ({err}); check the module '
                                  'is on PYTHONPATH or set allow_failed_imports=True') from err
            print(f'warning: custom_imports: {name!r} failed to import and was skipped ({err})',
                  file=sys.stderr)


def _format_value(value: Any, indent: int) -> str:
    if isinstance(value, dict):
        if not value:
            return 'dict()'
        if all(isinstance(k, str) and k.isidentifier() and k not in _KEYWORDS for k in value):
            pad = ' ' * (indent + 5)
            items = [f'{k}={_format_value(v, indent + 5 + len(k) + 1)}' for k, v in value.items()]
            one_line = 'dict(' + ', '.join(items) + ')'
            if len(one_line) + indent <= 100 and '\n' not in one_line:
                return one_line
            return 'dict(\n' + ''.join(f'{pad}{item},\n' for item in items) + ' ' * indent + ')'
        return pprint.pformat(_unwrap(value), width=100)
    if isinstance(value, (list, tuple)):
        open_, close = ('[', ']') if isinstance(value, list) else ('(', ')')
        items = [_format_value(v, indent + 4) for v in value]
        if isinstance(value, tuple) and len(value) == 1:
            items[0] += ','
        one_line = open_ + ', '.join(items) + close
        if len(one_line) + indent <= 100 and '\n' not in one_line:
            return one_line
        pad = ' ' * (indent + 4)
        return open_ + '\n' + ''.join(f'{pad}{item},\n' for item in items) + ' ' * indent + close
    return repr(value)


_KEYWORDS = {'None', 'True', 'False', 'class', 'def', 'lambda', 'from', 'import', 'in', 'is', 'not',
             'and', 'or', 'if', 'else', 'for', 'while', 'return', 'global', 'with', 'as', 'try',
             'except', 'finally', 'raise', 'pass', 'break', 'continue', 'del', 'yield', 'assert',
             'elif', 'nonlocal', 'async', 'await'}


# --- --cfg-options parsing (mmcv's DictAction value rules) -------------------------------------

def parse_scalar(text: str) -> Any:
    """``'1'`` -> 1, ``'0.5'`` -> 0.5, ``'true'``/``'False'`` -> bool, ``'None'`` -> None, else text."""
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    if text.lower() in ('true', 'false'):
        return text.lower() == 'true'
    if text == 'None':
        return None
    return text


def parse_value(text: str) -> Any:
    """mmcv's value rules: scalars, ``[a,b]`` lists, ``(a,b)`` tuples, ``a,b`` lists, nested."""
    text = text.strip('\'"').replace(' ', '')
    is_tuple = False
    if text.startswith('(') and text.endswith(')'):
        is_tuple, text = True, text[1:-1]
    elif text.startswith('[') and text.endswith(']'):
        text = text[1:-1]
    elif ',' not in text:
        return parse_scalar(text)
    values = [parse_value(part) for part in _split_top_level(text)]
    return tuple(values) if is_tuple else values


def _split_top_level(text: str) -> list[str]:
    """Split at commas that are not inside brackets or parentheses."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in '([':
            depth += 1
        elif char in ')]':
            depth -= 1
        elif char == ',' and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if start < len(text):
        parts.append(text[start:])
    return parts


class DictAction(argparse.Action):
    """argparse action for ``--cfg-options a.b=1 c='[1,2]'`` -> ``{'a.b': 1, 'c': [1, 2]}``."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        options = dict(getattr(namespace, self.dest, None) or {})
        for item in values:
            if '=' not in item:
                parser.error(f'{option_string} expects KEY=VALUE pairs, got {item!r}')
            key, value = item.split('=', maxsplit=1)
            options[key] = parse_value(value)
        setattr(namespace, self.dest, options)
