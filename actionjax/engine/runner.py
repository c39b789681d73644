"""The training loop, read top to bottom.

``run_training`` takes built pieces (model, optimizer, data) and runs epochs (or a
number of iterations): a jitted step per batch, logs every ``log.interval`` iterations,
checkpoints and validation at their intervals. The host never waits for the device inside an
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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from actionjax.engine.checkpoint import CheckpointPolicy, restore_checkpoint
from actionjax.engine.evaluation import BestTracker, run_evaluation
from actionjax.engine.logger import RunLogger, mean_metrics
from actionjax.engine.sharding import prefetch_to_device
from actionjax.engine.state import TrainState
from actionjax.engine.steps import make_eval_step, make_train_step
from actionjax.engine.trace_cache import trace_key


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
    """What the loop reads, from the runtime config's ``train_loop``, ``log``, ``checkpoint``,
    ``save_best`` and ``rule`` (``actionjax.runtime_config``)."""

    work_dir: str
    by_epoch: bool
    max_epochs: int | None
    max_iters: int | None
    val_interval: int
    val_begin: int
    log_interval: int
    save_best: str | None
    rule: str | None
    checkpoint: dict
    config_text: str = ''
    trace_key: str | None = None  # what the traced steps are stored under (trace_cache)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], work_dir: str) -> LoopConfig:
        from actionjax.config import ConfigKeyError
        from actionjax.runtime_config import NO_RUN_LENGTH

        if cfg['train_loop'] is None:
            raise ConfigKeyError(NO_RUN_LENGTH)
        source = getattr(cfg, 'source', None) or cfg
        return cls(work_dir=work_dir, **cfg['train_loop'], log_interval=cfg['log']['interval'],
                   save_best=cfg['save_best'], rule=cfg['rule'], checkpoint=dict(cfg['checkpoint']),
                   config_text=getattr(source, 'pretty_text', ''), trace_key=trace_key(cfg))

    def total_iters(self, iters_per_epoch: int) -> int:
        return self.max_epochs * iters_per_epoch if self.by_epoch else self.max_iters


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the message names the step, the lr and a checkpoint to use."""


@dataclass
class Validation:
    """What validation needs: the loader, the dataset, the metric objects (``build_metrics``)."""

    data: EvalData
    dataset: Any
    metrics: list


def run_training(model: Any, tx: Any, state: TrainState, train_data: EpochData, loop: LoopConfig,
                 mesh_shardings: tuple[Any, Any], logger: RunLogger, val: Validation | None = None,
                 resume_from: str | None = None) -> tuple[TrainState, dict | None]:
    """Train ``state`` for the run ``loop`` describes; returns it with the last validation results.

    Epoch-based runs (``loop.by_epoch``) validate and save every so many epochs,
    iteration-based ones every so many iterations; both walk the loader's epochs, so
    data order and resumption work the same way. ``mesh_shardings`` is ``(replicated,
    batch_sharded)``. ``resume_from`` names a checkpoint written by this loop: state,
    position in the data and best score continue from it.
    """
    state_sharding, batch_sharding = mesh_shardings
    iters_per_epoch = len(train_data)
    max_iters = loop.total_iters(iters_per_epoch)
    ckpt = CheckpointPolicy.from_config(loop.work_dir, dict(loop.checkpoint, by_epoch=loop.by_epoch))
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
    global_iter = epoch * iters_per_epoch + inner

    # The config (and for the optimizer's schedules, the run's length) fixes the traced steps,
    # which a later launch can then load (trace_cache); without a config, they are traced anew.
    train_key = loop.trace_key and f'{loop.trace_key}\n{max_iters} iterations, {iters_per_epoch} per epoch'
    train_step = make_train_step(model, tx, state_sharding, batch_sharding, cache_key=train_key)
    eval_step = (make_eval_step(model, state_sharding, batch_sharding, cache_key=loop.trace_key)
                 if val is not None else None)
    timer = _Timer(max_iters)

    def meta_for(epoch_done: int, inner_done: int) -> dict:
        return {'epoch': epoch_done, 'inner_iter': inner_done,
                'iter': epoch_done * iters_per_epoch + inner_done, 'data_state': data_state,
                'best_score': best.best_score, 'best_ckpt': best.best_path,
                'time': time.strftime('%Y-%m-%d %H:%M:%S'), 'config': loop.config_text}

    def validate(count: int, name: str) -> None:
        """Evaluate after ``count`` epochs or iterations; keep a best checkpoint as asked."""
        nonlocal results
        from actionjax.data.loader import sample_name

        if results is None:  # this run's first validation
            logger.info('validating: the first validation also compiles the eval step')
        logger.start_bar('val', len(val.data))
        results, unreadable = run_evaluation(eval_step, state.variables, val.data, batch_sharding,
                                             val.metrics, val.dataset, on_batch=logger.advance)
        logger.close_bar()
        if unreadable:
            shown = ', '.join(sample_name(val.dataset, i) for i in unreadable[:20])
            logger.warning(f'validation: {len(unreadable)} unreadable sample(s) not scored, the metrics '
                           f'cover the other {len(val.dataset) - len(unreadable)}: {shown}'
                           + (' ...' if len(unreadable) > 20 else ''))
        logger.log_val(epoch if loop.by_epoch else 0, global_iter, results)
        if best.update(results):
            best.best_path = _save_best(ckpt, best, name, count, state, meta_for(epoch, inner))
            logger.info(f'best {best.key} {best.best_score:.4f} at {name} {count}: {best.best_path}')

    def due(count: int) -> bool:
        return (val is not None and loop.val_interval > 0 and count >= loop.val_begin
                and count % loop.val_interval == 0)

    while global_iter < max_iters:
        logger.start_epoch(epoch + 1, iters_per_epoch, initial=inner)
        pending: list[dict] = []  # per-step metrics since the last log line, on device until needed
        if train_data.epoch != epoch:
            raise RuntimeError(f'the training loader is at epoch {train_data.epoch}, the loop at {epoch}')
        # Each batch travels with the loader position after it: what a checkpoint must record.
        items = ((dict(b), train_data.get_state()) for b in train_data)
        batches = prefetch_to_device(items, batch_sharding)
        timer.start_interval()
        while global_iter < max_iters:
            t0 = time.perf_counter()
            try:
                device_batch, position = next(batches)
            except StopIteration:
                break
            timer.data_time += time.perf_counter() - t0
            if timer.compile_time is None:  # jit compiles on the first call, before it dispatches
                logger.info('compiling the train step (the first iteration waits for it)')
            t_step = time.perf_counter()
            state, metrics = train_step(state, device_batch)
            if timer.compile_time is None:
                timer.exclude_compile(time.perf_counter() - t_step)
                logger.info(f'train step compiled in {timer.compile_time:.1f} s')
            pending.append(metrics)
            data_state = position
            inner += 1
            global_iter += 1
            logger.advance()

            epoch_end = inner == iters_per_epoch
            if global_iter % loop.log_interval == 0 or epoch_end or global_iter == max_iters:
                host = _check_finite(pending, global_iter, last_ckpt)
                elapsed, data_time = timer.end_interval(len(host))
                where = (f'Epoch [{epoch + 1}][{inner}/{iters_per_epoch}]' if loop.by_epoch
                         else f'Iter [{global_iter}/{max_iters}]')
                logger.log_train(where, epoch + 1, inner, global_iter, mean_metrics(host),
                                 elapsed / len(host), data_time / len(host), timer.eta(global_iter))
                pending = []
                timer.start_interval()
            if ckpt.iter_due(global_iter, max_iters, epoch_end):
                _check_finite(pending, global_iter, last_ckpt, state, metrics.get('lr'))
                last_ckpt = ckpt.save('iter', global_iter, state, meta_for(epoch, inner))
            if not loop.by_epoch and due(global_iter):
                validate(global_iter, 'iter')
                logger.start_epoch(epoch + 1, iters_per_epoch, initial=inner)
                timer.start_interval()
        logger.close_bar()
        if inner < iters_per_epoch and global_iter < max_iters:
            raise RuntimeError(f'the training loader ended after {inner} of {iters_per_epoch} batches '
                               f'in epoch {epoch + 1}')
        if inner < iters_per_epoch:  # an iteration-based run that ends inside an epoch
            break
        epoch, inner = epoch + 1, 0
        data_state = train_data.get_state()  # the next epoch's start

        if loop.by_epoch and ckpt.epoch_due(epoch, loop.max_epochs):
            _check_finite([], global_iter, last_ckpt, state, metrics.get('lr'))
            last_ckpt = ckpt.save('epoch', epoch, state, meta_for(epoch, 0))
            logger.info(f'saved checkpoint {last_ckpt}')
        if loop.by_epoch and due(epoch):
            validate(epoch, 'epoch')
        timer.start_interval()  # evaluation and saving are not iteration time
    logger.log_summary(best.key, best.best_score, best.best_path, last_ckpt, global_iter)
    return state, results


def _save_best(ckpt: CheckpointPolicy, best: BestTracker, unit: str, count: int, state: TrainState,
               meta: dict) -> str:
    """Write ``best_{key}_{epoch|iter}_{n}`` and remove the previous best, as mmcv's EvalHook does."""
    import shutil

    from actionjax.engine.checkpoint import save_checkpoint

    path = os.path.join(ckpt.work_dir, f'best_{best.key.replace("/", "_")}_{unit}_{count}')
    meta = dict(meta, best_score=best.best_score, best_ckpt=path)
    save_checkpoint(path, state, meta)
    if best.best_path and best.best_path != path and os.path.isdir(best.best_path):
        shutil.rmtree(best.best_path, ignore_errors=True)
    return path


def _check_finite(pending: list[dict], global_iter: int, last_ckpt: str | None,
                  state: TrainState | None = None, lr: Any = None) -> list[dict]:
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
            _stop(f'loss is {loss} at iteration {first + offset}', metrics.get('lr'), last_ckpt)
    if state is not None and not bool(_all_finite(state.params)):
        _stop(f'the parameters became NaN/inf by iteration {global_iter}', lr, last_ckpt)
    return pending


@jax.jit
def _all_finite(tree: Any) -> jax.Array:
    return jnp.all(jnp.array([jnp.isfinite(x).all() for x in jax.tree.leaves(tree)]))


def _stop(what: str, lr: Any, last_ckpt: str | None) -> None:
    at_lr = f' (lr {float(lr):.6g})' if lr is not None else ''
    raise NonFiniteLossError(
        f'{what}{at_lr}; the last good checkpoint is '
        f'{last_ckpt or "none (no checkpoint saved yet)"}. Lower optimizer.lr, add warmup or '
        'grad clipping (optimizer_config.grad_clip), then resume with --resume-from.')


class _Timer:
    """Iteration and data-loading times per log interval, and the ETA from their average.

    Compilation is left out of both: the interval that compiled the step would otherwise
    report a step time, and an ETA, many times the real ones.
    """

    def __init__(self, max_iters: int) -> None:
        self.max_iters = max_iters
        self.intervals: list[tuple[float, int]] = []  # (seconds, iterations) per log interval
        self.data_time = 0.0
        self.compile_time: float | None = None  # seconds the first train step spent compiling
        self._excluded = 0.0
        self._t0 = time.perf_counter()

    def start_interval(self) -> None:
        self._t0 = time.perf_counter()
        self.data_time = 0.0
        self._excluded = 0.0

    def exclude_compile(self, seconds: float) -> None:
        self.compile_time = seconds
        self._excluded += seconds

    def end_interval(self, n: int) -> tuple[float, float]:
        elapsed = max(time.perf_counter() - self._t0 - self._excluded, 0.0)
        self.intervals.append((elapsed, n))
        return elapsed, self.data_time

    def eta(self, global_iter: int) -> float:
        seconds, iters = map(sum, zip(*self.intervals, strict=True))
        return seconds / max(iters, 1) * (self.max_iters - global_iter)
