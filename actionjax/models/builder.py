"""Build models from configs: ``build_model(cfg)`` and the per-part builders.

``build_model`` takes the whole config, as the training script has it, because the
mean/std that normalise the input live in different places in MMAction2 0.x and 1.x:

* 1.x: ``model.data_preprocessor = dict(type='ActionDataPreprocessor', mean, std, to_rgb)``;
* 0.x: a ``Normalize`` step (usually ``**img_norm_cfg``) in the data pipelines.

Either way the recognizer gets a ``data_preprocessor`` and normalises on the device.
Config dicts are frozen (``FrozenDict``, lists to tuples) before they reach a Flax
module, so modules stay hashable and ``jax.jit``/``nn.jit`` friendly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
from flax.core import FrozenDict

from actionjax.registry import BACKBONES, HEADS, LOSSES, NECKS, RECOGNIZERS, Registry


def freeze_cfg(cfg: Any) -> Any:
    """A hashable copy of a config tree: mappings -> FrozenDict, lists -> tuples."""
    if isinstance(cfg, Mapping):
        return FrozenDict({k: freeze_cfg(v) for k, v in cfg.items()})
    if isinstance(cfg, (list, tuple)):
        return tuple(freeze_cfg(v) for v in cfg)
    return cfg


def build_module(registry: Registry, cfg: Mapping[str, Any], key_path: str, **default_args: Any) -> Any:
    """``registry.build`` on a frozen config; Flax modules are created unbound.

    ``parent=None`` keeps a module built inside another module's constructor from
    being adopted (and auto-named) by whatever module happens to be active; the
    owner names it by the attribute that holds it (``backbone``, ``cls_head``).
    """
    cfg = freeze_cfg(cfg)
    if isinstance(cfg, Mapping) and 'type' in cfg:
        obj_type = cfg['type']
        factory = registry.get(obj_type, f'{key_path}.type') if isinstance(obj_type, str) else obj_type
        if isinstance(factory, type) and issubclass(factory, nn.Module):
            default_args.setdefault('parent', None)
    return registry.build(cfg, key_path=key_path, **default_args)


def build_backbone(cfg: Mapping[str, Any], key_path: str = 'model.backbone') -> nn.Module:
    return build_module(BACKBONES, cfg, key_path)


def build_neck(cfg: Mapping[str, Any], key_path: str = 'model.neck') -> nn.Module:
    return build_module(NECKS, cfg, key_path)


def build_head(cfg: Mapping[str, Any], key_path: str = 'model.cls_head') -> nn.Module:
    return build_module(HEADS, cfg, key_path)


def build_loss(cfg: Mapping[str, Any], key_path: str = 'loss_cls') -> Any:
    return build_module(LOSSES, cfg, key_path)


def build_recognizer(cfg: Mapping[str, Any], key_path: str = 'model') -> nn.Module:
    return build_module(RECOGNIZERS, cfg, key_path)


def _pipelines(cfg: Mapping[str, Any]) -> list[tuple[str, Sequence[Any]]]:
    """Every (key path, pipeline list) of a config, training pipelines first."""
    found: list[tuple[str, Sequence[Any]]] = []

    def visit(node: Any, path: str) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key == 'pipeline' and isinstance(value, (list, tuple)):
                    found.append((f'{path}.pipeline', value))
                else:
                    visit(value, f'{path}.{key}')
        elif isinstance(node, (list, tuple)):
            for i, value in enumerate(node):
                visit(value, f'{path}[{i}]')

    data = cfg.get('data')
    if isinstance(data, Mapping):
        for split in ('train', 'val', 'test'):
            visit(data.get(split), f'data.{split}')
    for name in ('train_pipeline', 'val_pipeline', 'test_pipeline'):
        if isinstance(cfg.get(name), (list, tuple)):
            found.append((name, cfg[name]))
    return found


def find_normalize_cfg(cfg: Mapping[str, Any]) -> dict[str, Any] | None:
    """mean/std (and to_bgr) of a 0.x config: its first ``Normalize`` step, else ``img_norm_cfg``."""
    for _, pipeline in _pipelines(cfg):
        for step in pipeline:
            if isinstance(step, Mapping) and step.get('type') == 'Normalize':
                return {k: step[k] for k in ('mean', 'std', 'to_bgr') if k in step}
    norm = cfg.get('img_norm_cfg')
    return dict(norm) if isinstance(norm, Mapping) else None


def build_model(cfg: Mapping[str, Any]) -> nn.Module:
    """The recognizer of a whole config (a ``Config`` or a plain dict with ``model``).

    A bare model dict (one with ``type``) is accepted too. When ``model`` has no
    ``data_preprocessor`` with a mean, the mean/std of a 0.x ``Normalize`` step or
    ``img_norm_cfg`` is turned into one. No mean anywhere: inputs are only cast to
    float32. A 0.x ``to_bgr=True`` is not repeated on the device: the pipeline's
    ``Normalize`` step already reversed the channels on the host.
    """
    if not isinstance(cfg, Mapping):
        raise TypeError(f'build_model takes a config mapping, got {type(cfg).__name__}')
    if 'model' in cfg:
        model_cfg = dict(cfg['model'])
    elif 'type' in cfg:
        model_cfg = dict(cfg)
    else:
        raise KeyError('the config has no "model" key; build_model takes the whole config '
                       '(e.g. Config.fromfile("configs/tsn.py")) or a model dict with "type"')
    preprocessor = dict(model_cfg.get('data_preprocessor') or {})
    if preprocessor.get('mean') is None and 'model' in cfg:
        norm = find_normalize_cfg(cfg)
        if norm is not None:
            preprocessor.setdefault('type', 'ActionDataPreprocessor')
            preprocessor.update(mean=norm.get('mean'), std=norm.get('std'))
            model_cfg['data_preprocessor'] = preprocessor
    return build_recognizer(model_cfg)
