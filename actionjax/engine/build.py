"""From a config to the pieces the loop runs: data, model variables, optimizer.

``actionjax.train``, ``actionjax.test`` and the train benchmark share these, so a
config means the same thing to all three. Configs are first passed through
``to_runtime_config`` (MMAction2 1.x keys -> 0.x keys).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from actionjax.engine.checkpoint import is_train_checkpoint, merge_variables, read_state, resolve_checkpoint

logger = logging.getLogger('actionjax')

DEMO_HINT = ('To try actionjax without it, train the demo on generated synthetic videos: '
             'python -m actionjax.train --config configs/tsn_demo.py')


def check_data(cfg: Mapping[str, Any], splits: tuple[str, ...]) -> None:
    """Fail early, with what to do, when a split's annotation file or video folder is missing.

    Recipes point at Kinetics-400 paths; the message says how to prepare the data
    and which demo config runs without it. Synthetic datasets generate themselves.
    """
    for split in splits:
        ds = cfg['data'].get(split)
        if not ds or ds.get('type') == 'SyntheticVideoDataset':
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


def videos_per_gpu(cfg: Mapping[str, Any], split: str) -> int:
    """Per-device batch of a split: ``data.<split>_dataloader.videos_per_gpu`` or ``data.videos_per_gpu``."""
    data = cfg['data']
    return int((data.get(f'{split}_dataloader') or {}).get('videos_per_gpu', data.get('videos_per_gpu', 1)))


def workers_per_gpu(cfg: Mapping[str, Any], split: str) -> int:
    data = cfg['data']
    return int((data.get(f'{split}_dataloader') or {}).get('workers_per_gpu', data.get('workers_per_gpu', 1)))


def train_data(cfg: Mapping[str, Any], dataset: Any, batch_size: int, seed: int) -> Any:
    """The training loader: shuffled per epoch from ``seed``, last incomplete batch dropped."""
    from actionjax.data import build_dataloader

    return build_dataloader(dataset, batch_size=batch_size, num_workers=workers_per_gpu(cfg, 'train'),
                            shuffle=True, seed=seed, drop_last=True)


def eval_data(cfg: Mapping[str, Any], dataset: Any, batch_size: int, split: str) -> Any:
    """A val/test loader: in order, last batch padded and marked ``valid=False``."""
    from actionjax.data import build_dataloader

    return build_dataloader(dataset, batch_size=batch_size, num_workers=workers_per_gpu(cfg, split),
                            shuffle=False, drop_last=False)


def init_variables(model: Any, sample_imgs: np.ndarray, seed: int) -> dict:
    """``model.init`` on one sample, as plain dicts ``{'params', 'batch_stats'}``."""
    k_params, k_dropout = jax.random.split(jax.random.PRNGKey(seed))
    variables = jax.jit(lambda x: model.init({'params': k_params, 'dropout': k_dropout}, x, train=False))(
        sample_imgs)
    variables = jax.tree.map(np.asarray, dict(variables))
    variables.setdefault('batch_stats', {})
    return variables


def load_pretrained(variables: dict, cfg: Mapping[str, Any]) -> dict:
    """Initialise the backbone from ``model.backbone.pretrained`` when it names a local file.

    ``torchvision://name`` and URLs would need a download, which actionjax never
    does: the error says how to convert a local file instead.
    """
    backbone = (cfg.get('model') or {}).get('backbone') or {}
    pretrained = backbone.get('pretrained')
    if not pretrained:
        return variables
    if '://' in str(pretrained):
        raise ValueError(
            f'model.backbone.pretrained = {pretrained!r} needs a download, which actionjax never does. '
            'Convert a local torchvision file (python -m convert.torchvision resnet50.pth --out '
            'checkpoints/resnet50) and set model.backbone.pretrained to that folder, or set it to None '
            "(--cfg-options model.backbone.pretrained=None) to train from scratch.")
    if not os.path.exists(pretrained):
        raise FileNotFoundError(f'model.backbone.pretrained = {pretrained!r} does not exist')
    from convert.torchvision import load_pretrained_backbone

    logger.info(f'backbone initialised from {pretrained}')
    return load_pretrained_backbone(variables, pretrained)


def read_variables(path: str | os.PathLike) -> dict:
    """Model variables from a training checkpoint (``work_dir/epoch_N``, ``work_dir/best``,
    ``work_dir/latest``) or a converted one (``python -m convert.mmaction2``)."""
    path = resolve_checkpoint(path)
    if path.endswith(('.pth', '.pt')):
        raise ValueError(f'{path} is a PyTorch checkpoint; convert it first: python -m convert.mmaction2 '
                         f'{path} --config CONFIG --out DIR, then pass DIR')
    if not os.path.exists(path):
        raise FileNotFoundError(f'checkpoint {path!r} does not exist; pass a training checkpoint '
                                '(work_dir/epoch_N, work_dir/best, work_dir/latest) or a converted one '
                                '(python -m convert.mmaction2 CHECKPOINT.pth --config CONFIG --out DIR)')
    if is_train_checkpoint(path):
        state = read_state(path)
        return {'params': state['params'], 'batch_stats': state.get('batch_stats') or {}}
    from actionjax.models.checkpoint_io import load_variables

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


def build_schedules(cfg: Mapping[str, Any], iters_per_epoch: int) -> tuple[Any, Any]:
    """``(lr_fn, momentum_fn or None)`` from ``lr_config``/``momentum_config`` and the optimizer."""
    from actionjax.optim import build_lr_schedule, build_momentum_schedule

    opt = cfg['optimizer']
    max_epochs = cfg.get('total_epochs')
    lr_fn = build_lr_schedule(cfg.get('lr_config') or dict(policy='fixed'), opt['lr'], iters_per_epoch,
                              max_epochs=max_epochs)
    mom_fn = None
    if cfg.get('momentum_config'):
        base_momentum = opt['betas'][0] if 'betas' in opt else opt.get('momentum')
        mom_fn = build_momentum_schedule(cfg['momentum_config'], base_momentum, iters_per_epoch,
                                         max_epochs=max_epochs)
    return lr_fn, mom_fn


def build_tx(cfg: Mapping[str, Any], model: Any, variables: dict, sample_imgs: np.ndarray,
             lr_fn: Any, mom_fn: Any) -> Any:
    """The optax transformation of ``optimizer``/``optimizer_config`` with the schedules inside."""
    from actionjax.optim import build_optimizer

    return build_optimizer(cfg['optimizer'], model, variables, sample_imgs, lr_schedule=lr_fn,
                           momentum_schedule=mom_fn, optimizer_config=cfg.get('optimizer_config'))


def sample_batch(dataset: Any) -> np.ndarray:
    """A batch of one sample, ``imgs[None]``, to give ``model.init`` and the optimizer shapes."""
    for index in range(min(len(dataset), 16)):
        results = dataset[index]
        if results is not None:
            return np.asarray(results['imgs'])[None]
    raise RuntimeError(f'none of the first samples of {dataset!r} could be loaded')


def checkpoint_variables(model: Any, sample_imgs: Any, path: str | os.PathLike) -> dict:
    """Variables of ``path`` that must match the model exactly (testing, inference).

    Any missing, unexpected or mis-shaped variable is an error listing them all:
    a checkpoint for another config would otherwise give silently wrong scores.
    """
    from actionjax.models.checkpoint_io import check_variables

    rngs = {'params': jax.random.PRNGKey(0), 'dropout': jax.random.PRNGKey(0)}
    expected = dict(jax.eval_shape(lambda x: model.init(rngs, x, train=False), sample_imgs))
    loaded = read_variables(path)
    # a model without norm layers has no batch_stats; an empty collection is no mismatch
    expected = {k: v for k, v in expected.items() if v or k == 'params'}
    loaded = {k: v for k, v in loaded.items() if v or k == 'params'}
    check_variables(expected, loaded, source=f'checkpoint {os.fspath(path)}')
    return loaded
