"""The training loop, read top to bottom.

``run_training`` takes built pieces (model, optimizer, data) and runs epochs:
a jitted step per batch, logs every ``log_config.interval`` iterations, checkpoints
and evaluation at their intervals. The host never waits for the device inside an
interval: metrics stay on the device until the log line needs them, and the next
batch is already being copied while the current step runs.

Resuming is exact. The state holds the step and the base key (per-step keys are
derived from both), a checkpoint records how far into its epoch the data went, and
the loader's order and augmentation are functions of (seed, epoch, index), so a
resumed run sees the same batches and draws the same random numbers as one that
was never stopped.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from actionjax.engine.checkpoint import CheckpointPolicy, restore_checkpoint
from actionjax.engine.evaluation import BestTracker, evaluate, predict
from actionjax.engine.logger import RunLogger, mean_metrics
from actionjax.engine.sharding import prefetch_to_device
from actionjax.engine.state import TrainState
from actionjax.engine.steps import make_eval_step, make_train_step


class EpochData(Protocol):
    """What the loop needs from the training loader (``actionjax.data.loader.DataLoader``).

    Iterating yields the rest of the current epoch, then moves on to the next
    epoch; ``get_state()`` right after a batch is the position after it, and
    ``set_state`` restores such a position exactly.
    """

    epoch: int

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Mapping[str, np.ndarray]]: ...

    def get_state(self) -> dict: ...

    def set_state(self, state: Mapping[str, Any]) -> None: ...

    def set_epoch(self, epoch: int) -> None: ...


class EvalData(Protocol):
    """A finite loader over the validation set whose padding rows carry ``valid=False``."""

    def __iter__(self) -> Iterator[Mapping[str, np.ndarray]]: ...

    def __len__(self) -> int: ...


@dataclass
class LoopConfig:
    """The runtime settings the loop reads, already resolved from the config."""

    work_dir: str
    max_epochs: int
    log_interval: int = 20
    eval_interval: int = 1
    metrics: tuple[str, ...] = ('top_k_accuracy',)
    metric_options: dict = field(default_factory=dict)
    save_best: str | None = None
    rule: str | None = None
    checkpoint: dict = field(default_factory=dict)
    config_text: str = ''

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], work_dir: str) -> LoopConfig:
        """``total_epochs``, ``log_config``, ``evaluation`` and ``checkpoint_config`` of a 0.x config."""
        if cfg.get('total_epochs') is None:
            raise KeyError('the config sets no total_epochs (MMAction2 0.x) or train_cfg.max_epochs (1.x); '
                           'training is epoch based: add e.g. total_epochs = 50')
        evaluation = dict(cfg.get('evaluation') or {})
        metrics = evaluation.get('metrics', 'top_k_accuracy')
        return cls(work_dir=work_dir, max_epochs=int(cfg['total_epochs']),
                   log_interval=int((cfg.get('log_config') or {}).get('interval', 20)),
                   eval_interval=int(evaluation.get('interval', 1)),
                   metrics=(metrics,) if isinstance(metrics, str) else tuple(metrics),
                   metric_options=dict(evaluation.get('metric_options') or {}),
                   save_best=evaluation.get('save_best'), rule=evaluation.get('rule'),
                   checkpoint=dict(cfg.get('checkpoint_config') or {}),
                   config_text=getattr(cfg, 'pretty_text', ''))


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the message names the step, the lr and a checkpoint to use."""


def run_training(model: Any, tx: Any, lr_fn: Callable[[int], Any], state: TrainState,
                 train_data: EpochData, loop: LoopConfig, mesh_shardings: tuple[Any, Any],
                 logger: RunLogger, val_data: EvalData | None = None, val_size: int | None = None,
                 resume_from: str | None = None) -> tuple[TrainState, dict | None]:
    """Train ``state`` for ``loop.max_epochs`` epochs; returns it with the last evaluation results.

    ``mesh_shardings`` is ``(replicated, batch_sharded)``. ``resume_from`` names a
    checkpoint written by this loop: state, epoch, position in the epoch and best
    score continue from it.
    """
    state_sharding, batch_sharding = mesh_shardings
    iters_per_epoch = len(train_data)
    max_iters = loop.max_epochs * iters_per_epoch
    ckpt = CheckpointPolicy.from_config(loop.work_dir, loop.checkpoint)
    best = BestTracker(loop.save_best, loop.rule)
    results = None

    # Where to start: a fresh run, or wherever the checkpoint left off (data position included).
    epoch, inner = 0, 0
    last_ckpt = None
    data_state = None
    train_data.set_epoch(0)
    if resume_from:
        state, meta = restore_checkpoint(resume_from, state)
        epoch, inner = int(meta['epoch']), int(meta['inner_iter'])
        # The first process writes the meta; every process continues from the same position
        # but keeps its own shard of each batch.
        data_state = dict(meta['data_state'])
        if 'shard_index' in data_state:
            data_state['shard_index'] = train_data.get_state()['shard_index']
        train_data.set_state(data_state)
        best = BestTracker(loop.save_best, loop.rule, meta.get('best_score'), meta.get('best_ckpt'))
        last_ckpt = resume_from
        logger.info(f'resumed from {resume_from}: epoch {epoch}, iteration {meta["iter"]}')
    state = jax.device_put(state, state_sharding)

    train_step = make_train_step(model, tx, state_sharding, batch_sharding)
    eval_step = make_eval_step(model, state_sharding, batch_sharding)
    timer = _Timer(max_iters)

    def meta_for(epoch_done: int, inner_done: int) -> dict:
        global_iter = epoch_done * iters_per_epoch + inner_done
        return {'epoch': epoch_done, 'inner_iter': inner_done, 'iter': global_iter, 'data_state': data_state,
                'best_score': best.best_score, 'best_ckpt': best.best_path,
                'time': time.strftime('%Y-%m-%d %H:%M:%S'), 'config': loop.config_text}

    while epoch < loop.max_epochs:
        logger.start_epoch(epoch + 1, iters_per_epoch, initial=inner)
        pending: list[dict] = []  # per-step metrics since the last log line, on device until needed
        if train_data.epoch != epoch:
            raise RuntimeError(f'the training loader is at epoch {train_data.epoch}, the loop at {epoch}')
        # Each batch travels with the loader position after it: what a checkpoint must record.
        items = (({'imgs': b['imgs'], 'label': b['label']}, train_data.get_state()) for b in train_data)
        batches = prefetch_to_device(items, batch_sharding)
        timer.start_interval()
        while True:
            t0 = time.perf_counter()
            try:
                device_batch, position = next(batches)
            except StopIteration:
                break
            timer.data_time += time.perf_counter() - t0
            state, metrics = train_step(state, device_batch)
            pending.append(metrics)
            data_state = position
            inner += 1
            global_iter = epoch * iters_per_epoch + inner
            logger.advance()

            epoch_end = inner == iters_per_epoch
            if inner % loop.log_interval == 0 or epoch_end:
                host = _check_finite(pending, global_iter, lr_fn, last_ckpt)
                elapsed, data_time = timer.end_interval(len(host))
                logger.log_train(epoch + 1, inner, iters_per_epoch, global_iter,
                                 float(lr_fn(global_iter - 1)), mean_metrics(host),
                                 elapsed / len(host), data_time / len(host), timer.eta(global_iter))
                pending = []
                timer.start_interval()
            if ckpt.iter_due(global_iter, max_iters, epoch_end):
                _check_finite(pending, global_iter, lr_fn, last_ckpt, state)
                last_ckpt = ckpt.save('iter', global_iter, state, meta_for(epoch, inner))
        logger.close_bar()
        if inner < iters_per_epoch:
            raise RuntimeError(f'the training loader ended after {inner} of {iters_per_epoch} batches '
                               f'in epoch {epoch + 1}')
        epoch, inner = epoch + 1, 0
        data_state = train_data.get_state()  # the next epoch's start

        if ckpt.epoch_due(epoch, loop.max_epochs):
            _check_finite([], epoch * iters_per_epoch, lr_fn, last_ckpt, state)
            last_ckpt = ckpt.save('epoch', epoch, state, meta_for(epoch, 0))
            logger.info(f'saved checkpoint {last_ckpt}')
        if val_data is not None and loop.eval_interval > 0 and epoch % loop.eval_interval == 0:
            scores, labels = predict(eval_step, state.variables, val_data, batch_sharding, val_size)
            results = evaluate(scores, labels, loop.metrics, loop.metric_options)
            logger.log_val(epoch, epoch * iters_per_epoch, results)
            if best.update(results):
                best.best_path = _save_best(ckpt, best, epoch, state, meta_for(epoch, 0))
                logger.info(f'best {best.key} {best.best_score:.4f} at epoch {epoch}: {best.best_path}')
        timer.start_interval()  # evaluation and saving are not iteration time
    return state, results


def _save_best(ckpt: CheckpointPolicy, best: BestTracker, epoch: int, state: TrainState, meta: dict) -> str:
    """Write ``best_{key}_epoch_{n}`` and remove the previous best, as mmcv's EvalHook does."""
    import shutil

    from actionjax.engine.checkpoint import save_checkpoint

    path = os.path.join(ckpt.work_dir, f'best_{best.key}_epoch_{epoch}')
    meta = dict(meta, best_score=best.best_score, best_ckpt=path)
    save_checkpoint(path, state, meta)
    if best.best_path and best.best_path != path and os.path.isdir(best.best_path):
        shutil.rmtree(best.best_path, ignore_errors=True)
    return path


def _check_finite(pending: list[dict], global_iter: int, lr_fn: Callable[[int], Any],
                  last_ckpt: str | None, state: TrainState | None = None) -> list[dict]:
    """Fetch pending metrics to the host (in place); stop on the first NaN/inf loss.

    With ``state`` (before a save) the parameters are checked too: one huge update can
    overflow them after a step whose loss was still finite, and a checkpoint must
    never hold such weights.
    """
    first = global_iter - len(pending) + 1
    pending[:] = jax.device_get(pending)
    for offset, metrics in enumerate(pending):
        loss = float(metrics['loss'])
        if not math.isfinite(loss):
            _stop(f'loss is {loss} at iteration {first + offset}', first + offset, lr_fn, last_ckpt)
    if state is not None and not bool(_all_finite(state.params)):
        _stop(f'the parameters became NaN/inf by iteration {global_iter}', global_iter, lr_fn, last_ckpt)
    return pending


@jax.jit
def _all_finite(tree: Any) -> jax.Array:
    return jnp.all(jnp.array([jnp.isfinite(x).all() for x in jax.tree.leaves(tree)]))


def _stop(what: str, step: int, lr_fn: Callable[[int], Any], last_ckpt: str | None) -> None:
    raise NonFiniteLossError(
        f'{what} (lr {float(lr_fn(step - 1)):.6g}); the last good checkpoint is '
        f'{last_ckpt or "none (no checkpoint saved yet)"}. Lower optimizer.lr, add warmup or '
        'grad clipping (optimizer_config.grad_clip), then resume with --resume-from.')


class _Timer:
    """Iteration and data-loading times per log interval, and the ETA from their average."""

    def __init__(self, max_iters: int) -> None:
        self.max_iters = max_iters
        self.intervals: list[tuple[float, int]] = []  # (seconds, iterations) per log interval
        self.data_time = 0.0
        self._t0 = time.perf_counter()

    def start_interval(self) -> None:
        self._t0 = time.perf_counter()
        self.data_time = 0.0

    def end_interval(self, n: int) -> tuple[float, float]:
        elapsed = time.perf_counter() - self._t0
        self.intervals.append((elapsed, n))
        return elapsed, self.data_time

    def eta(self, global_iter: int) -> float:
        # The first interval includes compilation: leave it out once there is another.
        intervals = self.intervals[1:] or self.intervals
        seconds, iters = map(sum, zip(*intervals, strict=True))
        return seconds / max(iters, 1) * (self.max_iters - global_iter)
