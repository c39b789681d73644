"""Training checkpoints with orbax: atomic saves, retention, best, resume, fine-tune loading.

A checkpoint is a directory in the work dir, named as MMAction2 names its files:
``epoch_3/``, ``iter_120/`` (by-iteration or mid-epoch saves) and
``best_top1_acc_epoch_3/``. Each holds two orbax items: ``state`` (the whole
``TrainState``) and ``meta`` (JSON: epoch, iteration, data-iterator position, best
score, config). orbax writes into a temporary directory and renames it when
complete, so a run killed during a save leaves the previous checkpoint as the
latest finalized one; ``find_latest`` never returns an unfinished directory.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from actionjax.models.common.param_names import torch_name

_NAME = re.compile(r'^(epoch|iter)_(\d+)$')


def _checkpointer() -> ocp.Checkpointer:
    return ocp.Checkpointer(ocp.CompositeCheckpointHandler())


def is_train_checkpoint(path: str | os.PathLike) -> bool:
    """True for a finalized directory written by ``save_checkpoint``."""
    path = os.fspath(path)
    return (os.path.isdir(os.path.join(path, 'state')) and os.path.isdir(os.path.join(path, 'meta'))
            and ocp.utils.is_checkpoint_finalized(path))


def save_checkpoint(path: str | os.PathLike, state: Any, meta: Mapping[str, Any]) -> None:
    """Write ``state`` and JSON ``meta`` to ``path`` atomically (blocks until written)."""
    path = os.path.abspath(os.fspath(path))
    _checkpointer().save(path, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                       meta=ocp.args.JsonSave(dict(meta))), force=True)


def read_meta(path: str | os.PathLike) -> dict:
    """The ``meta`` item of a training checkpoint."""
    path = os.path.abspath(os.fspath(path))
    return dict(_checkpointer().restore(path, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))['meta'])


def restore_checkpoint(path: str | os.PathLike, target: Any) -> tuple[Any, dict]:
    """``(state, meta)`` from ``path``; ``target`` gives the structure, dtypes and shardings.

    ``target`` may be a concrete state or one of ``jax.ShapeDtypeStruct``; a
    checkpoint whose tree does not match raises with the mismatching paths.
    """
    path = os.path.abspath(os.fspath(path))
    if not is_train_checkpoint(path):
        raise FileNotFoundError(f'{path} is not a finalized actionjax training checkpoint '
                                '(expected a directory with "state" and "meta", e.g. work_dir/epoch_1)')
    abstract = jax.tree.map(_abstract, target)
    restored = _checkpointer().restore(path, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
    return restored['state'], dict(restored['meta'])


def read_state(path: str | os.PathLike) -> dict:
    """The ``state`` item of a training checkpoint as plain nested dicts, on one local device.

    Needs no target tree and works whatever number of devices wrote the checkpoint
    (orbax would otherwise insist on the saved device topology).
    """
    path = os.path.abspath(os.fspath(path))
    if not is_train_checkpoint(path):
        raise FileNotFoundError(f'{path} is not a finalized actionjax training checkpoint')
    from etils import epath

    tree = ocp.StandardCheckpointHandler().metadata(epath.Path(path) / 'state')
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    abstract = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), tree,
                            is_leaf=lambda m: hasattr(m, 'shape'))
    args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
    return _checkpointer().restore(path, args=args)['state']


def _abstract(x: Any) -> Any:
    if isinstance(x, jax.ShapeDtypeStruct):
        return x
    sharding = getattr(x, 'sharding', None)
    return jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=sharding)


def find_latest(work_dir: str | os.PathLike) -> str | None:
    """The finalized ``epoch_N``/``iter_N`` checkpoint with the most training steps, or None."""
    work_dir = os.fspath(work_dir)
    if not os.path.isdir(work_dir):
        return None
    best: tuple[int, str] | None = None
    for name in os.listdir(work_dir):
        path = os.path.join(work_dir, name)
        if not _NAME.match(name) or not is_train_checkpoint(path):
            continue
        step = int(read_meta(path)['iter'])
        if best is None or step > best[0]:
            best = (step, path)
    return best[1] if best else None


def resolve_checkpoint(path: str | os.PathLike) -> str:
    """``path``, or for ``WORK_DIR/latest`` / ``WORK_DIR/best`` the checkpoint they stand for.

    ``latest`` is the checkpoint with the most training steps, ``best`` the
    ``best_<metric>_epoch_N`` of ``evaluation.save_best``; a path that exists wins.
    """
    path = os.fspath(path)
    work_dir, name = os.path.split(os.path.normpath(path))
    if os.path.exists(path) or name not in ('latest', 'best') or not os.path.isdir(work_dir or '.'):
        return path
    if name == 'latest':
        return find_latest(work_dir or '.') or path
    best = [n for n in os.listdir(work_dir or '.') if n.startswith('best_')
            and is_train_checkpoint(os.path.join(work_dir, n))]
    if not best:
        return path
    newest = max(best, key=lambda n: int(read_meta(os.path.join(work_dir, n))['iter']))
    return os.path.join(work_dir, newest)


@dataclass
class CheckpointPolicy:
    """``checkpoint_config`` as mmcv's CheckpointHook reads it, plus ``interval_iters``.

    ``interval`` counts epochs (``by_epoch=True``) or iterations. ``interval_iters``
    (actionjax) also saves ``iter_N`` every so many iterations inside by-epoch
    training, so a run killed mid-epoch loses at most that many steps.
    ``max_keep_ckpts`` applies to epoch and iteration checkpoints separately.
    """

    work_dir: str
    interval: int = 1
    by_epoch: bool = True
    max_keep_ckpts: int = -1
    save_last: bool = True
    interval_iters: int | None = None
    save_optimizer: bool = True
    kept: dict[str, list[str]] = field(default_factory=lambda: {'epoch': [], 'iter': []})

    @classmethod
    def from_config(cls, work_dir: str, cfg: Mapping[str, Any] | None) -> CheckpointPolicy:
        cfg = dict(cfg or {})
        known = {'interval', 'by_epoch', 'max_keep_ckpts', 'save_last', 'interval_iters', 'save_optimizer'}
        ignored = {'out_dir', 'sync_buffer', 'file_client_args', 'create_symlink', 'type', 'filename_tmpl'}
        unknown = set(cfg) - known - ignored
        if unknown:
            raise KeyError(f'checkpoint_config: unknown keys {sorted(unknown)}; known: {sorted(known)}')
        policy = cls(work_dir, **{k: v for k, v in cfg.items() if k in known})
        # Checkpoints already in the work dir (a resumed run) count towards max_keep_ckpts.
        for name in sorted(os.listdir(work_dir) if os.path.isdir(work_dir) else [],
                           key=lambda n: int(_NAME.match(n).group(2)) if _NAME.match(n) else -1):
            m = _NAME.match(name)
            if m:
                policy.kept[m.group(1)].append(os.path.join(work_dir, name))
        return policy

    def epoch_due(self, epoch: int, max_epochs: int) -> bool:
        """Save after ``epoch`` (1-based, just finished)?"""
        if not self.by_epoch:
            return False
        return (self.interval > 0 and epoch % self.interval == 0) or (self.save_last and epoch == max_epochs)

    def iter_due(self, it: int, max_iters: int, epoch_end: bool) -> bool:
        """Save after global iteration ``it`` (1-based, just finished)?"""
        if not self.by_epoch:
            return (self.interval > 0 and it % self.interval == 0) or (self.save_last and it == max_iters)
        # Mid-epoch saves only: the epoch checkpoint covers the epoch's last iteration.
        return bool(self.interval_iters) and it % self.interval_iters == 0 and not epoch_end

    def save(self, kind: str, number: int, state: Any, meta: Mapping[str, Any]) -> str:
        """Save ``{kind}_{number}``, then delete the oldest beyond ``max_keep_ckpts``."""
        path = os.path.join(self.work_dir, f'{kind}_{number}')
        save_checkpoint(path, state, meta)
        kept = [p for p in self.kept[kind] if p != path] + [path]
        while self.max_keep_ckpts > 0 and len(kept) > self.max_keep_ckpts:
            shutil.rmtree(kept.pop(0), ignore_errors=True)
        self.kept[kind] = kept
        return path


def merge_variables(target: Mapping[str, Any],
                    source: Mapping[str, Any]) -> tuple[dict, dict[str, list[str]]]:
    """Take from ``source`` every variable of ``target`` with the same path and shape.

    Returns the merged tree and a report with MMAction2-style dotted names:
    ``missing`` (in the model, not in the checkpoint: kept at their init values),
    ``unexpected`` (in the checkpoint only) and ``mismatched`` (same name, other
    shape, e.g. a head with another ``num_classes``: kept at init values).
    """
    def flat(tree: Mapping[str, Any]) -> dict[tuple[str, ...], Any]:
        leaves = jax.tree_util.tree_flatten_with_path(dict(tree))[0]
        return {tuple(str(getattr(k, 'key', k)) for k in kp): v for kp, v in leaves}

    tgt, src = flat(target), flat(source)
    report: dict[str, list[str]] = {'missing': [], 'unexpected': [], 'mismatched': []}
    merged = {}
    for path, value in tgt.items():
        name = torch_name(path[1:], path[0])
        if path not in src:
            report['missing'].append(name)
            merged[path] = value
        elif np.shape(src[path]) != np.shape(value):
            report['mismatched'].append(
                f'{name}: checkpoint {tuple(np.shape(src[path]))}, model {tuple(np.shape(value))}')
            merged[path] = value
        else:
            merged[path] = np.asarray(src[path]).astype(value.dtype)
    report['unexpected'] = [torch_name(p[1:], p[0]) for p in src if p not in tgt]
    return _unflatten(merged), report


def _unflatten(flat: Mapping[tuple[str, ...], Any]) -> dict:
    tree: dict = {}
    for path, value in flat.items():
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return tree
