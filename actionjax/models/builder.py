"""Build models from configs: ``build_model(cfg)`` and the per-part builders.

``build_model`` builds a model of any kind (``RECOGNIZERS``, ``LOCALIZERS``) from a whole
config or a model dict; the runtime config has already put the input normalisation into
``model.data_preprocessor``, so models never read the data config. Config dicts are
frozen (``FrozenDict``, lists to tuples) before they reach a Flax module, so modules stay
hashable and ``jax.jit``/``nn.jit`` friendly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
from flax.core import FrozenDict

from actionjax.registry import BACKBONES, HEADS, LOCALIZERS, LOSSES, NECKS, RECOGNIZERS, Registry

# Where build_model looks a model type up: every kind of model MMAction2 has.
MODEL_REGISTRIES = (RECOGNIZERS, LOCALIZERS)


def freeze_cfg(cfg: Any) -> Any:
    """A hashable copy of a config tree: mappings -> FrozenDict, lists -> tuples."""
    if isinstance(cfg, Mapping):
        return FrozenDict({k: freeze_cfg(v) for k, v in cfg.items()})
    if isinstance(cfg, (list, tuple)):
        return tuple(freeze_cfg(v) for v in cfg)
    return cfg


def build_parts(model: nn.Module) -> None:
    """In a model's ``__post_init__``: its ``backbone`` and ``cls_head`` config dicts become
    unbound submodules (Flax names them after the field), and its ``train_cfg``, ``test_cfg``
    and ``data_preprocessor`` are frozen."""
    if isinstance(model.backbone, Mapping):
        object.__setattr__(model, 'backbone', build_backbone(model.backbone))
    if isinstance(model.cls_head, Mapping):
        object.__setattr__(model, 'cls_head', build_head(model.cls_head))
    for name in ('train_cfg', 'test_cfg', 'data_preprocessor'):
        object.__setattr__(model, name, freeze_cfg(getattr(model, name)))


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
    """The loss callable of ``cfg``. A class written torch's way, with ``forward`` and no
    ``__call__``, is called through ``forward`` (torch's ``nn.Module.__call__`` does the same)."""
    loss = build_module(LOSSES, cfg, key_path)
    if callable(loss):
        return loss
    forward = getattr(loss, 'forward', None)
    if callable(forward):
        return forward
    raise TypeError(f'{key_path}: LOSSES[{cfg["type"]!r}] built a {type(loss).__name__}, which is neither '
                    'callable nor has a forward method; a loss is called as loss(pred, target)')


def build_recognizer(cfg: Mapping[str, Any], key_path: str = 'model') -> nn.Module:
    return build_module(RECOGNIZERS, cfg, key_path)


def build_model(cfg: Mapping[str, Any]) -> nn.Module:
    """The model of a config: a recognizer, a localizer, or any registered model kind.

    ``cfg`` is a whole config (file or runtime form, with ``model``) or a model dict with
    ``type``. The model dict goes through the runtime config's model translation first
    (a 0.x ``Normalize`` / ``img_norm_cfg`` becomes the ``data_preprocessor``, a 0.x
    ``test_cfg.average_clips`` moves to the head), then ``type`` is looked up in every
    model registry.
    """
    from actionjax.runtime_config import model_config

    if not isinstance(cfg, Mapping):
        raise TypeError(f'build_model takes a config mapping, got {type(cfg).__name__}')
    if 'model' not in cfg and 'type' not in cfg:
        raise KeyError('the config has no "model" key; build_model takes the whole config '
                       '(e.g. Config.fromfile("configs/tsn.py")) or a model dict with "type"')
    model_cfg = model_config(cfg if 'model' in cfg else {'model': cfg})
    if model_cfg is None:
        raise KeyError('the config has model=None; set model = dict(type="Recognizer2D", ...)')
    registry = next((r for r in MODEL_REGISTRIES if model_cfg.get('type') in r), None)
    if registry is None:
        names = ', '.join(r.name for r in MODEL_REGISTRIES)
        RECOGNIZERS.get(model_cfg.get('type'), 'model.type')  # raises with the closest recognizers
        raise KeyError(f'model.type {model_cfg.get("type")!r} is in none of {names}')
    extra = _precision_args(registry.get(model_cfg['type'], 'model.type'), cfg) if 'model' in cfg else {}
    return build_module(registry, model_cfg, 'model', **extra)


def _precision_args(model_cls: Any, cfg: Mapping[str, Any]) -> dict[str, Any]:
    """``dtype=`` for the config's precision (``actionjax.precision``), for models that take one."""
    from actionjax.precision import model_dtype
    from actionjax.runtime_config import precision_of

    precision = precision_of(cfg)
    fields = getattr(model_cls, '__dataclass_fields__', {})
    if 'dtype' in fields:
        return {'dtype': model_dtype(precision)}
    if precision != 'float32':
        raise NotImplementedError(f'model.type {model_cls.__name__} has no dtype field, so precision '
                                  f'{precision!r} (config key dtype, fp16 or optim_wrapper.type) cannot '
                                  'apply to it yet; remove that key to train in float32')
    return {}
