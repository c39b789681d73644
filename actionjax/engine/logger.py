"""Training logs: a text log, a JSON-lines log, a console progress bar, TensorBoard.

Files follow MMAction2's names so existing habits and tools carry over:
``work_dir/<timestamp>.log`` (human text, also echoed to the console) and
``work_dir/<timestamp>.log.json`` (one JSON object per line: one record per log
interval with ``mode='train'``, one per evaluation with ``mode='val'``).
TensorBoard scalars go to ``work_dir/tf_logs`` when ``TensorboardLoggerHook`` is
asked for (``log_config.hooks`` with ``TensorboardLoggerHook``, or 1.x ``TensorboardVisBackend``).
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import sys
import time as time_module
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np
from tqdm import tqdm

LOGGER_NAME = 'actionjax'


class _TqdmHandler(logging.Handler):
    """Console handler that prints above an active progress bar instead of through it.

    It looks ``sys.stderr`` up at each record, so redirecting stderr later works.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never kill training
            self.handleError(record)


def setup_logger(log_file: str | None = None, log_level: str | int = 'INFO') -> logging.Logger:
    """Point the 'actionjax' logger at stderr and, if given, ``log_file`` (replacing earlier sinks).

    Everything else fetches it with ``logging.getLogger('actionjax')``.
    """
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(log_level)
    logger.propagate = False
    fmt = logging.Formatter('%(asctime)s - %(name)s - %(levelname)s - %(message)s')
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    console = _TqdmHandler()
    console.setFormatter(fmt)
    # extra={'console': False} keeps a record out of the console (e.g. a fatal error that
    # the exit message prints anyway) but still writes it to the log file
    console.addFilter(lambda record: getattr(record, 'console', True))
    logger.addHandler(console)
    if log_file:
        file_handler = logging.FileHandler(log_file, mode='a')
        file_handler.setFormatter(fmt)
        logger.addHandler(file_handler)
    return logger


def device_memory_mb() -> int | None:
    """Peak memory of the first local device in MB, where the backend reports it (not CPU)."""
    stats = jax.local_devices()[0].memory_stats() or {}
    peak = stats.get('peak_bytes_in_use', stats.get('bytes_in_use'))
    return None if peak is None else int(peak / 2**20)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f'{value:.4f}'
    return str(value)


class RunLogger:
    """Writes one run's train and val records to every configured sink."""

    def __init__(self, work_dir: str, timestamp: str, tensorboard: bool, logger: logging.Logger,
                 enabled: bool = True, started: float | None = None) -> None:
        self.logger = logger
        self.started = time_module.time() if started is None else started  # for the run's wall time
        self.enabled = enabled  # False on every process but the first
        self.json_path = os.path.join(work_dir, f'{timestamp}.log.json')
        self.tb = None
        if enabled and tensorboard:
            from tensorboardX import SummaryWriter  # only needed when asked for
            self.tb = SummaryWriter(os.path.join(work_dir, 'tf_logs'))
        self.bar: tqdm | None = None

    def info(self, message: str) -> None:
        if self.enabled:
            self.logger.info(message)

    def warning(self, message: str) -> None:
        if self.enabled:
            self.logger.warning(message)

    # --- progress bar -----------------------------------------------------------------------
    def start_epoch(self, epoch: int, total: int, initial: int = 0) -> None:
        """A console progress bar over the epoch's iterations (only on a terminal)."""
        self.start_bar(f'epoch {epoch}', total, initial)

    def start_bar(self, desc: str, total: int, initial: int = 0) -> None:
        """A console progress bar named ``desc`` (an epoch, a validation), replacing any other."""
        self.close_bar()
        if self.enabled:
            self.bar = progress_bar(desc, total, initial)

    def advance(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    # --- records ------------------------------------------------------------------------------
    def log_train(self, where: str, epoch: int, inner_iter: int, global_iter: int,
                  metrics: Mapping[str, float], time: float, data_time: float, eta_s: float) -> None:
        """One interval: ``Epoch [e][i/n]`` (or ``Iter [i/n]``) then each param group's lr and
        momentum as the step applied them, eta, times, memory and the other metrics."""
        if not self.enabled:
            return
        memory = device_memory_mb()
        hyper = {k: float(v) for k, v in metrics.items() if _is_hyperparam(k)}
        others = {k: float(v) for k, v in metrics.items() if not _is_hyperparam(k)}
        record: dict[str, Any] = {'mode': 'train', 'epoch': epoch, 'iter': inner_iter,
                                  'global_iter': global_iter, **hyper}
        if memory is not None:
            record['memory'] = memory
        record.update(time=time, data_time=data_time, **others)
        eta = str(datetime.timedelta(seconds=int(eta_s)))
        parts = [f'{k}: {v:.3e}' for k, v in hyper.items()]
        parts += [f'eta: {eta}', f'time: {time:.3f}', f'data_time: {data_time:.3f}']
        if memory is not None:
            parts.append(f'memory: {memory}')
        parts += [f'{k}: {_fmt(v)}' for k, v in others.items()]
        self.logger.info(f'{where}\t' + ', '.join(parts))
        self._write_json(record)
        if self.bar is not None:
            self.bar.set_postfix(loss=f'{others.get("loss", float("nan")):.4f}', refresh=False)
        if self.tb is not None:
            for k, v in hyper.items():
                self.tb.add_scalar(f'train/{k}', v, global_iter)
            for k, v in others.items():
                self.tb.add_scalar(f'train/{k}', v, global_iter)
            self.tb.add_scalar('train/time', time, global_iter)

    def log_val(self, epoch: int, global_iter: int, results: Mapping[str, float]) -> None:
        """Evaluation results after ``epoch``: ``Epoch(val) [e][i]  top1_acc: ..., ...``."""
        if not self.enabled:
            return
        self.logger.info(f'Epoch(val) [{epoch}][{global_iter}]\t'
                         + ', '.join(f'{k}: {_fmt(float(v))}' for k, v in results.items()))
        self._write_json({'mode': 'val', 'epoch': epoch, 'iter': global_iter,
                          **{k: float(v) for k, v in results.items()}})
        if self.tb is not None:
            for k, v in results.items():
                self.tb.add_scalar(f'val/{k}', float(v), global_iter)

    def log_summary(self, best_key: str | None, best_score: float | None, best_path: str | None,
                    last_checkpoint: str | None, global_iter: int) -> None:
        """The run's last line: wall time, best score with where it was reached, checkpoints."""
        if not self.enabled:
            return
        wall = time_module.time() - self.started
        parts = [f'run finished after {global_iter} iterations in {datetime.timedelta(seconds=int(wall))}']
        if best_key and best_score is not None:
            where = _checkpoint_when(best_path)
            parts.append(f'best {best_key} {best_score:.4f}{f" at {where}" if where else ""}: {best_path}')
        parts.append(f'last checkpoint: {last_checkpoint or "none saved"}')
        self.logger.info('; '.join(parts))
        self._write_json({'mode': 'summary', 'wall_time': wall, 'global_iter': global_iter,
                          'best_key': best_key, 'best_score': best_score, 'best_checkpoint': best_path,
                          'last_checkpoint': last_checkpoint})

    def write_header(self, info: Mapping[str, Any]) -> None:
        """The first JSON line: environment and config, as mmcv writes ``env_info``/``config``."""
        if self.enabled:
            self._write_json(dict(info))

    def _write_json(self, record: Mapping[str, Any]) -> None:
        with open(self.json_path, 'a') as f:
            f.write(json.dumps(record, default=_json_default) + '\n')

    def close(self) -> None:
        self.close_bar()
        if self.tb is not None:
            self.tb.close()
            self.tb = None


def progress_bar(desc: str, total: int, initial: int = 0) -> tqdm:
    """A console progress bar, shown only when stderr is a terminal; log lines print above it."""
    return tqdm(total=total, initial=initial, desc=desc, leave=False, dynamic_ncols=True, disable=None,
                file=sys.stderr)


def _checkpoint_when(path: str | None) -> str | None:
    """'epoch 5' for ``.../best_top1_acc_epoch_5`` (the names ``runner._save_best`` writes)."""
    name = os.path.basename(os.path.normpath(path)) if path else ''
    for unit in ('epoch', 'iter'):
        head, sep, count = name.rpartition(f'_{unit}_')
        if sep and count.isdigit():
            return f'{unit} {count}'
    return None


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _is_hyperparam(key: str) -> bool:
    return key.split('/')[0] in ('lr', 'momentum')


def mean_metrics(records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """The interval average of per-step metric dicts (host numpy), as mmcv's LogBuffer; the lr
    and momentum are the last step's, as mmcv logs the optimizer's current values."""
    keys = records[0].keys()
    return {k: float(records[-1][k]) if _is_hyperparam(k) else
            float(np.mean([np.asarray(r[k], np.float64) for r in records])) for k in keys}
