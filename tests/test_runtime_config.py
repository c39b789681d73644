"""One runtime config whichever MMAction2 generation a file is written in.

``configs/tsn_demo.py`` (0.x keys) and ``configs/tsn_demo_1x.py`` (1.x keys) describe one
run. Their runtime configs are equal key for key, except two things that are written
differently and mean the same: the lr schedule (an mmcv ``lr_config`` with warmup, an
mmengine ``param_scheduler`` list; compared by the lr the optimizer applies at every
iteration) and where the file keeps each dataset (``cfg_key``, for error messages).
Trained for one epoch on the same tiny data, they log the same losses.
"""

import os

import numpy as np
import pytest
from engine_utils import REPO, losses_by_iter

from actionjax import train
from actionjax.runtime_config import load_config
from actionjax.tools.plot_lr import schedule_curves

OLD, NEW = (os.path.join(REPO, 'configs', name) for name in ('tsn_demo.py', 'tsn_demo_1x.py'))
TINY = 'tiny_synthetic/appearance'


def tiny_data_options(generation: str) -> list[str]:
    """``--cfg-options`` pointing the demo at the tiny synthetic set, in the file's own keys."""
    splits = ('train', 'val', 'test') if generation == '0x' else ('train_dataloader', 'val_dataloader',
                                                                   'test_dataloader')
    options = []
    for split in splits:
        prefix = f'data.{split}' if generation == '0x' else f'{split}.dataset'
        ann = 'train_list.txt' if split.startswith('train') else 'val_list.txt'
        options += [f'{prefix}.ann_file={TINY}/{ann}', f'{prefix}.data_prefix={TINY}/videos',
                    f'{prefix}.synthetic_root=tiny_synthetic']
    log = 'log_config.interval=1' if generation == '0x' else 'default_hooks.logger.interval=1'
    return [*options, log]


def without_origin(cfg):
    out = dict(cfg)
    out.pop('lr_schedule')
    out['data'] = {k: v if v is None else {a: b for a, b in v.items() if a != 'cfg_key'}
                   for k, v in cfg['data'].items()}
    return out


def test_0x_and_1x_demo_give_one_runtime_config():
    old, new = load_config(OLD), load_config(NEW)
    assert without_origin(old) == without_origin(new)
    assert old.data.train.cfg_key == 'data.train' and new.data.train.cfg_key == 'train_dataloader.dataset'
    curves = [schedule_curves(cfg, iters_per_epoch=25) for cfg in (old, new)]
    assert len(curves[0]['lr']['default']) == 200
    np.testing.assert_allclose(curves[0]['lr']['default'], curves[1]['lr']['default'], rtol=1e-6)


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    """16 train / 10 val appearance videos at the demo's 64x64 frames."""
    from actionjax.data.synthetic import make_synthetic

    root = str(tmp_path_factory.mktemp('runtime_config'))
    make_synthetic(os.path.join(root, 'tiny_synthetic'), sets=('appearance',), num_train=16, num_val=10,
                   size=64, num_frames=8)
    return root


def test_0x_and_1x_demo_train_the_same_epoch(workspace, monkeypatch):
    monkeypatch.chdir(workspace)
    results = {}
    for generation, config in (('0x', OLD), ('1x', NEW)):
        options = [*tiny_data_options(generation),
                   'total_epochs=1' if generation == '0x' else 'train_cfg.max_epochs=1']
        out = train.main(['--config', config, '--work-dir', f'wd_{generation}', '--cfg-options', *options])
        results[generation] = (losses_by_iter(f'wd_{generation}'), out['eval'])
    (old_losses, old_eval), (new_losses, new_eval) = results['0x'], results['1x']
    assert sorted(old_losses) == sorted(new_losses) == [1, 2]
    np.testing.assert_allclose([new_losses[i] for i in (1, 2)], [old_losses[i] for i in (1, 2)], rtol=1e-5)
    assert old_eval == pytest.approx(new_eval, rel=1e-5)
