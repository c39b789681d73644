"""The data loader: datasets -> fixed-shape uint8 batches, decoded in grain worker processes.

API
---
``build_dataset(cfg, key_path='data.train', **default_args) -> dataset``
    ``DATASETS.build`` of the dataset config at ``key_path`` (``cfg`` may also be
    the dataset config itself). ``len(dataset)`` samples; ``dataset[i]`` is sample
    ``i``'s results dict after the pipeline; ``dataset.prepare(i, rng)`` the same
    with the random transforms drawing from ``rng``.

``build_dataloader(dataset, *, batch_size, num_workers=0, shuffle=False, seed=0, drop_last=False,
epoch=0, shard_index=None, shard_count=None, prefetch=2, on_error=None) -> DataLoader``
    ``batch_size`` is per process (``videos_per_gpu * jax.local_device_count()``);
    ``num_workers`` decoding processes (0 = in this process, for debugging).
    ``loader_kwargs(cfg, split)`` reads these from an MMAction2 config.

A batch is a dict of numpy arrays, the same shapes every step::

    imgs   uint8  (B, V, H, W, C) or (B, V, T, H, W, C), as the pipeline's FormatShape makes them
    label  int32  (B,), or float32 (B, num_classes) for multi_class datasets
    valid  bool   (B,)  False on padding and on samples that failed to load in eval
    index  int32  (B,)  dataset index of each row

Samples without ``label`` (localization: ``raw_feature``, ``gt_bbox``, ``num_instances``;
SSN's ``imgs`` and proposal arrays) give every numeric entry of the pipeline's output
stacked under its own name, with ``valid`` and ``index`` beside them; names, lists and
dicts (``meta``) are left out.

Training (``shuffle=True, drop_last=True``): a new order every epoch, the last
incomplete batch dropped. Evaluation (``drop_last=False``): every sample exactly once,
in order, over all processes; the last batch is padded (copies of a real sample) and
``valid`` is False on the padding. ``len(loader)`` is the number of batches per epoch.

Epochs and resuming
-------------------
``for batch in loader`` yields the remaining batches of the current epoch
(``loader.epoch``), then moves to the next epoch, logs the epoch's report and starts
the next epoch's order. ``set_epoch(e)`` jumps to the start of epoch ``e``. Workers
persist across epochs and decode the next epoch's first batches while the engine
evaluates. The engine loop::

    loader = build_dataloader(train_set, batch_size=32, num_workers=2, shuffle=True,
                              seed=cfg.seed, drop_last=True)
    if resuming:
        loader.set_state(checkpoint['loader'])        # exact position, mid-epoch included
    with loader:                                      # close() stops the workers
        while loader.epoch < max_epochs:
            batches = prefetch_to_device(loader, 2, sharding)   # actionjax.data.prefetch
            for batch in batches:
                state = train_step(state, batch)
                if time_to_save:
                    save(state, loader=loader.get_state(pending=batches.pending))

``start_prefetch()`` starts the workers before the first batch is asked for (the
engine calls it before building the model).

``get_state(pending=0)`` returns a JSON-able dict ``{'epoch', 'next_batch', ...}``:
batches ``0 .. next_batch - 1`` of ``epoch`` have been consumed. ``pending`` is the
number of batches taken from the loader but not trained on yet (device prefetch), so a
resumed run repeats exactly those. ``set_state`` checks that the dataset size, batch
layout and seed match the saved ones.

Reproducibility
---------------
Sample ``i`` of epoch ``e`` gets ``results['rng'] = np.random.default_rng([seed, e, i])``
and batch ``k`` of epoch ``e`` is a pure function of ``(seed, e, k)`` (grain hands
whole batches to workers round-robin and returns them in order), so the batches are
identical for any ``num_workers`` and across restarts.

Bad samples
-----------
A sample whose pipeline raises (unreadable, truncated or missing video) or returns
``None`` is replaced by another sample drawn deterministically from
``default_rng([seed, e, i, attempt])``; its file is logged once (logger
``'actionjax'``, epochs counted from 1 as the training log counts them: ``Epoch [1]``)
and counted. With ``on_error='mask'`` (the default for ``test_mode`` datasets) the
replacement only fills the slot and ``valid`` is False, so metrics skip the broken video
instead of scoring another one under its label (the evaluation reports which). At the end
of each training epoch the loader logs how many samples were replaced;
``loader.last_report`` holds the numbers.
When nearly every sample fails the loader raises ``DataError``. The workers send their
failures with each batch, so the count is exact whatever the number of workers.

A worker process that dies (killed, out of memory) is restarted and the epoch goes on
from the first batch not yet delivered: nothing is skipped or repeated. The restart is
logged and counted (``report['worker_restarts']``); if the workers keep dying on the
same batch, the loader raises an error naming that batch's files.

Sharding and shutdown
---------------------
With several JAX processes each loader reads its own rows of every global batch
(``shard_index``/``shard_count`` default to ``jax.process_index()/process_count()``);
all processes see the same number of batches. ``close()`` (or leaving the ``with``
block) stops the workers and frees their shared memory (a loader still open when the
program exits is closed then); batches are plain numpy arrays, safe to keep after
``close()``. Workers are started with ``spawn``: a script that uses ``num_workers > 0``
needs the usual ``if __name__ == '__main__':`` guard.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import logging
import sys
import weakref
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from actionjax.data.datasets import build_dataset

__all__ = ['DataError', 'DataLoader', 'build_dataloader', 'build_dataset', 'loader_kwargs']

logger = logging.getLogger('actionjax')

STATE_VERSION = 1


class DataError(RuntimeError):
    """The data cannot be read at all (not a few bad files); the message says what to check."""


@dataclasses.dataclass(frozen=True)
class BatchPlan:
    """Which dataset indices make up batch ``k`` of epoch ``e`` on this process.

    A global batch is ``batch_size * shard_count`` consecutive entries of the epoch's
    order; process ``shard_index`` takes its ``batch_size`` rows of it. Without
    ``drop_last`` the order is padded with -1 to a whole number of global batches.
    """

    num_samples: int
    batch_size: int
    shuffle: bool
    seed: int
    drop_last: bool
    shard_index: int = 0
    shard_count: int = 1

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.shard_count

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.global_batch
        return -(-self.num_samples // self.global_batch)

    def order(self, epoch: int) -> np.ndarray:
        if self.shuffle:
            return np.random.default_rng([self.seed, epoch]).permutation(self.num_samples)
        return np.arange(self.num_samples)

    def batch_indices(self, order: np.ndarray, k: int) -> np.ndarray:
        """Dataset indices of this process's batch ``k`` (-1 marks padding)."""
        start = k * self.global_batch + self.shard_index * self.batch_size
        rows = order[start:start + self.batch_size]
        return np.concatenate([rows, np.full(self.batch_size - len(rows), -1, rows.dtype)])


class BatchLoader:
    """Loads whole batches; pickled into each worker process (decoders open there).

    Called with the global batch number ``g = epoch * batches_per_epoch + k``, so the
    result depends on nothing but ``g`` and the configuration.
    """

    def __init__(self, dataset: Any, plan: BatchPlan, mask_errors: bool, max_attempts: int = 10) -> None:
        self.dataset = dataset
        self.plan = plan
        self.mask_errors = mask_errors
        self.max_attempts = max_attempts
        self._order: tuple[int, np.ndarray] | None = None  # (epoch, order), cached per process

    def order(self, epoch: int) -> np.ndarray:
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, self.plan.order(epoch))
        return self._order[1]

    def __call__(self, g: int) -> dict[str, Any]:
        epoch, k = divmod(int(g), len(self.plan))
        order = self.order(epoch)
        indices = self.plan.batch_indices(order, k)
        failures: list[tuple[int, str, str, bool]] = []
        samples, valid = [], []
        for index in indices:
            if index < 0:  # padding: filled below with a copy of a real sample
                samples.append(None)
                valid.append(False)
                continue
            sample, ok = self.load(int(index), epoch, failures)
            samples.append(sample)
            valid.append(ok)
        if all(s is None for s in samples):  # a padding-only batch (last one, on some process)
            samples[0], _ = self.load(int(order[0]), epoch, [])  # a filler: its own slot reports it
        filler = next(s for s in samples if s is not None)
        samples = [filler if s is None else s for s in samples]
        if 'label' not in filler:  # localization features, SSN proposals: every array entry, stacked
            return dict(_stack_arrays(samples, indices), valid=np.asarray(valid, bool),
                        index=indices.astype(np.int32), failures=failures)
        return dict(
            imgs=_stack([s['imgs'] for s in samples], 'imgs', indices),
            label=_stack_labels([s['label'] for s in samples], indices),
            valid=np.asarray(valid, bool),
            index=indices.astype(np.int32),
            failures=failures,
        )

    def load(self, index: int, epoch: int, failures: list) -> tuple[dict[str, Any], bool]:
        """Sample ``index`` after the pipeline, or a deterministic replacement.

        Returns ``(results, ok)``; ``ok`` is False when the slot holds a replacement
        that metrics must skip (``mask_errors``). Failures are appended to ``failures``
        as ``(index, path, error, first)`` for the main process to log and count;
        ``first`` marks the slot's own sample (a failed replacement is not another slot).
        """
        seed = self.plan.seed
        candidate, rng = index, np.random.default_rng([seed, epoch, index])
        for attempt in range(1, self.max_attempts + 1):
            try:
                results = self.dataset.prepare(candidate, rng)
                error = None if results is not None else 'the pipeline dropped the sample (returned None)'
            except Exception as err:  # noqa: BLE001 - any failure of one file must not stop training
                results, error = None, f'{type(err).__name__}: {err}'
            if results is not None:
                return results, not (self.mask_errors and attempt > 1)
            failures.append((candidate, sample_name(self.dataset, candidate), error, attempt == 1))
            pick = np.random.default_rng([seed, epoch, index, attempt])
            candidate = int(pick.integers(len(self.dataset)))
            rng = np.random.default_rng([seed, epoch, index, attempt, candidate])
        raise DataError(
            f'{self.max_attempts} samples in a row failed to load, starting at index {index} '
            f'({sample_name(self.dataset, index)}); the last error: {failures[-1][2]}. This is more than '
            'a few bad files: check the pipeline and data_prefix, or run '
            'python -m actionjax.tools.check_videos')


def sample_name(dataset: Any, index: int) -> str:
    """Sample ``index`` of ``dataset`` as a user can find it: its file, else its index."""
    try:
        return str(dataset.sample_path(index))
    except Exception:  # noqa: BLE001 - a dataset without paths still gets its failures reported
        return f'sample {index}'


def _stack(arrays: list[Any], key: str, indices: np.ndarray) -> np.ndarray:
    arrays = [np.asarray(a) for a in arrays]
    first = arrays[0]
    for a, index in zip(arrays, indices, strict=True):
        if a.shape != first.shape or a.dtype != first.dtype:
            raise ValueError(
                f"pipeline outputs differ within a batch: results['{key}'] is {first.dtype}{first.shape} "
                f'for one sample and {a.dtype}{a.shape} for sample {index}; batches need fixed shapes, '
                'so end the pipeline with fixed-size crops (e.g. CenterCrop / Resize to a fixed scale)')
    return np.stack(arrays)


def _stack_arrays(samples: list[dict[str, Any]], indices: np.ndarray) -> dict[str, np.ndarray]:
    """Every numeric entry (arrays and numbers) of the samples, stacked; names and dicts stay behind."""
    keys = [key for key, value in samples[0].items()
            if isinstance(value, (np.ndarray, np.number, int, float, bool)) and key != 'rng']
    return {key: _stack([s[key] for s in samples], key, indices) for key in keys}


def _stack_labels(labels: list[Any], indices: np.ndarray) -> np.ndarray:
    if np.ndim(labels[0]) == 0:
        return np.asarray(labels, np.int32)
    return _stack([np.asarray(label, np.float32) for label in labels], 'label', indices)


def _worker_init(worker_index: int, worker_count: int) -> None:
    """Worker process set-up: parallelism comes from the workers, so OpenCV stays single-threaded."""
    import cv2

    cv2.setNumThreads(1)


def _mark_absl_flags_parsed() -> None:
    # grain reads its absl flags when it starts worker processes; a program that does
    # not use absl (ours) never parses them and grain would raise UnparsedFlagAccessError.
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


def _is_worker_death(err: BaseException) -> bool:
    # grain's message when a worker process exits without reporting an error.
    return isinstance(err, RuntimeError) and 'terminated unexpectedly' in str(err)


def _close_at_exit(loader_ref: weakref.ref) -> None:
    loader = loader_ref()
    if loader is not None:
        loader.close()


def _plain(value: Any) -> Any:
    """Copy a worker's shared-memory array into ordinary memory (and free the segment)."""
    return np.array(value) if isinstance(value, np.ndarray) else value


class DataLoader:
    """Iterates a dataset in fixed-shape batches, epoch after epoch; see the module docstring."""

    def __init__(self, dataset: Any, *, batch_size: int, num_workers: int = 0, shuffle: bool = False,
                 seed: int = 0, drop_last: bool = False, epoch: int = 0, shard_index: int | None = None,
                 shard_count: int | None = None, prefetch: int = 2, on_error: str | None = None,
                 max_worker_restarts: int = 3) -> None:
        if shard_index is None or shard_count is None:
            import jax

            shard_index = jax.process_index() if shard_index is None else shard_index
            shard_count = jax.process_count() if shard_count is None else shard_count
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        if on_error is None:
            on_error = 'mask' if getattr(dataset, 'test_mode', False) else 'replace'
        if on_error not in ('replace', 'mask'):
            raise ValueError(f"on_error must be 'replace' or 'mask', got {on_error!r}")
        self.dataset = dataset
        self.plan = BatchPlan(len(dataset), batch_size, shuffle, seed, drop_last, shard_index, shard_count)
        if len(self.plan) == 0:
            raise ValueError(
                f'{len(dataset)} samples make no full batch of {batch_size} x {shard_count} processes '
                'with drop_last=True; use a smaller batch size (videos_per_gpu) or more data')
        self.num_workers = num_workers
        self.prefetch = prefetch
        self.on_error = on_error
        self.max_worker_restarts = max_worker_restarts
        self._batch_loader = BatchLoader(dataset, self.plan, mask_errors=on_error == 'mask')
        self._epoch = epoch
        self._position = 0
        self._stream: Iterator | None = None
        self._exit_hook: Any = None
        self._stream_next = -1  # global batch number the open stream yields next
        self._logged_paths: set[str] = set()
        self.last_report: dict[str, Any] | None = None
        self._reset_counts()

    # -- public interface -------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.plan)

    @property
    def epoch(self) -> int:
        """The epoch the next batch belongs to."""
        return self._epoch

    @property
    def position(self) -> int:
        """How many batches of the current epoch have been yielded."""
        return self._position

    @property
    def batch_size(self) -> int:
        return self.plan.batch_size

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` from its first batch."""
        if (epoch, 0) != (self._epoch, self._position):
            self._epoch, self._position = epoch, 0
            self._reset_counts()

    def start_prefetch(self) -> None:
        """Start the workers on the next batches now rather than at the first ``next``.

        A worker takes seconds to start (imports, the pipeline); a caller with other work to
        do first, such as building and compiling a model, hides that time behind it.
        """
        if self.num_workers == 0 or not self._stream_at_position():
            return
        # grain's mp_prefetch interleaves one iterator per worker and makes them on first use:
        # get_state() makes them, start_prefetch() starts their processes
        self._stream.get_state()
        self._stream.start_prefetch()

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        while self._position < len(self):
            self._stream_at_position()
            try:
                raw = next(self._stream)
            except Exception as err:
                self._close_stream()
                if not _is_worker_death(err):
                    raise
                self._worker_died(err)
                continue
            self._stream_next += 1
            self._restarts_here = 0
            batch = self._receive(raw)
            del raw  # the last reference to the worker's shared memory: free it now
            self._position += 1
            yield batch
        self._finish_epoch()

    def get_state(self, pending: int = 0) -> dict[str, Any]:
        """JSON-able position: the next batch to train on is ``next_batch`` of ``epoch``.

        ``pending``: batches already taken from the loader but not trained on (a
        device prefetch queue); they are handed out again after ``set_state``.
        """
        if not 0 <= pending <= self._position:
            raise ValueError(f'pending={pending} must be between 0 and the {self._position} batches '
                             f'yielded in epoch {self._epoch}')
        position = self._position - pending
        if position not in self._counts_at:
            raise ValueError(f'pending={pending} reaches back before the start of this epoch or the last '
                             'set_state(); the loader cannot tell what those batches were')
        replaced, num_files = self._counts_at[position]
        return dict(version=STATE_VERSION, epoch=self._epoch, next_batch=position,
                    batches_per_epoch=len(self), num_samples=self.plan.num_samples,
                    batch_size=self.plan.batch_size, shard_index=self.plan.shard_index,
                    shard_count=self.plan.shard_count, shuffle=self.plan.shuffle,
                    drop_last=self.plan.drop_last, seed=self.plan.seed,
                    replaced=replaced, bad_files=self._bad_files[:num_files],
                    worker_restarts=self._worker_restarts)

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Continue exactly where ``get_state`` was called (in this or an earlier run)."""
        if state.get('version') != STATE_VERSION:
            raise ValueError(f'loader state version {state.get("version")!r} is not {STATE_VERSION}')
        mine = self.get_state()
        for key in ('num_samples', 'batch_size', 'shard_count', 'shard_index', 'shuffle', 'drop_last',
                    'seed'):
            if state[key] != mine[key]:
                raise ValueError(
                    'cannot resume the data order exactly: the checkpoint was saved with '
                    f'{key}={state[key]!r} but this loader has {key}={mine[key]!r}. Use the same '
                    'dataset, videos_per_gpu, number of processes and seed, or start the epoch '
                    'afresh with set_epoch()')
        if not 0 <= state['next_batch'] <= len(self):
            raise ValueError(f"next_batch={state['next_batch']} is outside 0..{len(self)}")
        self._epoch, self._position = int(state['epoch']), int(state['next_batch'])
        self._reset_counts()
        self._bad_files = list(state.get('bad_files', []))
        self._logged_paths.update(self._bad_files)
        self._replaced = int(state.get('replaced', 0))
        self._worker_restarts = int(state.get('worker_restarts', 0))
        self._counts_at = {self._position: (self._replaced, len(self._bad_files))}

    def close(self) -> None:
        """Stop the worker processes and free their shared memory. Idempotent."""
        self._close_stream()
        if self._exit_hook is not None:
            atexit.unregister(self._exit_hook)
            self._exit_hook = None

    def __enter__(self) -> DataLoader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        p = self.plan
        return (f'DataLoader({len(self.dataset)} samples, batch_size={p.batch_size}, '
                f'{len(self)} batches/epoch, '
                f'num_workers={self.num_workers}, shuffle={p.shuffle}, drop_last={p.drop_last}, '
                f'shard {p.shard_index}/{p.shard_count}, epoch={self._epoch}, position={self._position})')

    # -- internals ------------------------------------------------------------------------------

    def _reset_counts(self) -> None:
        self._replaced = 0
        self._bad_files: list[str] = []
        self._worker_restarts = 0
        self._restarts_here = 0
        # (replaced, number of bad files) after each position of this epoch, for get_state(pending)
        self._counts_at: dict[int, tuple[int, int]] = {self._position: (0, 0)}

    def _stream_at_position(self) -> bool:
        """Make the open stream yield this loader's next batch: keep it if it is there, else
        open one that starts there. True when a stream was opened."""
        g = self._epoch * len(self) + self._position  # the global batch number
        if self._stream is not None and self._stream_next == g:
            return False
        self._open_stream(g)
        return True

    def _open_stream(self, start: int) -> None:
        """A grain pipeline producing global batches ``start, start + 1, ...`` in order."""
        import grain

        self._close_stream()
        batches = grain.MapDataset.range(start, sys.maxsize).map(self._batch_loader)
        if self.num_workers == 0:
            stream = batches.to_iter_dataset(grain.ReadOptions(num_threads=0, prefetch_buffer_size=0))
        else:
            _mark_absl_flags_parsed()
            # Inside a worker batches are made one at a time (num_threads=0); the queue to
            # the main process buffers `prefetch` of them per worker. Small arrays (labels)
            # are pickled rather than given a shared-memory segment each.
            stream = batches.to_iter_dataset(grain.ReadOptions(num_threads=0, prefetch_buffer_size=0))
            stream = grain.experimental.WithOptionsIterDataset(
                stream, grain.experimental.DatasetOptions(min_shm_size=1 << 16))
            stream = stream.mp_prefetch(
                grain.MultiprocessingOptions(num_workers=self.num_workers,
                                             per_worker_buffer_size=self.prefetch),
                worker_init_fn=_worker_init)
        self._stream = iter(stream)
        self._stream_next = start
        if self._exit_hook is None:
            # A program that never calls close() would otherwise tear the workers' queues
            # and shared memory down during interpreter shutdown, printing tracebacks.
            # Registered after grain (and multiprocessing) are imported, so it runs first.
            self._exit_hook = functools.partial(_close_at_exit, weakref.ref(self))
            atexit.register(self._exit_hook)

    def _close_stream(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            close = getattr(stream, 'close', None)
            if close is not None:
                close()
            del stream
            # grain's internal iterators close themselves in __del__; collect them now, while
            # the interpreter is whole, rather than at exit (where they print tracebacks).
            import gc

            gc.collect()

    def _receive(self, raw: Mapping[str, Any]) -> dict[str, np.ndarray]:
        batch = {key: _plain(value) for key, value in raw.items() if key != 'failures'}
        for index, path, error, first in raw['failures']:
            self._replaced += int(first)
            if path not in self._bad_files:  # the files that failed this epoch
                self._bad_files.append(path)
            if path not in self._logged_paths:  # one log line per file for the loader's lifetime
                self._logged_paths.add(path)
                if self.on_error == 'mask':
                    logger.warning('cannot load sample %d (%s): %s; not scored', index, path, error)
                else:
                    logger.warning('Epoch [%d]: cannot load sample %d (%s): %s; replaced by another sample',
                                   self._epoch + 1, index, path, error)
        self._counts_at[self._position + 1] = (self._replaced, len(self._bad_files))
        return batch

    def _worker_died(self, err: BaseException) -> None:
        self._worker_restarts += 1
        self._restarts_here += 1
        k = self._position
        if self._restarts_here > self.max_worker_restarts:
            order = self._batch_loader.order(self._epoch)
            files = [sample_name(self.dataset, int(i)) for i in self.plan.batch_indices(order, k) if i >= 0]
            raise RuntimeError(
                f'data loader workers died {self._restarts_here} times in a row at epoch {self._epoch}, '
                f'batch {k} ({err}). A file of that batch may crash the decoder: {files}. '
                'Check them with python -m actionjax.tools.check_videos, or lower num_workers / '
                'videos_per_gpu if the machine runs out of memory') from err
        logger.warning('a data loader worker died (%s) at epoch %d, batch %d; restarting the workers '
                       'from that batch, no sample is skipped', err, self._epoch, k)

    def _finish_epoch(self) -> None:
        report = dict(epoch=self._epoch, batches=len(self), replaced=self._replaced,
                      bad_files=list(self._bad_files), worker_restarts=self._worker_restarts)
        self.last_report = report
        # Epochs are counted from 1 in messages, as the training log counts them (Epoch [1]).
        # An evaluation pass is not an epoch: its caller reports the samples it could not score.
        where = 'evaluation' if self.on_error == 'mask' else f'Epoch [{self._epoch + 1}]'
        if self._replaced and self.on_error != 'mask':
            shown = ', '.join(self._bad_files[:5]) + (' ...' if len(self._bad_files) > 5 else '')
            logger.warning('%s: %d samples replaced, %d unreadable files: %s '
                           '(python -m actionjax.tools.check_videos --config CONFIG lists them all)',
                           where, self._replaced, len(self._bad_files), shown)
        if self._worker_restarts:
            logger.warning('%s: data loader workers were restarted %d times', where, self._worker_restarts)
        self._epoch += 1
        self._position = 0
        self._reset_counts()


def build_dataloader(dataset: Any, *, batch_size: int, num_workers: int = 0, shuffle: bool = False,
                     seed: int = 0, drop_last: bool = False, epoch: int = 0, **kwargs: Any) -> DataLoader:
    """A ``DataLoader`` over ``dataset``; see the module docstring for the arguments."""
    return DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, shuffle=shuffle, seed=seed,
                      drop_last=drop_last, epoch=epoch, **kwargs)


def loader_kwargs(cfg: Mapping[str, Any], split: str = 'train', num_devices: int = 1) -> dict[str, Any]:
    """``build_dataloader`` arguments for ``split`` of a config (any generation: read through
    its runtime form). ``batch_size`` is per process: samples per device x ``num_devices``.
    Training shuffles and drops the last incomplete batch; val/test do neither.
    """
    from actionjax.config import ConfigKeyError
    from actionjax.runtime_config import data_config

    entry = data_config(cfg).get(split)
    if entry is None:
        raise ConfigKeyError(f'the config has no {split} data (data.{split} or {split}_dataloader)')
    train = split == 'train'
    return dict(batch_size=entry['batch_size'] * num_devices, num_workers=entry['num_workers'],
                shuffle=train, drop_last=train, seed=int(cfg.get('seed') or 0))
