"""The runtime config: one meaning per key, whichever MMAction2 generation a file is written in.

MMAction2 0.x and 1.x say the same things with different keys (``optimizer`` /
``optim_wrapper.optimizer``, ``lr_config`` / ``param_scheduler``, ``data.videos_per_gpu`` /
``train_dataloader.batch_size``, ...). ``to_runtime_config`` reads each of those keys here,
once, and writes one canonical form that everything downstream reads, with every default
filled in (``DEFAULTS`` is their one home)::

    model              the model dict (None without one); data_preprocessor carries mean/std (from a 0.x
                       Normalize step / img_norm_cfg), cls_head carries average_clips
    optimizer          dict(type, lr, ..., constructor=?, paramwise_cfg=?), or None
    grad_clip          dict(max_norm, norm_type) or None
    lr_schedule        an mmcv lr_config dict, an mmengine param_scheduler list, or None
    momentum_schedule  the same for momentum, or None
    train_loop         dict(by_epoch, max_epochs, max_iters, val_interval, val_begin), or None
    data               {split: dict(dataset, batch_size, num_workers, cfg_key)} for train/val/test
                       (cfg_key: where the file keeps the dataset, for error messages)
    val_metrics        [dict(type='AccMetric', ...)]: what validation computes
    test_metrics       the same for actionjax.test
    save_best, rule    which validation score keeps a best checkpoint, and its direction
    checkpoint         dict(interval, by_epoch, max_keep_ckpts, save_last, interval_iters)
    log                dict(interval, tensorboard)
    precision          'float32', 'bfloat16' (mixed: bfloat16 compute, float32 parameters, statistics and
                       optimizer state) or 'float64' (needs jax_enable_x64): the top-level ``dtype``
                       key, or 'bfloat16' from MMAction2's ``fp16`` (0.x) / ``AmpOptimWrapper`` (1.x)
    work_dir, seed, load_from, resume_from, dist_params, log_level

A file that gives one meaning under both generations' keys is an error naming both; a
key nothing reads that looks like a typo of a known key is reported with that key. A
model-only config (for inference or conversion) has ``optimizer`` and ``train_loop`` None;
training then stops with ``NO_OPTIMIZER`` / ``NO_RUN_LENGTH``. ``sample_shape`` reads an
input shape for the model from the pipelines, for the tools that trace a model abstractly.
"""

from __future__ import annotations

import copy
import difflib
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from actionjax.config import Config, ConfigError

logger = logging.getLogger('actionjax')

DEFAULTS: dict[str, Any] = {
    'batch_size': 1,
    'num_workers': 1,
    'val_interval': 1,
    'val_begin': 1,
    'log_interval': 20,
    'checkpoint': dict(interval=1, max_keep_ckpts=-1, save_last=True, interval_iters=None,
                       save_optimizer=True),
    'metric_list': ['top_k_accuracy', 'mean_class_accuracy'],  # AccMetric's default in MMAction2 1.x
}

# 0.x evaluation.metrics names -> the 1.x metric class that computes them.
_METRIC_CLASS = {
    'top_k_accuracy': 'AccMetric', 'mean_class_accuracy': 'AccMetric',
    'mmit_mean_average_precision': 'AccMetric', 'mean_average_precision': 'AccMetric',
    'AR@AN': 'ANetMetric', 'mAP': 'SSNMetric',
}

# Top-level keys of MMAction2 configs that carry no training setting for actionjax (helper
# variables, hooks of mmcv/mmengine's runner, distributed launch settings) or that this
# module reads. An unread key close to one of these is reported as a likely typo.
_KNOWN_KEYS = {
    # read here
    'model', 'optimizer', 'optimizer_config', 'optim_wrapper', 'lr_config', 'momentum_config',
    'param_scheduler', 'total_epochs', 'runner', 'train_cfg', 'val_cfg', 'test_cfg', 'data',
    'train_dataloader', 'val_dataloader', 'test_dataloader', 'evaluation', 'val_evaluator',
    'test_evaluator', 'checkpoint_config', 'log_config', 'default_hooks', 'vis_backends',
    'visualizer', 'work_dir', 'seed', 'randomness', 'load_from', 'resume_from', 'resume',
    'auto_resume', 'dist_params', 'log_level', 'fp16', 'img_norm_cfg', 'custom_imports', 'dtype',
    # accepted and not needed by a JAX run
    'workflow', 'opencv_num_threads', 'mp_start_method', 'gpu_ids', 'find_unused_parameters',
    'launcher', 'env_cfg', 'default_scope', 'log_processor', 'auto_scale_lr', 'custom_hooks',
    'module_hooks', 'omnisource', 'output_config', 'eval_config', 'dist_cfg', 'cudnn_benchmark',
    'train_pipeline', 'val_pipeline', 'test_pipeline', 'dataset_type', 'data_root', 'data_root_val',
    'ann_file_train', 'ann_file_val', 'ann_file_test', 'file_client_args', 'num_segments',
}


def load_config(path: str | os.PathLike, cfg_options: Mapping[str, Any] | None = None) -> Config:
    """For command-line tools: the runtime config of a file with ``--cfg-options`` applied.

    A config error exits with its one-line message instead of a traceback.
    """
    try:
        cfg = Config.fromfile(path)
        cfg.merge_from_dict(cfg_options or {})
        return to_runtime_config(cfg)
    except ConfigError as err:
        sys.exit(f'error: {err}')


def to_runtime_config(cfg: Mapping[str, Any]) -> Config:
    """The canonical runtime form of a loaded config (see the module docstring).

    ``.source`` of the result is the file's own config (what ``train`` writes to the work dir).
    """
    cfg = Config(copy.deepcopy(dict(cfg)), getattr(cfg, 'filename', None))
    _report_unread_keys(cfg)
    out = Config(filename=cfg.filename, source=cfg)
    out['model'] = model_config(cfg)
    out['optimizer'], out['grad_clip'] = _optimizer(cfg)
    out['precision'] = precision_of(cfg)
    out['lr_schedule'], out['momentum_schedule'] = _schedules(cfg)
    out['train_loop'] = _train_loop(cfg)
    out['data'] = data_config(cfg)
    out['val_metrics'], out['test_metrics'] = _metrics(cfg)
    out['save_best'], out['rule'], out['checkpoint'] = _checkpoint(cfg, out['train_loop'] or {})
    out['log'] = _log(cfg)
    out['work_dir'] = cfg.get('work_dir')
    seed = cfg.get('seed')
    if seed is None:
        seed = (cfg.get('randomness') or {}).get('seed')
    out['seed'] = seed
    out['load_from'], out['resume_from'] = _resume(cfg)
    # jax.distributed.initialize arguments; MMAction2's backend='nccl' means nothing to JAX
    out['dist_params'] = {k: v for k, v in (cfg.get('dist_params') or {}).items() if k != 'backend'} or None
    out['log_level'] = cfg.get('log_level', 'INFO')
    return out


def is_runtime_config(cfg: Mapping[str, Any]) -> bool:
    """True for a config already in the canonical form (``to_runtime_config``'s output)."""
    return 'train_loop' in cfg and 'lr_schedule' in cfg and 'val_metrics' in cfg


def runtime_config(cfg: Mapping[str, Any]) -> Config:
    """``cfg`` in runtime form: unchanged when it already is, translated otherwise."""
    return cfg if is_runtime_config(cfg) else to_runtime_config(cfg)  # type: ignore[return-value]


# --------------------------------------------------------------------------- helpers

def _one_of(cfg: Mapping[str, Any], old: tuple[str, Any], new: tuple[str, Any]) -> Any:
    """The value under the 0.x key or the 1.x key; both given is an error naming both."""
    (old_key, old_value), (new_key, new_value) = old, new
    if old_value is not None and new_value is not None:
        raise ConfigError(f'the config sets both {old_key} (MMAction2 0.x) and {new_key} (1.x), which mean '
                          f'the same thing; keep one of them')
    return old_value if old_value is not None else new_value


def _get(cfg: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(cfg, Mapping) or key not in cfg:
            return None
        cfg = cfg[key]
    return cfg


def _report_unread_keys(cfg: Mapping[str, Any]) -> None:
    """Warn about a top-level key that nothing reads and that looks like a known key's typo."""
    for key in cfg:
        if key in _KNOWN_KEYS or key.startswith('_'):
            continue
        close = difflib.get_close_matches(key, sorted(_KNOWN_KEYS), n=1, cutoff=0.8)
        if close:
            logger.warning(f'config key {key!r} is not read by actionjax; did you mean {close[0]!r}? '
                           f'(as written it has no effect)')


# --------------------------------------------------------------------------- model

def model_config(cfg: Mapping[str, Any]) -> dict | None:
    """The runtime ``model`` dict of a whole config: mean/std in ``data_preprocessor`` (from a
    0.x ``Normalize`` step or ``img_norm_cfg`` when it has none), ``average_clips`` on the head."""
    if cfg.get('model') is None:  # a data-only config (check_videos, browse_data)
        return None
    if not isinstance(cfg['model'], Mapping):
        raise ConfigError(f'model must be a dict like dict(type="Recognizer2D", ...), got {cfg["model"]!r}')
    model = copy.deepcopy(dict(cfg['model']))
    preprocessor = dict(model.get('data_preprocessor') or {})
    if preprocessor.get('mean') is None:
        norm = _normalize_cfg(cfg)
        if norm is not None:
            preprocessor.setdefault('type', 'ActionDataPreprocessor')
            preprocessor.update(mean=list(norm['mean']), std=list(norm['std']))
            # A 0.x to_bgr=True keeps its Normalize step, which reverses the channels on the host;
            # the device must not reverse them again.
    if preprocessor:
        model['data_preprocessor'] = preprocessor
    test_cfg = dict(model.get('test_cfg') or {})
    head = model.get('cls_head')
    if 'average_clips' in test_cfg and isinstance(head, Mapping):
        from_test = test_cfg.pop('average_clips')
        from_head = head.get('average_clips')
        if from_head is not None and from_head != from_test:
            raise ConfigError(f'model.test_cfg.average_clips={from_test!r} (0.x) and '
                              f'model.cls_head.average_clips={from_head!r} (1.x) disagree; set only one')
        model['cls_head'] = dict(head, average_clips=from_test)
        if test_cfg:
            model['test_cfg'] = test_cfg
        else:
            model.pop('test_cfg')
    return model


def _normalize_cfg(cfg: Mapping[str, Any]) -> dict | None:
    """mean/std of a 0.x config: its first ``Normalize`` pipeline step, else ``img_norm_cfg``."""
    for pipeline in _pipelines(cfg):
        for step in pipeline:
            if isinstance(step, Mapping) and step.get('type') == 'Normalize':
                return {k: step[k] for k in ('mean', 'std') if k in step}
    norm = cfg.get('img_norm_cfg')
    return dict(norm) if isinstance(norm, Mapping) and 'mean' in norm else None


def _pipelines(cfg: Mapping[str, Any]) -> list[Sequence[Any]]:
    found: list[Sequence[Any]] = []

    def visit(node: Any) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key == 'pipeline' and isinstance(value, (list, tuple)):
                    found.append(value)
                else:
                    visit(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                visit(value)

    for key in ('data', 'train_dataloader', 'val_dataloader', 'test_dataloader'):
        visit(cfg.get(key))
    return found


# --------------------------------------------------------------------------- optimizer, schedules

def _optimizer(cfg: Mapping[str, Any]) -> tuple[dict | None, dict | None]:
    wrapper = cfg.get('optim_wrapper') or {}
    optimizer = _one_of(cfg, ('optimizer', cfg.get('optimizer')),
                        ('optim_wrapper.optimizer', wrapper.get('optimizer')))
    if optimizer is None:  # a model-only config (inference, conversion); training asks for one
        return None, None
    if not isinstance(optimizer, Mapping):
        raise ConfigError(f'optimizer must be a dict like dict(type="SGD", lr=0.01), got {optimizer!r}')
    optimizer = dict(optimizer)
    for key in ('paramwise_cfg', 'constructor'):
        if key in wrapper:
            if key in optimizer:
                raise ConfigError(f'the config sets both optim_wrapper.{key} and '
                                  f'optim_wrapper.optimizer.{key}; keep one')
            optimizer[key] = wrapper[key]
    if 'constructor' in optimizer:
        if not isinstance(optimizer['constructor'], str):
            raise ConfigError('optimizer constructor must be a registered name such as '
                              "'TSMOptimWrapperConstructor' (as mmengine takes it), "
                              f"got {optimizer['constructor']!r}")
        optimizer['constructor'] = _optimizer_constructor_name(optimizer['constructor'])
    clip = _one_of(cfg, ('optimizer_config.grad_clip', _get(cfg, 'optimizer_config', 'grad_clip')),
                   ('optim_wrapper.clip_grad', wrapper.get('clip_grad')))
    return optimizer, (dict(clip) if clip else None)


def precision_of(cfg: Mapping[str, Any]) -> str:
    """The runtime ``precision`` of a file or runtime config (see ``actionjax.precision``).

    ``dtype = 'float32' | 'bfloat16' | 'float64'`` says it directly. MMAction2's mixed
    precision keys, ``fp16 = dict(loss_scale=...)`` (0.x) and ``optim_wrapper =
    dict(type='AmpOptimWrapper', ...)`` (1.x), mean 'bfloat16': float16 autocast becomes
    bfloat16, which has float32's range and so needs no loss scaling.
    """
    from actionjax.precision import PRECISIONS

    if is_runtime_config(cfg):
        return cfg['precision']
    wrapper = cfg.get('optim_wrapper') or {}
    amp = wrapper if wrapper.get('type') == 'AmpOptimWrapper' else None
    mixed = _one_of(cfg, ('fp16', cfg.get('fp16')), ('optim_wrapper.type=AmpOptimWrapper', amp))
    dtype = cfg.get('dtype')
    if dtype is not None and dtype not in PRECISIONS:
        hint = " (float16 mixed precision runs as 'bfloat16')" if dtype == 'float16' else ''
        raise ConfigError(f'dtype must be one of {list(PRECISIONS)}, got {dtype!r}{hint}')
    if mixed is None:
        return dtype or 'float32'
    key = 'fp16' if cfg.get('fp16') is not None else 'optim_wrapper'
    if dtype not in (None, 'bfloat16'):
        raise ConfigError(f'the config sets both {key} (mixed precision: bfloat16) and dtype={dtype!r}; '
                          'keep one of them')
    autocast = mixed.get('dtype') if isinstance(mixed, Mapping) else None
    if autocast not in (None, 'float16', 'bfloat16'):
        raise ConfigError(f"{key}.dtype must be 'float16' or 'bfloat16' for mixed precision, "
                          f"got {autocast!r}")
    logger.info(f'{key}: mixed precision, computing in bfloat16 with float32 parameters, BatchNorm '
                'statistics and optimizer state (bfloat16 needs no loss scaling)')
    return 'bfloat16'


def _optimizer_constructor_name(name: str) -> str:
    """'TSMOptimWrapperConstructor' (1.x) -> 'TSMOptimizerConstructor' when only the 0.x name exists."""
    from actionjax.registry import OPTIMIZER_BUILDERS

    if name in OPTIMIZER_BUILDERS or not name.endswith('OptimWrapperConstructor'):
        return name
    legacy = name.replace('OptimWrapperConstructor', 'OptimizerConstructor')
    return legacy if legacy in OPTIMIZER_BUILDERS else name


def _schedules(cfg: Mapping[str, Any]) -> tuple[Any, Any]:
    """``(lr_schedule, momentum_schedule)``: mmcv updater dicts, or the param_scheduler list for both."""
    scheduler = cfg.get('param_scheduler')
    lr = _one_of(cfg, ('lr_config', cfg.get('lr_config')), ('param_scheduler', scheduler))
    momentum = _one_of(cfg, ('momentum_config', cfg.get('momentum_config')), ('param_scheduler', scheduler))
    if isinstance(momentum, Mapping) and 'type' in momentum and 'policy' not in momentum:
        momentum = [momentum]
    if isinstance(momentum, (list, tuple)) and not any(
            isinstance(s, Mapping) and 'Momentum' in str(s.get('type')) for s in momentum):
        momentum = None  # a param_scheduler list with lr entries only
    return copy.deepcopy(lr), copy.deepcopy(momentum)


# --------------------------------------------------------------------------- loop, data, metrics

NO_RUN_LENGTH = ('the config gives no run length: set total_epochs = N or runner = '
                 "dict(type='IterBasedRunner', max_iters=N) (MMAction2 0.x), or train_cfg = "
                 "dict(type='EpochBasedTrainLoop', max_epochs=N) (1.x)")
NO_OPTIMIZER = ('the config has no optimizer; add optimizer = dict(type="SGD", lr=0.01, ...) '
                '(MMAction2 0.x) or optim_wrapper = dict(optimizer=dict(...)) (1.x)')


def _train_loop(cfg: Mapping[str, Any]) -> dict | None:
    """``dict(by_epoch, max_epochs, max_iters, val_interval, val_begin)``.

    0.x: ``total_epochs`` or ``runner=dict(type='EpochBasedRunner'|'IterBasedRunner', ...)``
    with ``evaluation.interval``; 1.x: ``train_cfg=dict(type='EpochBasedTrainLoop'|
    'IterBasedTrainLoop', max_epochs|max_iters, val_interval, val_begin)``.
    """
    runner = cfg.get('runner') or {}
    train_cfg = cfg.get('train_cfg') or {}
    is_loop = any(k in train_cfg for k in ('max_epochs', 'max_iters', 'type', 'by_epoch'))
    loop_1x = train_cfg if is_loop else {}
    if runner and cfg.get('total_epochs') is not None:
        raise ConfigError('the config sets both runner and total_epochs; keep runner.max_epochs')
    old = runner or ({'max_epochs': cfg['total_epochs']} if cfg.get('total_epochs') is not None else None)
    where_old = 'runner' if runner else 'total_epochs'
    loop = _one_of(cfg, (where_old, old), ('train_cfg', loop_1x or None))
    if loop is None:  # a model-only config; training asks for the run length (NO_RUN_LENGTH)
        return None
    kind = str(loop.get('type', ''))
    by_epoch = not ('IterBased' in kind or loop.get('by_epoch') is False
                    or ('max_iters' in loop and 'max_epochs' not in loop))
    key = where_old if loop is old else 'train_cfg'
    if by_epoch and loop.get('max_epochs') is None:
        raise ConfigError(f'{key} needs max_epochs for an epoch-based run')
    if not by_epoch and loop.get('max_iters') is None:
        raise ConfigError(f'{key} needs max_iters for an iteration-based run')
    evaluation = cfg.get('evaluation') or {}
    val_interval = _one_of(cfg, ('evaluation.interval', evaluation.get('interval')),
                           ('train_cfg.val_interval', loop_1x.get('val_interval')))
    val_begin = _one_of(cfg, ('evaluation.start', evaluation.get('start')),
                        ('train_cfg.val_begin', loop_1x.get('val_begin')))
    return dict(by_epoch=by_epoch,
                max_epochs=int(loop['max_epochs']) if by_epoch else None,
                max_iters=None if by_epoch else int(loop['max_iters']),
                val_interval=int(DEFAULTS['val_interval'] if val_interval is None else val_interval),
                val_begin=int(DEFAULTS['val_begin'] if val_begin is None else val_begin))


def data_config(cfg: Mapping[str, Any]) -> dict:
    """The runtime ``data`` section: ``{split: dict(dataset, batch_size, num_workers, cfg_key) or None}``."""
    if is_runtime_config(cfg):
        return cfg['data']
    data = cfg.get('data')
    loaders = {s: cfg.get(f'{s}_dataloader') for s in ('train', 'val', 'test')}
    if data is not None and any(loaders.values()):
        given = [f'{s}_dataloader' for s, v in loaders.items() if v]
        raise ConfigError(f'the config sets both data (MMAction2 0.x) and {", ".join(given)} (1.x); '
                          'keep one form')
    out: dict[str, Any] = {}
    for split in ('train', 'val', 'test'):
        if data is not None:
            dataset = data.get(split)
            per_split = data.get(f'{split}_dataloader') or {}
            batch = per_split.get('videos_per_gpu', data.get('videos_per_gpu'))
            workers = per_split.get('workers_per_gpu', data.get('workers_per_gpu'))
        else:
            loader = loaders[split] or {}
            dataset = loader.get('dataset')
            batch, workers = loader.get('batch_size'), loader.get('num_workers')
        if dataset is None:
            out[split] = None
            continue
        out[split] = dict(dataset=_without_normalize(copy.deepcopy(dict(dataset))),
                          cfg_key=f'data.{split}' if data is not None else f'{split}_dataloader.dataset',
                          batch_size=int(DEFAULTS['batch_size'] if batch is None else batch),
                          num_workers=int(DEFAULTS['num_workers'] if workers is None else workers))
    return out


def sample_shape(cfg: Mapping[str, Any], size: int = 224) -> tuple[int, ...]:
    """An input shape for the config's model: ``(1, V, H, W, 3)``, 3D: ``(1, V, T, H, W, 3)``.

    V and T come from the first ``SampleFrames`` (or ``UniformSample``) of the training
    pipeline (of the test pipeline in a test-only recipe), else from the model's
    ``num_segments``; only the structure matters (the trace is abstract).
    """
    model = cfg.get('model', {})
    frames = None
    data, source = data_config(cfg), getattr(cfg, 'source', None) or cfg
    # a test-only recipe (X3D, VideoMAE) samples its clips in the test pipeline only
    pipelines = [pipeline for split in ('train', 'test') for pipeline in (
        ((data.get(split) or {}).get('dataset') or {}).get('pipeline'), source.get(f'{split}_pipeline'))]
    for pipeline in pipelines:
        for step in pipeline or ():
            if isinstance(step, Mapping) and step.get('type') in ('SampleFrames', 'UniformSample'):
                frames = step
                break
        if frames:
            break
    clips = (frames or {}).get('num_clips')
    clip_len = (frames or {}).get('clip_len', 1)
    if model.get('type') == 'Recognizer3D':
        return (1, clips or 1, clip_len, size, size, 3)
    if clips is None:
        segments = [part.get('num_segments') for part in (model.get('backbone'), model.get('cls_head'))
                    if isinstance(part, Mapping)]
        clips = next((s for s in segments if s), 8)
    return (1, clips * clip_len, size, size, 3)


def _without_normalize(node: Any) -> Any:
    """A dataset config whose pipelines lost their plain 0.x ``Normalize`` steps: the mean and
    std moved to ``model.data_preprocessor`` (``model_config``), where the arithmetic runs.
    A step that also reverses channels (``to_bgr``) or scales flow stays: it acts on the host."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == 'pipeline' and isinstance(value, (list, tuple)):
                value = [step for step in value if not _plain_normalize(step)]
            out[key] = _without_normalize(value)
        return out
    if isinstance(node, (list, tuple)):
        return type(node)(_without_normalize(v) for v in node)
    return node


def _plain_normalize(step: Any) -> bool:
    return (isinstance(step, Mapping) and step.get('type') == 'Normalize' and not step.get('to_bgr')
            and not step.get('adjust_magnitude'))


def _metrics(cfg: Mapping[str, Any]) -> tuple[list[dict], list[dict]]:
    evaluation = cfg.get('evaluation') or {}
    names = evaluation.get('metrics', evaluation.get('metric'))
    old = None
    if names is not None:
        old = _metrics_from_names([names] if isinstance(names, str) else list(names),
                                  evaluation.get('metric_options'), 'evaluation.metrics')
    val = _one_of(cfg, ('evaluation.metrics', old), ('val_evaluator', cfg.get('val_evaluator')))
    test = _one_of(cfg, ('evaluation.metrics', old), ('test_evaluator', cfg.get('test_evaluator')))
    default = [dict(type='AccMetric', metric_list=list(DEFAULTS['metric_list']))]
    return _metric_list(val) or default, _metric_list(test) or _metric_list(val) or default


def _metrics_from_names(names: list[str], options: Any, key: str) -> list[dict]:
    """0.x ``evaluation.metrics`` names grouped into the 1.x metric classes that compute them."""
    grouped: dict[str, list[str]] = {}
    for name in names:
        if name not in _METRIC_CLASS:
            close = difflib.get_close_matches(name, list(_METRIC_CLASS), n=2)
            hint = f'; did you mean {" or ".join(close)}?' if close else ''
            raise ConfigError(f'{key}: unknown metric {name!r}{hint} (known: {", ".join(_METRIC_CLASS)})')
        grouped.setdefault(_METRIC_CLASS[name], []).append(name)
    out = []
    for metric_type, members in grouped.items():
        metric: dict[str, Any] = dict(type=metric_type, metric_list=members)
        if metric_type == 'AccMetric' and options:
            metric['metric_options'] = dict(options)
        if metric_type == 'ANetMetric':
            metric = dict(type=metric_type, metric_type='AR@AN')
        out.append(metric)
    return out


def _metric_list(value: Any) -> list[dict] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, Mapping) else list(value)
    out = []
    for item in items:
        item = dict(item)
        if item.get('type') == 'AccMetric' and 'metric_list' not in item:
            item['metric_list'] = list(DEFAULTS['metric_list'])
        elif item.get('type') == 'AccMetric':
            item['metric_list'] = list(item['metric_list'])
        out.append(item)
    return out


# --------------------------------------------------------------------------- checkpoint, log, resume

def _checkpoint(cfg: Mapping[str, Any], loop: Mapping[str, Any]) -> tuple[str | None, str | None, dict]:
    hook = dict(_get(cfg, 'default_hooks', 'checkpoint') or {})
    old = cfg.get('checkpoint_config')
    ckpt = _one_of(cfg, ('checkpoint_config', old), ('default_hooks.checkpoint', hook or None)) or {}
    ckpt = dict(ckpt)
    evaluation = cfg.get('evaluation') or {}
    save_best = _one_of(cfg, ('evaluation.save_best', evaluation.get('save_best')),
                        ('default_hooks.checkpoint.save_best', ckpt.pop('save_best', None)))
    rule = _one_of(cfg, ('evaluation.rule', evaluation.get('rule')),
                   ('default_hooks.checkpoint.rule', ckpt.pop('rule', None)))
    if isinstance(save_best, (list, tuple)):
        save_best = save_best[0]
    for ignored in ('type', 'out_dir', 'sync_buffer', 'file_client_args', 'create_symlink', 'filename_tmpl',
                    'published_keys', 'save_param_scheduler', 'backend_args', 'greater_keys', 'less_keys'):
        ckpt.pop(ignored, None)
    out = dict(DEFAULTS['checkpoint'], by_epoch=bool(loop.get('by_epoch', True)))
    unknown = sorted(set(ckpt) - set(out))
    if unknown:
        raise ConfigError(f'checkpoint_config / default_hooks.checkpoint: unknown keys {unknown}; '
                          f'known: {sorted(out)}')
    out.update(ckpt)
    return save_best, rule, out


def _log(cfg: Mapping[str, Any]) -> dict:
    hook = _get(cfg, 'default_hooks', 'logger')
    old = cfg.get('log_config')
    log = _one_of(cfg, ('log_config', old), ('default_hooks.logger', hook)) or {}
    if old is not None:
        hooks = [h.get('type') for h in old.get('hooks') or []]
        unsupported = sorted(set(hooks) - {'TextLoggerHook', 'TensorboardLoggerHook'})
        if unsupported:
            logger.warning(f'log_config.hooks: {unsupported} are not supported and are ignored '
                           '(TextLoggerHook and TensorboardLoggerHook are)')
        tensorboard = 'TensorboardLoggerHook' in hooks
    else:
        backends = cfg.get('vis_backends') or _get(cfg, 'visualizer', 'vis_backends') or []
        tensorboard = any(b.get('type') == 'TensorboardVisBackend' for b in backends)
    interval = log.get('interval')
    return dict(interval=int(DEFAULTS['log_interval'] if interval is None else interval),
                tensorboard=tensorboard)


def _resume(cfg: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """``(load_from, resume_from)``; mmengine's ``resume=True`` resumes from load_from, else the latest."""
    resume = cfg.get('resume')
    resume_from = cfg.get('resume_from')
    if resume and resume_from:
        raise ConfigError('the config sets both resume_from (MMAction2 0.x) and resume (1.x); keep one')
    if resume:
        return None, cfg.get('load_from') or 'auto'
    return cfg.get('load_from'), resume_from
