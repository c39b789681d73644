"""From a runtime config to the pieces the loop runs: data, model variables, optimizer.

``actionjax.train``, ``actionjax.test`` and the train benchmark share these, so a
config means the same thing to all three. They read only the runtime form
(``actionjax.runtime_config``): ``cfg.data.train.batch_size``, ``cfg.optimizer``,
``cfg.lr_schedule``, ``cfg.train_loop``, ...
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from actionjax.config import ConfigKeyError
from actionjax.engine.checkpoint import (
    CheckpointError,
    check_arrays,
    damage_reported,
    merge_variables,
    read_state,
    resolve_checkpoint,
)

logger = logging.getLogger('actionjax')

DEMO_HINT = ('To try actionjax without it, train the demo on generated synthetic videos: '
             'python -m actionjax.train --config configs/tsn_demo.py')


def check_data(cfg: Mapping[str, Any], splits: tuple[str, ...]) -> None:
    """Fail early, with what to do, when a split's annotation file or video folder is missing.

    Recipes point at Kinetics-400 paths; the message says how to prepare the data
    and which demo config runs without it. Synthetic datasets generate themselves.
    """
    for split in splits:
        ds = (cfg['data'].get(split) or {}).get('dataset')
        if not ds or str(ds.get('type', '')).startswith('Synthetic'):
            continue
        ds = ds.get('dataset', ds) if ds.get('type') == 'RepeatDataset' else ds
        root = ds.get('data_root') or ''
        ann = os.path.join(root, ds.get('ann_file', '')) if ds.get('ann_file') else None
        prefix = ds.get('data_prefix')
        if isinstance(prefix, Mapping):
            prefix = prefix.get('video') or prefix.get('img')
        prefix = os.path.join(root, prefix) if prefix else None
        for key, path in ((f'data.{split}.ann_file', ann), (f'data.{split}.data_prefix', prefix)):
            if path and not os.path.exists(path):
                raise FileNotFoundError(
                    f'{key} = {path!r} does not exist (working directory {os.getcwd()}). '
                    'Prepare the dataset as MMAction2 documents it (for Kinetics-400: '
                    'tools/data/kinetics/README.md in MMAction2 — download the videos, then build '
                    'kinetics400_{train,val}_list_videos.txt with lines "path label"), or point '
                    f'{key} at your copy with --cfg-options. {DEMO_HINT}')


def train_data(cfg: Mapping[str, Any], dataset: Any, batch_size: int, seed: int) -> Any:
    """The training loader: shuffled per epoch from ``seed``, last incomplete batch dropped."""
    from actionjax.data import build_dataloader

    return build_dataloader(dataset, batch_size=batch_size, num_workers=cfg['data']['train']['num_workers'],
                            shuffle=True, seed=seed, drop_last=True)


def eval_data(cfg: Mapping[str, Any], dataset: Any, batch_size: int, split: str) -> Any:
    """A val/test loader: in order, last batch padded and marked ``valid=False``."""
    from actionjax.data import build_dataloader

    return build_dataloader(dataset, batch_size=batch_size, num_workers=cfg['data'][split]['num_workers'],
                            shuffle=False, drop_last=False)


def init_variables(model: Any, sample: Mapping[str, np.ndarray], seed: int,
                   cache_key: str | None = None) -> dict:
    """``model.init`` through ``predict`` on a one-sample batch, as plain dicts
    ``{'params', 'batch_stats'}``; works for any model kind.

    Floating variables come out in the model's parameter dtype (``model_variables``). With
    ``cache_key`` (the config the model was built from) the traced init is kept on disk for
    the next launch (``trace_cache.cached_jit``).
    """
    from actionjax.engine.trace_cache import cached_jit
    from actionjax.precision import check_dtype

    check_dtype(getattr(model, 'dtype', None))  # before init, which would run in float32
    k_params, k_dropout = jax.random.split(jax.random.PRNGKey(seed))
    # the keys are arguments, not constants: one program serves every seed
    init = cached_jit(lambda rngs, x: model.init(rngs, x, method='predict'), cache_key)
    variables = init({'params': k_params, 'dropout': k_dropout}, dict(sample))
    variables = jax.tree.map(np.asarray, dict(variables))
    variables.setdefault('batch_stats', {})
    return model_variables(model, variables)


def model_variables(model: Any, variables: dict) -> dict:
    """``variables`` with floating leaves in the model's parameter dtype
    (``actionjax.precision.param_dtype``): float32 for float32 and bfloat16 runs, float64
    for float64 ones. Flax creates parameters in float32 whatever the run's precision, and
    a checkpoint holds whatever it was saved in."""
    from actionjax.precision import cast_floating, check_dtype, param_dtype

    dtype = getattr(model, 'dtype', None)
    check_dtype(dtype)
    return cast_floating(variables, param_dtype(dtype))


def load_pretrained(variables: dict, cfg: Mapping[str, Any]) -> dict:
    """Initialise the backbone: its class's own ``init_weights(variables, pretrained)`` when it
    has one, else the converted checkpoint ``model.backbone.pretrained`` names
    (``actionjax.models.pretrained.init_backbone_weights``)."""
    from actionjax.models.pretrained import init_backbone_weights

    return init_backbone_weights(variables, cfg.get('model') or {})


def read_variables(path: str | os.PathLike) -> dict:
    """Model variables (``params``, ``batch_stats``) of a training checkpoint (``work_dir/epoch_N``,
    ``work_dir/best``, ``work_dir/latest``) or a converted one (``python -m convert.mmaction2``).

    Only those two collections are read: a training checkpoint's optimizer state is never
    touched. A damaged checkpoint raises ``CheckpointError`` naming the folder and the damage.
    """
    path = resolve_checkpoint(path)
    if path.endswith(('.pth', '.pt')):
        raise CheckpointError(f'{path} is a PyTorch checkpoint; convert it first: python -m '
                              f'convert.mmaction2 {path} --config CONFIG --out DIR, then pass DIR')
    if not os.path.exists(path):
        raise FileNotFoundError(f'checkpoint {path!r} does not exist; pass a training checkpoint '
                                '(work_dir/epoch_N, work_dir/best, work_dir/latest) or a converted one '
                                '(python -m convert.mmaction2 CHECKPOINT.pth --config CONFIG --out DIR)')
    if any(os.path.isdir(os.path.join(path, item)) for item in ('state', 'meta')):  # a training checkpoint
        state = read_state(path, ('params', 'batch_stats'))
        return {'params': state['params'], 'batch_stats': state.get('batch_stats') or {}}
    from actionjax.models.checkpoint_io import load_variables

    check_arrays(path)
    with damage_reported(path):
        return dict(load_variables(path))


def load_from(variables: dict, path: str) -> dict:
    """Fine-tuning init: variables of ``path`` whose names and shapes match the model.

    Like MMAction2's ``load_checkpoint(strict=False)``, mismatched shapes (a head with
    another ``num_classes``) and names only on one side are skipped with a warning
    listing them.
    """
    merged, report = merge_variables(variables, read_variables(path))
    if report['mismatched']:
        logger.warning(f'load_from {path}: size mismatch, kept the initial values of: '
                       + '; '.join(report['mismatched']))
    if report['missing']:
        logger.warning(f'load_from {path}: missing keys in source checkpoint: '
                       + ', '.join(report['missing']))
    if report['unexpected']:
        logger.warning(f'load_from {path}: unexpected keys in source checkpoint: '
                       + ', '.join(report['unexpected']))
    logger.info(f'load_from {path}: initialised the model from the checkpoint')
    return merged


def schedule_configs(cfg: Mapping[str, Any], iters_per_epoch: int) -> tuple[Any, Any]:
    """``(lr, momentum)`` ``ScheduleConfig``s of a runtime config for a train loader of
    ``iters_per_epoch`` batches (momentum None when not scheduled)."""
    from actionjax.optim import ScheduleConfig
    from actionjax.runtime_config import NO_OPTIMIZER, NO_RUN_LENGTH

    if cfg['optimizer'] is None or cfg['train_loop'] is None:
        raise ConfigKeyError(NO_OPTIMIZER if cfg['optimizer'] is None else NO_RUN_LENGTH)
    loop = cfg['train_loop']
    run = dict(iters_per_epoch=iters_per_epoch, max_epochs=loop['max_epochs'], max_iters=loop['max_iters'])
    lr = ScheduleConfig(cfg['lr_schedule'], 'lr', **run)
    momentum = None
    if cfg['momentum_schedule'] is not None:
        momentum = ScheduleConfig(cfg['momentum_schedule'], 'momentum', **run)
    return lr, momentum


def build_tx(cfg: Mapping[str, Any], model: Any, variables: dict, sample: Mapping[str, np.ndarray],
             iters_per_epoch: int) -> Any:
    """The optax transformation of ``cfg.optimizer`` and ``cfg.grad_clip``, holding each param
    group's lr and momentum schedule (from ``cfg.lr_schedule`` / ``cfg.momentum_schedule``)."""
    from actionjax.optim import build_optimizer

    lr, momentum = schedule_configs(cfg, iters_per_epoch)
    return build_optimizer(cfg['optimizer'], model, variables, dict(sample), lr_schedule=lr,
                           momentum_schedule=momentum, grad_clip=cfg['grad_clip'], method='predict')


def sample_batch(dataset: Any, tries: int = 16) -> dict[str, np.ndarray]:
    """A batch of one sample (its numeric fields, each with a leading axis of 1), to give
    ``model.init`` and the optimizer their shapes.

    Unreadable samples are skipped and named. When none of the first ``tries`` loads:
    ``DataError`` if files could not be read (``OSError``: missing, truncated, undecodable),
    else the first sample's own exception with its traceback, since the same non-I/O
    error on every sample is a bug in a pipeline step, not a pile of bad files.
    """
    from actionjax.data.loader import DataError, sample_name

    errors: list[str] = []
    first: Exception | None = None
    for index in range(min(len(dataset), tries)):
        try:
            results = dataset[index]
        except Exception as err:  # noqa: BLE001 - a broken file must not stop the shape probe
            errors.append(f'{sample_name(dataset, index)}: {type(err).__name__}: {err}')
            first = first or err
            continue
        if results is None:
            errors.append(f'{sample_name(dataset, index)}: the pipeline dropped it (returned None)')
            continue
        if errors:
            logger.warning(f'input shape taken from sample {index}; skipped unreadable: '
                           + '; '.join(errors))
        numeric = (np.ndarray, np.number, int, float)
        return {k: np.asarray(v)[None] for k, v in results.items()
                if isinstance(v, numeric) and not isinstance(v, bool) and k != 'rng'}
    if first is not None and not isinstance(first, OSError):
        raise first
    raise DataError(f'none of the first {min(len(dataset), tries)} samples of {dataset!r} could be loaded: '
                    + '; '.join(errors[:3]) + '. Check data_prefix and the pipeline, or run '
                    'python -m actionjax.tools.check_videos --config CONFIG')


def checkpoint_variables(model: Any, sample: Mapping[str, np.ndarray], path: str | os.PathLike) -> dict:
    """Variables of ``path`` that must match the model exactly (testing, inference).

    Any missing, unexpected or mis-shaped variable is an error listing them all:
    a checkpoint for another config would otherwise give silently wrong scores.
    """
    from actionjax.models.checkpoint_io import check_variables

    rngs = {'params': jax.random.PRNGKey(0), 'dropout': jax.random.PRNGKey(0)}
    expected = dict(jax.eval_shape(lambda x: model.init(rngs, x, method='predict'), dict(sample)))
    loaded = read_variables(path)
    # a model without norm layers has no batch_stats; an empty collection is no mismatch
    expected = {k: v for k, v in expected.items() if v or k == 'params'}
    loaded = {k: v for k, v in loaded.items() if v or k == 'params'}
    try:
        check_variables(expected, loaded, source=f'checkpoint {os.fspath(path)}')
    except ValueError as err:  # the message lists every mismatch: it is the whole story
        raise CheckpointError(str(err)) from None
    return model_variables(model, loaded)
