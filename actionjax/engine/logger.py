"""Training logs: a text log, a JSON-lines log, a console progress bar, TensorBoard.

Files follow MMAction2's names so existing habits and tools carry over:
``work_dir/<timestamp>.log`` (human text, also echoed to the console) and
``work_dir/<timestamp>.log.json`` (one JSON object per line: one record per log
interval with ``mode='train'``, one per evaluation with ``mode='val'``).
TensorBoard scalars go to ``work_dir/tf_logs`` when ``TensorboardLoggerHook`` is
listed in ``log_config.hooks``.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import sys
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

    def __init__(self, work_dir: str, timestamp: str, log_config: Mapping[str, Any] | None,
                 logger: logging.Logger, enabled: bool = True) -> None:
        log_config = dict(log_config or {})
        self.interval = int(log_config.get('interval', 20))
        self.logger = logger
        self.enabled = enabled  # False on every process but the first
        self.json_path = os.path.join(work_dir, f'{timestamp}.log.json')
        hooks = [h.get('type') for h in log_config.get('hooks', [])]
        unknown = set(hooks) - {'TextLoggerHook', 'TensorboardLoggerHook'}
        if unknown:
            logger.warning(f'log_config.hooks: {sorted(unknown)} are not supported and are ignored '
                           '(TextLoggerHook and TensorboardLoggerHook are)')
        self.tb = None
        if enabled and 'TensorboardLoggerHook' in hooks:
            from tensorboardX import SummaryWriter  # only needed when asked for
            self.tb = SummaryWriter(os.path.join(work_dir, 'tf_logs'))
        self.bar: tqdm | None = None

    def info(self, message: str) -> None:
        if self.enabled:
            self.logger.info(message)

    # --- progress bar -----------------------------------------------------------------------
    def start_epoch(self, epoch: int, total: int, initial: int = 0) -> None:
        """A console progress bar over the epoch's iterations (only on a terminal)."""
        self.close_bar()
        if self.enabled:
            self.bar = tqdm(total=total, initial=initial, desc=f'epoch {epoch}', leave=False,
                            dynamic_ncols=True, disable=None, file=sys.stderr)

    def advance(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    # --- records ------------------------------------------------------------------------------
    def log_train(self, epoch: int, inner_iter: int, iters_per_epoch: int, global_iter: int,
                  lr: float, metrics: Mapping[str, float], time: float, data_time: float,
                  eta_s: float) -> None:
        """One interval: ``Epoch [e][i/n]  lr, eta, time, data_time, memory, metrics``."""
        if not self.enabled:
            return
        memory = device_memory_mb()
        record: dict[str, Any] = {'mode': 'train', 'epoch': epoch, 'iter': inner_iter,
                                  'global_iter': global_iter, 'lr': lr}
        if memory is not None:
            record['memory'] = memory
        record.update(time=time, data_time=data_time)
        record.update({k: float(v) for k, v in metrics.items()})
        eta = str(datetime.timedelta(seconds=int(eta_s)))
        parts = [f'lr: {lr:.3e}', f'eta: {eta}', f'time: {time:.3f}', f'data_time: {data_time:.3f}']
        if memory is not None:
            parts.append(f'memory: {memory}')
        parts += [f'{k}: {_fmt(float(v))}' for k, v in metrics.items()]
        self.logger.info(f'Epoch [{epoch}][{inner_iter}/{iters_per_epoch}]\t' + ', '.join(parts))
        self._write_json(record)
        if self.bar is not None:
            self.bar.set_postfix(loss=f'{metrics.get("loss", float("nan")):.4f}', refresh=False)
        if self.tb is not None:
            self.tb.add_scalar('learning_rate', lr, global_iter)
            for k, v in metrics.items():
                self.tb.add_scalar(f'train/{k}', float(v), global_iter)
            self.tb.add_scalar('train/time', time, global_iter)

    def log_val(self, epoch: int, global_iter: int, results: Mapping[str, float]) -> None:
        """Evaluation results after ``epoch``: ``Epoch(val) [e]  top1_acc: ..., ...``."""
        if not self.enabled:
            return
        self.logger.info(f'Epoch(val) [{epoch}][{global_iter}]\t'
                         + ', '.join(f'{k}: {_fmt(float(v))}' for k, v in results.items()))
        self._write_json({'mode': 'val', 'epoch': epoch, 'iter': global_iter,
                          **{k: float(v) for k, v in results.items()}})
        if self.tb is not None:
            for k, v in results.items():
                self.tb.add_scalar(f'val/{k}', float(v), global_iter)

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


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def mean_metrics(records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """The interval average of per-step metric dicts (host numpy), as mmcv's LogBuffer."""
    keys = records[0].keys()
    return {k: float(np.mean([np.asarray(r[k], np.float64) for r in records])) for k in keys}
