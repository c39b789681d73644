"""Training checkpoints with orbax: atomic saves, retention, best, resume, fine-tune loading.

A checkpoint is a directory in the work dir, named as MMAction2 names its files:
``epoch_3/``, ``iter_120/`` (by-iteration or mid-epoch saves) and
``best_top1_acc_epoch_3/``. Each holds two orbax items: ``state`` (the whole
``TrainState``) and ``meta`` (JSON: epoch, iteration, data-iterator position, best
score, config). orbax writes into a temporary directory and renames it when
complete, so a run killed during a save leaves the previous checkpoint as the
latest finalized one; ``find_latest`` never returns an unfinished directory.

A checkpoint damaged later (a truncated data file, a missing ``meta/``) raises one
``CheckpointError`` line naming the folder and the damage, never TensorStore's page of
JSON; ``find_resumable`` passes over damaged checkpoints to the newest intact one and
says which it skipped and why. Nothing here deletes a checkpoint it could not read.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from actionjax.config import ConfigKeyError
from actionjax.models.common.param_names import torch_name

_NAME = re.compile(r'^(epoch|iter)_(\d+)$')


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: the message names its folder and what is damaged (or,
    for one that does not fit the model, every missing, unexpected and mis-shaped variable)."""


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


def check_layout(path: str | os.PathLike, items: Sequence[str] = ('state', 'meta')) -> None:
    """Raise ``CheckpointError`` naming what is missing when ``path`` lacks one of ``items`` of a
    finalized training checkpoint (``state/`` with its tree metadata, ``meta/``). Reads no array."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise CheckpointError(f'checkpoint {path} does not exist or is not a directory')
    present = [item for item in ('state', 'meta') if os.path.isdir(os.path.join(path, item))]
    if not present:
        raise CheckpointError(f'{path} is not an actionjax training checkpoint (no state/ and meta/; '
                              'expected a folder such as work_dir/epoch_1)')
    for item, file in (('state', _TREE_METADATA), ('meta', 'metadata')):
        if item not in items:
            continue
        if item not in present:
            raise CheckpointError(f'checkpoint {path} is damaged: its {item}/ folder is missing')
        if not os.path.isfile(os.path.join(path, item, file)):
            raise CheckpointError(f'checkpoint {path} is damaged: {item}/{file} is missing')
    if not ocp.utils.is_checkpoint_finalized(path):
        raise CheckpointError(f'checkpoint {path} is damaged: it was never finished (a run stopped while '
                              'saving it)')


def read_meta(path: str | os.PathLike) -> dict:
    """The ``meta`` item of a training checkpoint; ``CheckpointError`` when it cannot be read."""
    path = os.path.abspath(os.fspath(path))
    check_layout(path)
    file = os.path.join(path, 'meta', 'metadata')
    try:
        with open(file) as f:
            meta = json.load(f)
    except (OSError, ValueError) as err:
        raise CheckpointError(f'checkpoint {path} is damaged: meta/metadata is not readable JSON '
                              f'({err})') from None
    if not isinstance(meta, dict):
        raise CheckpointError(f'checkpoint {path} is damaged: meta/metadata is not a JSON object')
    return meta


def restore_checkpoint(path: str | os.PathLike, target: Any) -> tuple[Any, dict]:
    """``(state, meta)`` from ``path``; ``target`` gives the structure, dtypes and shardings.

    ``target`` may be a concrete state or one of ``jax.ShapeDtypeStruct``. A damaged
    checkpoint raises ``CheckpointError`` naming the folder and the damage; one whose tree
    does not match ``target`` raises orbax's error with the mismatching paths.
    """
    path = os.path.abspath(os.fspath(path))
    meta = read_meta(path)
    check_arrays(os.path.join(path, 'state'), path)
    abstract = jax.tree.map(_abstract, target)
    with damage_reported(path):
        restored = _checkpointer().restore(path, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract)))
    return restored['state'], meta


def read_state(path: str | os.PathLike, collections: Sequence[str] | None = None) -> dict:
    """The ``state`` item of a training checkpoint as nested dicts of numpy arrays.

    ``collections`` picks top-level entries (``('params', 'batch_stats')`` for inference:
    the optimizer state is then never read); None reads everything. Needs no target tree
    and works whatever number of devices wrote the checkpoint.
    """
    path = os.path.abspath(os.fspath(path))
    check_layout(path, ('state',))
    item = _stored_tree(path)
    if collections is not None:
        item = {key: item[key] for key in collections if key in item}
    check_arrays(os.path.join(path, 'state'), path, tuple(f'{key}.' for key in item))
    restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), item)
    with damage_reported(path):
        return ocp.Checkpointer(ocp.PyTreeCheckpointHandler()).restore(
            os.path.join(path, 'state'),
            args=ocp.args.PyTreeRestore(item, restore_args=restore_args, partial_restore=True))


# orbax's file listing the saved tree: each leaf's key path and value type, no array data
_TREE_METADATA = '_METADATA'


def _stored_tree(path: str) -> dict:
    """The saved state tree with a placeholder at each array (None where orbax stored None),
    read from ``state/_METADATA`` alone, so a damaged array elsewhere does not stop it."""
    file = os.path.join(path, 'state', _TREE_METADATA)
    try:
        with open(file) as f:
            entries = json.load(f)['tree_metadata'].values()
        tree: dict = {}
        for entry in entries:
            keys = [(k['key'], k['key_type']) for k in entry['key_metadata']]
            node = tree
            for key, _ in keys[:-1]:
                node = node.setdefault(key, {})
            node[keys[-1][0]] = None if entry['value_metadata']['value_type'] == 'None' else 0
        sequences = {tuple(k['key'] for k in e['key_metadata'][:i])
                     for e in entries for i, k in enumerate(e['key_metadata']) if k['key_type'] == 1}
        return _as_sequences(tree, (), sequences)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f'checkpoint {path} is damaged: state/{_TREE_METADATA} is not readable '
                              f'({type(err).__name__}: {err})') from None


def _as_sequences(node: Any, prefix: tuple, sequences: set) -> Any:
    """Turn the dicts that orbax recorded as sequences (key type 1) back into lists."""
    if not isinstance(node, dict):
        return node
    children = {k: _as_sequences(v, (*prefix, k), sequences) for k, v in node.items()}
    if prefix in sequences:
        return [children[k] for k in sorted(children, key=int)]
    return children


def check_arrays(directory: str | os.PathLike, checkpoint: str | os.PathLike | None = None,
                 prefixes: tuple[str, ...] = ()) -> None:
    """Read every stored array chunk of an orbax item ``directory`` once (those whose name starts
    with one of ``prefixes``, if given), raising ``CheckpointError`` on the first damaged one.

    orbax reads arrays concurrently, and a damaged file then also makes its event loop print
    a stream of tracebacks; this check reads them one after another first, so the only
    thing a damaged checkpoint prints is the error. ``checkpoint`` names the folder in it.
    """
    import tensorstore as ts

    directory = os.path.abspath(os.fspath(directory))
    checkpoint = os.fspath(checkpoint or directory)
    if not os.path.isfile(os.path.join(directory, 'manifest.ocdbt')):
        return  # not an OCDBT store (an old orbax format): orbax's own read reports damage
    try:
        store = ts.KvStore.open({'driver': 'ocdbt', 'base': f'file://{directory}/'}).result()
        keys = [key for key in store.list().result() if key.decode().startswith(prefixes or '')]
    except Exception as err:  # noqa: BLE001 - TensorStore raises ValueError / bare Exception
        index = f'{os.path.basename(directory)}/manifest.ocdbt'
        raise CheckpointError(f'checkpoint {checkpoint} is damaged: the index of its array data ({index} '
                              f'and the files it lists) cannot be read ({str(err).splitlines()[0][:300]})'
                              ) from None
    for start in range(0, len(keys), 64):  # a few reads in flight, not the whole checkpoint in memory
        reads = [(key, store.read(key)) for key in keys[start:start + 64]]
        for key, read in reads:
            try:
                read.result()
            except Exception as err:  # noqa: BLE001 - as above
                status, _, detail = str(err).splitlines()[0].partition(': ')
                what = _DAMAGE.get(status, f'its array data cannot be read ({status})')
                raise CheckpointError(f'checkpoint {checkpoint} is damaged: {what} (reading '
                                      f'{key.decode()}: {detail[:200]})') from None


_DAMAGE = {'OUT_OF_RANGE': 'a data file under state/ is truncated',
           'DATA_LOSS': 'a data file under state/ is corrupt',
           'NOT_FOUND': 'a data file under state/ is missing'}


@contextlib.contextmanager
def damage_reported(path: str | os.PathLike) -> Iterator[None]:
    """Turn TensorStore's read errors inside the block (a page of JSON spec) into one
    ``CheckpointError`` line naming ``path`` and the damage."""
    try:
        yield
    except CheckpointError:
        raise
    except Exception as err:  # noqa: BLE001 - orbax/TensorStore raise bare Exception and ValueError
        cause = _tensorstore_cause(err)
        if cause is None:
            raise
        status, detail = cause
        what = _DAMAGE.get(status, f'its array data cannot be read ({status})')
        raise CheckpointError(f'checkpoint {path} is damaged: {what} ({detail})') from None


def _tensorstore_cause(err: BaseException) -> tuple[str, str] | None:
    """``(status, first line)`` of the first TensorStore status message in ``err``'s chain."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        match = re.match(r'([A-Z_]+): (.*)', str(err).split('\n')[0])
        if match and match.group(1) in (*_DAMAGE, 'FAILED_PRECONDITION', 'INVALID_ARGUMENT', 'UNKNOWN'):
            detail = re.sub(r' in OCDBT database at local file "[^"]*"', '', match.group(2))
            return match.group(1), detail[:300]
        err = err.__cause__ or err.__context__
    return None


def _abstract(x: Any) -> Any:
    if isinstance(x, jax.ShapeDtypeStruct):
        return x
    sharding = getattr(x, 'sharding', None)
    return jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=sharding)


def find_latest(work_dir: str | os.PathLike) -> str | None:
    """The ``epoch_N``/``iter_N`` checkpoint with the most training steps whose meta reads, or None.

    Reads no array data: ``find_resumable`` also checks that the state reads.
    """
    ordered, _ = _by_step(work_dir)
    return ordered[0] if ordered else None


def find_resumable(work_dir: str | os.PathLike) -> tuple[str | None, list[tuple[str, str]]]:
    """The newest intact ``epoch_N``/``iter_N`` checkpoint of ``work_dir`` (None if there is none) and
    ``(path, what is damaged)`` for each newer or unreadable one passed over. Nothing is deleted."""
    ordered, damaged = _by_step(work_dir)
    for path in ordered:
        try:
            read_state(path)
        except CheckpointError as err:
            damaged.append((path, str(err)))
            continue
        return path, damaged
    return None, damaged


def _by_step(work_dir: str | os.PathLike) -> tuple[list[str], list[tuple[str, str]]]:
    """Readable ``epoch_N``/``iter_N`` checkpoints, most training steps first, and the unreadable."""
    work_dir = os.fspath(work_dir)
    if not os.path.isdir(work_dir):
        return [], []
    found, damaged = [], []
    for name in os.listdir(work_dir):
        path = os.path.join(work_dir, name)
        if not _NAME.match(name) or not os.path.isdir(path):
            continue
        try:
            found.append((int(read_meta(path)['iter']), path))
        except CheckpointError as err:
            damaged.append((path, str(err)))
        except (KeyError, TypeError, ValueError):
            damaged.append((path, f'checkpoint {path} is damaged: meta/metadata has no iteration count'))
    return [path for _, path in sorted(found, reverse=True)], sorted(damaged)


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
    best = []
    for n in os.listdir(work_dir or '.'):
        if n.startswith('best_') and is_train_checkpoint(os.path.join(work_dir, n)):
            try:
                best.append((int(read_meta(os.path.join(work_dir, n))['iter']), n))
            except CheckpointError:
                continue
    if not best:
        return path
    return os.path.join(work_dir, max(best)[1])


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
            raise ConfigKeyError(f'checkpoint_config: unknown keys {sorted(unknown)}; known: {sorted(known)}')
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
