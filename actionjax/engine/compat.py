"""One internal config shape: MMAction2 1.x / mmengine keys mapped onto 0.x keys.

The engine reads only the 0.x names (``total_epochs``, ``data``, ``optimizer``,
``optimizer_config``, ``lr_config``, ``checkpoint_config``, ``evaluation``,
``log_config``). ``to_runtime_config`` fills them from their 1.x equivalents
when a config uses those, so both generations take the same path.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from actionjax.config import Config

# AccMetric's defaults in MMAction2 1.x.
_ACC_METRICS = ['top_k_accuracy', 'mean_class_accuracy']


def to_runtime_config(cfg: Mapping[str, Any]) -> Config:
    """A copy of ``cfg`` with 0.x keys set from 1.x ones; keys already present win.

    train_cfg.max_epochs -> total_epochs; train_cfg.val_interval -> evaluation.interval;
    val_evaluator -> evaluation.metrics; default_hooks.checkpoint -> checkpoint_config
    (its save_best -> evaluation.save_best); default_hooks.logger.interval ->
    log_config.interval; TensorboardVisBackend -> TensorboardLoggerHook;
    optim_wrapper.{optimizer, paramwise_cfg, constructor} -> optimizer;
    optim_wrapper.clip_grad -> optimizer_config.grad_clip; param_scheduler -> lr_config;
    {train,val,test}_dataloader.{batch_size, num_workers, dataset} -> data.*; resume -> resume_from.
    """
    out = Config(copy.deepcopy(dict(cfg)), getattr(cfg, 'filename', None))
    train_cfg = out.get('train_cfg') or {}
    if 'total_epochs' not in out and 'max_epochs' in train_cfg:
        out['total_epochs'] = train_cfg['max_epochs']

    hooks = out.get('default_hooks') or {}
    if 'checkpoint_config' not in out and hooks.get('checkpoint'):
        ckpt = {k: v for k, v in hooks['checkpoint'].items() if k not in ('type', 'save_best', 'rule')}
        out['checkpoint_config'] = ckpt
    if 'log_config' not in out and hooks.get('logger'):
        backends = [b.get('type') for b in out.get('vis_backends') or []]
        log_hooks = [dict(type='TextLoggerHook')]
        if 'TensorboardVisBackend' in backends:
            log_hooks.append(dict(type='TensorboardLoggerHook'))
        out['log_config'] = dict(interval=hooks['logger'].get('interval', 20), hooks=log_hooks)

    if 'evaluation' not in out and ('val_evaluator' in out or 'val_interval' in train_cfg):
        evaluator = out.get('val_evaluator') or {}
        evaluation: dict[str, Any] = dict(interval=train_cfg.get('val_interval', 1),
                                          metrics=list(evaluator.get('metric_list', _ACC_METRICS)))
        save_best = (hooks.get('checkpoint') or {}).get('save_best')
        if save_best:
            evaluation['save_best'] = save_best
        out['evaluation'] = evaluation

    wrapper = out.get('optim_wrapper') or {}
    if 'optimizer' not in out and 'optimizer' in wrapper:
        optimizer = dict(wrapper['optimizer'])
        for key in ('paramwise_cfg', 'constructor'):
            if key in wrapper:
                optimizer[key] = wrapper[key]
        if 'constructor' in optimizer:
            optimizer['constructor'] = _optimizer_constructor_name(optimizer['constructor'])
        out['optimizer'] = optimizer
    if 'optimizer_config' not in out and 'optim_wrapper' in out:
        out['optimizer_config'] = dict(grad_clip=wrapper.get('clip_grad'))
    if 'lr_config' not in out and 'param_scheduler' in out:
        out['lr_config'] = out['param_scheduler']

    if 'data' not in out and 'train_dataloader' in out:
        data: dict[str, Any] = {}
        for split in ('train', 'val', 'test'):
            loader = out.get(f'{split}_dataloader')
            if loader:
                data[split] = loader['dataset']
                data[f'{split}_dataloader'] = {k: v for k, v in (
                    ('videos_per_gpu', loader.get('batch_size')),
                    ('workers_per_gpu', loader.get('num_workers'))) if v is not None}
        train_loader = out['train_dataloader']
        data['videos_per_gpu'] = train_loader.get('batch_size', 1)
        data['workers_per_gpu'] = train_loader.get('num_workers', 1)
        out['data'] = data

    if out.get('resume') and not out.get('resume_from'):
        # mmengine: resume=True resumes from load_from if set, else from the work dir's latest.
        out['resume_from'] = out.get('load_from') or 'auto'
        out['load_from'] = None
    return out


def _optimizer_constructor_name(name: str) -> str:
    """'TSMOptimWrapperConstructor' (1.x) -> 'TSMOptimizerConstructor' when only the 0.x name exists."""
    from actionjax.registry import OPTIMIZER_BUILDERS

    if name in OPTIMIZER_BUILDERS or not name.endswith('OptimWrapperConstructor'):
        return name
    legacy = name.replace('OptimWrapperConstructor', 'OptimizerConstructor')
    return legacy if legacy in OPTIMIZER_BUILDERS else name
