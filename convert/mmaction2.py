"""MMAction2 checkpoints <-> actionjax variables.

    python -m convert.mmaction2 CHECKPOINT.pth --config configs/tsn.py --out DIR [--strict false]
    python -m convert.mmaction2 --reverse DIR --config configs/tsn.py --out X.pth

Flax modules carry MMAction2's torch module names (``actionjax.models.common.param_names``),
so a variable's dotted path is its state_dict key. Converting is renaming the leaf and
changing the array layout:

=====================================  ============================================
torch (MMAction2 0.x and 1.x)          actionjax
=====================================  ============================================
conv ``weight`` (O, I, kh, kw)         ``params/.../kernel`` (kh, kw, I, O)
3D conv ``weight`` (O, I, t, kh, kw)   ``params/.../kernel`` (t, kh, kw, I, O)
linear ``weight`` (out, in)            ``params/.../kernel`` (in, out)
BN ``weight`` / ``bias``               ``params/.../scale`` / ``params/.../bias``
BN ``running_mean`` / ``running_var``  ``batch_stats/.../mean`` / ``batch_stats/.../var``
BN ``num_batches_tracked``             not a variable (kept in ``mmaction2.json``)
=====================================  ============================================

MMAction2's ResNetTSM wraps modules after building them (``TemporalShift.net``,
``TemporalPool.net``, ``NL3DWrapper.block``), which puts ``net`` / ``block`` into its
keys (``layer1.0.conv1.conv.net.weight``). A Flax model may or may not have those
wrapper modules; keys are matched exactly first and then with wrapper names removed
on both sides, and the reverse direction writes them back from the config.

Buffers that transformers derive from their config (Swin's ``relative_position_index``,
VideoMAE's sin-cos ``pos_embed``) are not variables: the model computes them
(``torch_buffers()``), converting checks the checkpoint's copies against them and drops
them, and the reverse direction writes them back.

Every target variable is assigned exactly once. Missing, unexpected and mis-shaped
keys are collected and reported together in one :class:`CheckpointMismatchError`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import re
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from actionjax.models.common.param_names import (  # noqa: F401 (WRAPPERS, re-exported names)
    WRAPPERS,
    get_leaf,
    iter_leaves,
    match_keys,
    set_leaf,
    strip_wrappers,
    torch_key,
)

# State-dict entries that carry no model weights.
IGNORED_PREFIXES = ('data_preprocessor.',)
INFO_FILE = 'mmaction2.json'


# --------------------------------------------------------------------------- errors

class CheckpointMismatchError(ValueError):
    """A checkpoint that does not fit the model; lists every offending key at once."""

    def __init__(self, missing: list[str], unexpected: list[str],
                 mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]],
                 ambiguous: list[tuple[str, list[str]]] | None = None, source: str = 'checkpoint') -> None:
        self.missing, self.unexpected = list(missing), list(unexpected)
        self.mismatched, self.ambiguous = list(mismatched), list(ambiguous or [])
        lines = [f'{source} does not match the model built from the config:']
        if missing:
            lines.append(f'  missing in the checkpoint ({len(missing)}): ' + ', '.join(missing))
        if unexpected:
            lines.append(f'  unexpected in the checkpoint ({len(unexpected)}): ' + ', '.join(unexpected)
                         + '  (pass --strict false / strict=False to ignore them)')
        for key, got, want in mismatched:
            lines.append(f'  shape mismatch: {key}: checkpoint {tuple(got)}, model {tuple(want)}')
        for key, sources in self.ambiguous:
            lines.append(f'  {key} is matched by several checkpoint keys: {", ".join(sources)}')
        lines.append('Check that --config is the config the checkpoint was trained with '
                     '(depth, num_classes, in_channels, num_stages, ...).')
        super().__init__('\n'.join(lines))


# ------------------------------------------------------------------- reading torch

class _Opaque:
    """Stands in for a pickled object of a class that is not imported here.

    Full MMAction2 1.x checkpoints pickle mmengine objects (the message hub's
    ``HistoryBuffer``) and numpy arrays next to the weights; only the tensors are
    needed, so those objects load as inert placeholders instead of running any code.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __call__(self, *args: Any, **kwargs: Any) -> _Opaque:
        return _Opaque(*args, **kwargs)

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return '<opaque>'


def _torch_global(module: str, name: str) -> bool:
    """The globals a tensor checkpoint needs: tensor rebuilders, storages, dtypes, OrderedDict."""
    if module == 'collections' and name == 'OrderedDict':
        return True
    if module in ('torch._utils', 'torch._tensor') and name.startswith('_rebuild'):
        return True
    if module == 'torch.nn.parameter' and name == 'Parameter':
        return True
    if module == 'torch':
        import torch

        obj = getattr(torch, name, None)
        return isinstance(obj, torch.dtype) or name.endswith('Storage') or name in ('Size', 'device')
    return False


class _LenientUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if _torch_global(module, name):
            return super().find_class(module, name)
        return _Opaque


class _LenientPickle:
    """A ``pickle_module`` for ``torch.load`` that resolves only tensor-related globals."""

    Unpickler = _LenientUnpickler
    load = staticmethod(pickle.load)


def _to_numpy(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.dtype == torch.bfloat16:  # numpy has no bfloat16
            value = value.float()
        return value.numpy()
    return value


def torch_load(path: str | os.PathLike) -> Any:
    """``torch.load`` on CPU that never runs code from the file.

    Plain weight files load with ``weights_only=True``; files that also pickle other
    objects (mmengine's message hub) load with those objects as inert placeholders.
    """
    import torch

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint {path!r} does not exist')
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError:
        return torch.load(path, map_location='cpu', weights_only=False, pickle_module=_LenientPickle)


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``(state_dict, meta)`` of an MMAction2 0.x / 1.x checkpoint or a bare state_dict.

    Tensors come back as numpy arrays. Objects other than tensors (mmengine's message
    hub, optimizer state) never run code: they load as placeholders and are dropped.
    """
    import torch

    path = os.fspath(path)
    ckpt = torch_load(path)
    if not isinstance(ckpt, Mapping):
        raise ValueError(f'{path}: expected a dict (a state_dict or {{"state_dict": ..., "meta": ...}}), '
                         f'got {type(ckpt).__name__}')
    if 'state_dict' in ckpt and isinstance(ckpt['state_dict'], Mapping):
        state_dict, meta = ckpt['state_dict'], ckpt.get('meta') or {}
    else:
        state_dict, meta = ckpt, {}
    out = {}
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f'{path}: state_dict entry {key!r} is a {type(value).__name__}, not a tensor')
        out[key] = _to_numpy(value)
    return out, _plain(meta)


def _plain(value: Any) -> Any:
    """``value`` reduced to JSON types; placeholders and tensors are dropped."""
    if isinstance(value, Mapping):
        items = ((str(k), _plain(v)) for k, v in value.items())
        return {k: v for k, v in items if v is not None}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return None


# ------------------------------------------------------------------- key handling

def checkpoint_key(key: str) -> str | None:
    """``key`` without DataParallel's ``module.`` prefixes; ``None`` for non-model entries."""
    while key.startswith('module.'):
        key = key[len('module.'):]
    return None if key.startswith(IGNORED_PREFIXES) else key


def clean_state_dict(state_dict: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Strip ``module.`` prefixes, drop ``data_preprocessor.*``, split off ``num_batches_tracked``.

    Returns ``(weights, num_batches_tracked)``; the second maps a BN module name to its
    counter so the reverse conversion can write it back.
    """
    weights, counters = {}, {}
    for key, value in state_dict.items():
        key = checkpoint_key(key)
        if key is None:
            continue
        if key.endswith('.num_batches_tracked'):
            counters[key[:-len('.num_batches_tracked')]] = int(np.asarray(value).reshape(()))
            continue
        if key in weights:
            raise ValueError(f'state_dict has {key!r} twice (with and without a "module." prefix)')
        weights[key] = value
    return weights, counters


_LEAF_RANK = {'weight': 0, 'bias': 1, 'running_mean': 2, 'running_var': 3, 'num_batches_tracked': 4}


def _natural_key(key: str) -> tuple:
    """Module path with numbers compared as numbers, then torch's leaf order within a module."""
    *modules, leaf = key.split('.')
    path = [(0, int(p), '') if p.isdigit() else (1, 0, p) for p in modules]
    return path, _LEAF_RANK.get(leaf, len(_LEAF_RANK)), leaf


def torch_order(keys: list[str], reference: list[str] | None = None) -> list[str]:
    """``keys`` in the order of ``reference`` (the source checkpoint's), the rest by module name.

    torch does not need an order to load a state_dict; keeping the source's makes a
    round trip reproduce the file key for key.
    """
    rank = {key: i for i, key in enumerate(reference or [])}
    return sorted(keys, key=lambda k: (rank.get(k, len(rank)), _natural_key(k)))


@dataclass(frozen=True)
class Slot:
    """One target variable: where it lives in the variables tree and its Flax shape."""

    collection: str
    path: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: Any


def target_slots(variables: Mapping[str, Any]) -> dict[str, Slot]:
    """``{torch key: Slot}`` for every leaf of ``variables`` (arrays or ShapeDtypeStructs).

    Per module, its params come first, then its batch_stats.
    """
    slots: dict[str, Slot] = {}
    stats = dict(iter_leaves(variables.get('batch_stats', {})))
    emitted_stats = set()
    for path, leaf in iter_leaves(variables.get('params', {})):
        slots[torch_key('params', path)] = Slot('params', path, tuple(leaf.shape), leaf.dtype)
        module = path[:-1]
        for name in ('mean', 'var'):
            stat_path = (*module, name)
            if stat_path in stats and stat_path not in emitted_stats:
                emitted_stats.add(stat_path)
                stat = stats[stat_path]
                slots[torch_key('batch_stats', stat_path)] = Slot(
                    'batch_stats', stat_path, tuple(stat.shape), stat.dtype)
    for path, stat in stats.items():  # stats of modules without params (affine=False BN)
        if path not in emitted_stats:
            slots[torch_key('batch_stats', path)] = Slot('batch_stats', path, tuple(stat.shape), stat.dtype)
    other = sorted(set(variables) - {'params', 'batch_stats'})
    if other:
        raise ValueError(f'variables hold collections {other} that have no MMAction2 counterpart')
    return slots


# ------------------------------------------------------------------- array layout

def to_flax_layout(leaf: str, array: np.ndarray) -> np.ndarray:
    """Torch layout -> Flax layout: kernels move (O, I, *spatial) to (*spatial, I, O)."""
    if leaf != 'kernel' or array.ndim < 2:
        return array
    if array.ndim == 2:
        return array.T
    return array.transpose(*range(2, array.ndim), 1, 0)


def to_torch_layout(leaf: str, array: np.ndarray) -> np.ndarray:
    """Flax layout -> torch layout, the inverse of :func:`to_flax_layout`."""
    if leaf != 'kernel' or array.ndim < 2:
        return array
    if array.ndim == 2:
        return array.T
    n = array.ndim
    return array.transpose(n - 1, n - 2, *range(n - 2))


def state_dict_to_variables(state_dict: Mapping[str, np.ndarray], target: Mapping[str, Any],
                            strict: bool = True, source: str = 'checkpoint') -> dict[str, dict]:
    """Map a cleaned MMAction2 state_dict onto the structure of ``target``.

    ``target`` is the model's variables or their shapes (``jax.eval_shape`` of
    ``model.init``). Every target leaf is assigned exactly once. Missing, mis-shaped and
    ambiguous keys raise :class:`CheckpointMismatchError`; so do unexpected keys unless
    ``strict=False``, which only warns about them. Arrays take the target's dtype, or the
    checkpoint's where that is the wider float: a float64 checkpoint (MMAction2 after
    ``model.double()``) converts exactly, for a float64 run (``actionjax.precision``).
    """
    slots = target_slots(target)
    pairs, missing, unexpected, ambiguous = match_keys(list(state_dict), list(slots))
    variables: dict[str, dict] = {}
    mismatched = []
    for key, slot in slots.items():
        if key not in pairs:
            continue
        src = pairs[key]
        array = to_flax_layout(slot.path[-1], np.asarray(state_dict[src]))
        if tuple(array.shape) != slot.shape:
            want = to_torch_layout(slot.path[-1], np.empty(slot.shape, np.int8)).shape
            mismatched.append((src, tuple(np.shape(state_dict[src])), want))
            continue
        dtype = slot.dtype
        if np.issubdtype(array.dtype, np.floating) and np.issubdtype(dtype, np.floating):
            dtype = np.promote_types(dtype, array.dtype)
        set_leaf(variables.setdefault(slot.collection, {}), slot.path,
                 np.ascontiguousarray(array, dtype=dtype))
    if missing or mismatched or ambiguous or (unexpected and strict):
        raise CheckpointMismatchError(missing, unexpected if strict else [], mismatched, ambiguous, source)
    if unexpected:
        warnings.warn(f'{source}: {len(unexpected)} unexpected keys ignored (strict=False): '
                      + ', '.join(unexpected), stacklevel=2)
    return variables


def variables_to_state_dict(variables: Mapping[str, Any], rename: Any = None,
                            num_batches_tracked: Mapping[str, int] | None = None,
                            order: list[str] | None = None) -> dict[str, np.ndarray]:
    """An MMAction2 state_dict (numpy arrays) from actionjax variables.

    ``rename`` maps an actionjax key to MMAction2's (e.g. :func:`mmaction2_key_fn`).
    Every BN module (a module with ``mean`` / ``var`` stats) gets its
    ``num_batches_tracked`` back from ``num_batches_tracked`` (0 where unknown). Keys
    follow ``order`` where given (see :func:`torch_order`).
    """
    rename = rename or (lambda key: key)
    counters = num_batches_tracked or {}
    out: dict[str, np.ndarray] = {}
    for key, slot in target_slots(variables).items():
        array = np.asarray(get_leaf(variables[slot.collection], slot.path))
        name = rename(key)
        if name in out:
            raise ValueError(f'two variables map to the MMAction2 key {name!r}')
        out[name] = np.ascontiguousarray(to_torch_layout(slot.path[-1], array))
        if slot.collection == 'batch_stats' and slot.path[-1] == 'var':
            module = name[:-len('.running_var')]
            out[f'{module}.num_batches_tracked'] = np.asarray(counters.get(module, 0), dtype=np.int64)
    return {key: out[key] for key in torch_order(list(out), order)}


# ------------------------------------------------------------------- TSM wrapper names

_STAGE_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
_BLOCK_KEY = re.compile(r'^layer(\d+)\.(\d+)\.(.+)$')


def resnet_tsm_key(name: str, backbone: Mapping[str, Any]) -> str:
    """MMAction2's key inside a ``ResNetTSM`` backbone for a key without wrapper names.

    Mirrors ``ResNetTSM.init_structure``: the temporal shift wraps whole blocks
    (``shift_place='block'``: ``layer1.0.net.conv1...``) or each block's first conv
    (``'blockres'``: ``layer1.0.conv1.conv.net.weight``, every other block from ResNet-101
    on); non-local blocks wrap a block (``layer2.0.block.conv1...``) beside its
    ``non_local_block``; ``temporal_pool`` wraps stage 2 (``layer2.net.0...``).
    """
    match = _BLOCK_KEY.match(name)
    if not match:
        return name
    stage, block, rest = int(match[1]), int(match[2]), match[3]
    if backbone.get('is_shift', True):
        place = backbone.get('shift_place', 'blockres')
        if place == 'block':
            rest = f'net.{rest}'
        elif 'blockres' in place:
            depth_blocks = _STAGE_BLOCKS.get(backbone.get('depth'), (0, 0, 0, 0))
            n_round = 2 if depth_blocks[2] >= 23 else 1
            if block % n_round == 0 and rest.startswith('conv1.conv.'):
                rest = 'conv1.conv.net.' + rest[len('conv1.conv.'):]
    if backbone.get('non_local_cfg'):
        flags = backbone.get('non_local', (0, 0, 0, 0))
        stage_flags = flags[stage - 1] if stage - 1 < len(flags) else 0
        flagged = isinstance(stage_flags, (list, tuple)) and block < len(stage_flags) and stage_flags[block]
        if flagged and not rest.startswith('non_local_block.'):
            rest = f'block.{rest}'
    layer = 'layer2.net' if backbone.get('temporal_pool', False) and stage == 2 else f'layer{stage}'
    return f'{layer}.{block}.{rest}'


def mmaction2_key_fn(model_cfg: Mapping[str, Any]) -> Any:
    """A function mapping actionjax keys to the keys MMAction2 builds for ``model_cfg``.

    Identity except inside a ``ResNetTSM`` backbone, whose wrapper modules a Flax model
    need not have; keys that already carry them come out unchanged.
    """
    backbone = dict(model_cfg.get('backbone') or {})
    if backbone.get('type') != 'ResNetTSM':
        return lambda key: key

    def rename(key: str) -> str:
        if not key.startswith('backbone.'):
            return key
        return 'backbone.' + resnet_tsm_key(strip_wrappers(key[len('backbone.'):]), backbone)

    return rename


# ------------------------------------------------------------------- model plumbing

def dummy_input(model: Any, cfg: Mapping[str, Any]) -> np.ndarray:
    """A host batch of the layout ``model`` takes, for shape inference.

    2D recognizers get as many views as the backbone and head segment counts need
    (TSM cuts the views into clips of ``num_segments``); localizers say what they take
    (``example_input()``: features ``(1, T, C)``).
    """
    if callable(getattr(model, 'example_input', None)):
        return model.example_input()
    channels = (cfg['model'].get('backbone') or {}).get('in_channels', 3)
    if cfg['model'].get('type') == 'Recognizer3D':
        # a backbone whose fc layers fix the clip size (C3D) says which (T, H, W) it takes
        clip = getattr(getattr(model, 'backbone', None), 'clip_shape', (8, 64, 64))
        return np.zeros((1, 1, *clip, channels), np.float32)
    parts = (getattr(model, 'backbone', None), getattr(model, 'cls_head', None))
    segments = [getattr(part, 'num_segments', None) for part in parts]
    views = math.lcm(*(s for s in segments if isinstance(s, int) and s > 0))
    return np.zeros((1, views, 64, 64, channels), np.float32)


def load_config(config: str | os.PathLike | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(config, Mapping):
        return config
    from actionjax.config import Config

    return Config.fromfile(config)


def variable_shapes(cfg: Mapping[str, Any]) -> Any:
    """Shapes and dtypes of the variables of the model ``cfg`` builds (nothing is computed)."""
    import jax

    from actionjax.models import build_model

    model = build_model(cfg)
    key = jax.random.PRNGKey(0)
    imgs = dummy_input(model, cfg)
    return jax.eval_shape(lambda: model.init({'params': key, 'dropout': key}, imgs, train=False))


def model_buffers(model: Any) -> dict[str, np.ndarray]:
    """Persistent torch buffers that ``model`` computes instead of storing, by state_dict key.

    Transformers keep derived tables as buffers (Swin's ``relative_position_index``,
    VideoMAE's fixed sin-cos ``pos_embed``); actionjax computes them from the config, so
    they are not variables. A backbone, neck or head lists its own in ``torch_buffers()``,
    a model its top-level ones (BMN's ``sample_mask`` and ``bm_mask``).
    """
    own = getattr(model, 'torch_buffers', None)
    buffers = dict(own()) if callable(own) else {}
    for part in ('backbone', 'neck', 'cls_head'):
        torch_buffers = getattr(getattr(model, part, None), 'torch_buffers', None)
        if callable(torch_buffers):
            buffers.update({f'{part}.{key}': value for key, value in torch_buffers().items()})
    return buffers


def config_buffers(cfg: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """:func:`model_buffers` of the model ``cfg`` builds."""
    from actionjax.models import build_model

    return model_buffers(build_model(cfg))


def drop_buffers(weights: Mapping[str, np.ndarray], buffers: Mapping[str, np.ndarray],
                 source: str = 'checkpoint') -> dict[str, np.ndarray]:
    """``weights`` without the buffers the model computes, after checking they agree with it.

    A checkpoint's buffer of another shape or value was made with another configuration
    (window size, number of frames, image size) and is an error; a checkpoint without
    them is fine.
    """
    wrong = []
    for key, expected in buffers.items():
        if key not in weights:
            continue
        value = np.asarray(weights[key])
        if value.shape != expected.shape:
            wrong.append(f'{key}: shape {value.shape}, the config gives {expected.shape}')
        elif not np.allclose(value, expected, rtol=0, atol=1e-6):
            wrong.append(f'{key}: values differ from the ones the config gives '
                         f'(max |diff| {np.abs(value - expected).max():.3g})')
    if wrong:
        raise ValueError(f'{source}: buffers that the model computes from its config do not match:\n  '
                         + '\n  '.join(wrong) + '\nCheck window_size / num_frames / img_size in --config.')
    return {key: value for key, value in weights.items() if key not in buffers}


def convert_checkpoint(checkpoint: str | os.PathLike, config: str | os.PathLike | Mapping[str, Any],
                       out: str | os.PathLike | None = None, strict: bool = True,
                       overwrite: bool = False) -> dict[str, dict]:
    """Convert an MMAction2 checkpoint to variables for ``config``; save to ``out`` if given.

    ``out`` becomes an actionjax checkpoint directory (``load_variables`` reads it); the
    checkpoint's meta, BN counters and key order go to ``out/mmaction2.json`` for the
    reverse trip. An existing ``out`` is an error unless ``overwrite``.
    """
    cfg = load_config(config)
    raw, meta = read_checkpoint(checkpoint)
    weights, counters = clean_state_dict(raw)
    weights = drop_buffers(weights, config_buffers(cfg), os.fspath(checkpoint))
    variables = state_dict_to_variables(weights, variable_shapes(cfg), strict=strict,
                                        source=os.fspath(checkpoint))
    if out is not None:
        from actionjax.models.checkpoint_io import save_variables

        out = os.path.abspath(os.fspath(out))
        save_variables(out, variables, overwrite=overwrite)
        keys = [k for k in map(checkpoint_key, raw) if k is not None]
        info = dict(source=os.path.abspath(os.fspath(checkpoint)), meta=meta, num_batches_tracked=counters,
                    keys=keys)
        with open(os.path.join(out, INFO_FILE), 'w') as f:
            json.dump(info, f, indent=1)
    return variables


def export_checkpoint(actionjax_dir: str | os.PathLike, config: str | os.PathLike | Mapping[str, Any],
                      out: str | os.PathLike | None = None, overwrite: bool = False) -> dict[str, Any]:
    """An MMAction2-loadable ``{'state_dict', 'meta'}`` from an actionjax checkpoint directory.

    Written to ``out`` with ``torch.save`` if given (an existing file is an error unless
    ``overwrite``). Keys, their order, shapes and values equal the checkpoint the
    directory was converted from (``num_batches_tracked`` included).
    """
    import torch

    from actionjax.models.checkpoint_io import check_variables, load_variables

    cfg = load_config(config)
    variables = load_variables(os.fspath(actionjax_dir))
    info_path = os.path.join(os.fspath(actionjax_dir), INFO_FILE)
    info = {}
    if os.path.isfile(info_path):
        with open(info_path) as f:
            info = json.load(f)
    check_variables(variable_shapes(cfg), variables, source=os.fspath(actionjax_dir))
    arrays = variables_to_state_dict(variables, mmaction2_key_fn(cfg['model']),
                                     info.get('num_batches_tracked'), info.get('keys'))
    buffers = config_buffers(cfg)
    if buffers:
        arrays.update(buffers)
        arrays = {key: arrays[key] for key in torch_order(list(arrays), info.get('keys'))}
    meta = dict(info.get('meta') or {})
    meta['converted_by'] = 'actionjax convert.mmaction2 --reverse'
    ckpt = dict(state_dict={k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}, meta=meta)
    if out is not None:
        if os.path.exists(out) and not overwrite:
            raise FileExistsError(f'{out} exists; pass --force (overwrite=True) to replace it')
        torch.save(ckpt, os.fspath(out))
    return ckpt


# ------------------------------------------------------------------- CLI

def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ('true', '1', 'yes'):
        return True
    if value in ('false', '0', 'no'):
        return False
    raise argparse.ArgumentTypeError(f'expected true or false, got {text!r}')


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='python -m convert.mmaction2',
        description='Convert an MMAction2 checkpoint to an actionjax checkpoint directory, or back.')
    parser.add_argument('checkpoint', nargs='?', help='MMAction2 .pth file (0.x or 1.x)')
    parser.add_argument('--config', required=True, help='actionjax config of the model (e.g. configs/tsn.py)')
    parser.add_argument('--out', required=True, help='output directory (or .pth file with --reverse)')
    parser.add_argument('--strict', type=_bool, default=True, metavar='{true,false}',
                        help='false: warn about unexpected checkpoint keys instead of failing')
    parser.add_argument('--force', action='store_true', help='replace an existing --out')
    parser.add_argument('--reverse', metavar='ACTIONJAX_DIR',
                        help='write an MMAction2 state_dict from this actionjax checkpoint directory')
    args = parser.parse_args(argv)
    if (args.checkpoint is None) == (args.reverse is None):
        parser.error('give either CHECKPOINT (MMAction2 -> actionjax) '
                     'or --reverse DIR (actionjax -> MMAction2)')
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.reverse:
            ckpt = export_checkpoint(args.reverse, args.config, args.out, overwrite=args.force)
            print(f'wrote {len(ckpt["state_dict"])} tensors to {args.out}')
        else:
            variables = convert_checkpoint(args.checkpoint, args.config, args.out, strict=args.strict,
                                           overwrite=args.force)
            count = sum(np.size(v) for _, v in iter_leaves(variables.get('params', {})))
            print(f'wrote {count:,} parameters to {args.out}')
    except (CheckpointMismatchError, FileNotFoundError, FileExistsError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
