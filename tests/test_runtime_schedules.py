"""The lr and momentum that the jitted train step applies equal mmengine's, at every iteration.

Goldens: ``fixtures/schedules/mmengine_param_schedulers.json``, made by mmengine 0.10.7's own
``Runner._build_param_scheduler`` and ``ParamSchedulerHook`` around a torch SGD with two param
groups (lr 0.1 and 0.5, momentum 0.9), 7 epochs of 13 iterations. Here the same
``param_scheduler`` list goes through a 1.x config (``optim_wrapper`` + ``param_scheduler``),
the runtime config and ``engine.build.build_tx`` into actionjax's own train step; the second
group is the head with ``lr_mult=5`` (base lr 0.5). ``plot_lr`` must report the same values.
"""

import json
import os

import jax
import numpy as np
import pytest

from actionjax.config import Config
from actionjax.engine import build
from actionjax.engine.state import TrainState
from actionjax.engine.steps import make_train_step
from actionjax.models import build_model
from actionjax.runtime_config import to_runtime_config
from actionjax.tools import plot_lr

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures', 'schedules')
CASES = ['momentum_cosine_epoch+lr_multistep', 'momentum_linear_iter+step_epoch',
         'momentum_multistep_converted+exp', 'momentum_cosine_converted+lr_linear_iter+cosine']
HEAD_GROUP = 'lr5_decay1'


def config_for(param_scheduler: list, epochs: int) -> Config:
    """A tiny TSN in MMAction2 1.x keys whose head trains at 5x the base lr."""
    return Config(dict(
        model=dict(type='Recognizer2D',
                   backbone=dict(type='ResNet', depth=18, num_stages=1, out_indices=(0,), strides=(1,),
                                 dilations=(1,), norm_eval=False, pretrained=None),
                   cls_head=dict(type='TSNHead', num_classes=4, in_channels=64, dropout_ratio=0.0,
                                 average_clips='prob')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9),
                           paramwise_cfg=dict(custom_keys={'cls_head': dict(lr_mult=5.0)})),
        param_scheduler=param_scheduler,
        train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=epochs, val_interval=1)))


@pytest.fixture(scope='module')
def golden():
    with open(os.path.join(FIXTURES, 'mmengine_param_schedulers.json')) as f:
        return json.load(f)


@pytest.mark.parametrize('case', CASES)
def test_train_step_applies_mmengine_lr_and_momentum_per_group(golden, case):
    record = golden[case]
    run = record['run']
    cfg = to_runtime_config(config_for(record['param_scheduler'], run['max_epochs']))
    assert cfg.momentum_schedule is not None  # the 1.x momentum schedulers reach the optimizer
    model = build_model(cfg)
    rng = np.random.default_rng(0)
    batch = {'imgs': rng.integers(0, 256, (2, 1, 8, 8, 3), dtype=np.uint8),
             'label': np.array([0, 3], np.int32)}
    variables = build.init_variables(model, {k: v[:1] for k, v in batch.items()}, seed=0)
    tx = build.build_tx(cfg, model, variables, batch, run['iters_per_epoch'])
    state = TrainState.create(variables, tx, jax.random.PRNGKey(0))
    step = make_train_step(model, tx)
    applied = []
    for _ in range(len(record['lr'])):
        state, metrics = step(state, batch)
        applied.append({k: v for k, v in metrics.items() if k.startswith(('lr', 'momentum'))})
    applied = jax.device_get(applied)
    want_lr, want_momentum = np.asarray(record['lr']), np.asarray(record['momentum'])
    got = {key: np.array([a[key] for a in applied], np.float64) for key in applied[0]}
    np.testing.assert_allclose(got['lr'], want_lr[:, 0], rtol=1e-6)
    np.testing.assert_allclose(got[f'lr/{HEAD_GROUP}'], want_lr[:, 1], rtol=1e-6)
    # both groups start from the optimizer's momentum (0.9), as the golden's first group
    np.testing.assert_allclose(got['momentum'], want_momentum[:, 0], rtol=1e-6)
    np.testing.assert_allclose(got[f'momentum/{HEAD_GROUP}'], want_momentum[:, 0], rtol=1e-6)

    # plot_lr reads the same optimizer groups and schedules
    curves = plot_lr.schedule_curves(cfg, run['iters_per_epoch'])
    assert set(curves['lr']) == {'default', HEAD_GROUP} == set(curves['momentum'])
    np.testing.assert_allclose(curves['lr']['default'], got['lr'], rtol=1e-7)
    np.testing.assert_allclose(curves['lr'][HEAD_GROUP], got[f'lr/{HEAD_GROUP}'], rtol=1e-7)
    np.testing.assert_allclose(curves['momentum'][HEAD_GROUP], got[f'momentum/{HEAD_GROUP}'], rtol=1e-7)


def test_plot_lr_json_has_every_iteration_of_every_group(tmp_path, golden):
    record = golden['momentum_cosine_converted+lr_linear_iter+cosine']
    path = tmp_path / 'cfg.py'
    config_for(record['param_scheduler'], record['run']['max_epochs']).dump(path)
    out = tmp_path / 'lr.json'
    plot_lr.main(['--config', str(path), '--iters-per-epoch', '13', '--out', str(tmp_path / 'lr.png'),
                  '--json', str(out)])
    with open(out) as f:
        saved = json.load(f)
    assert set(saved) == {'lr', 'momentum'}
    np.testing.assert_allclose(saved['lr']['default'], np.asarray(record['lr'])[:, 0], rtol=1e-6)
    np.testing.assert_allclose(saved['lr'][HEAD_GROUP], np.asarray(record['lr'])[:, 1], rtol=1e-6)
    np.testing.assert_allclose(saved['momentum']['default'], np.asarray(record['momentum'])[:, 0], rtol=1e-6)
    assert os.path.getsize(tmp_path / 'lr.png') > 0


def test_plot_lr_without_data_or_iters_per_epoch_says_what_to_pass(tmp_path, capsys):
    path = tmp_path / 'cfg.py'
    cfg = config_for([dict(type='MultiStepLR', milestones=[1])], 2)
    cfg['train_dataloader'] = dict(batch_size=2, dataset=dict(type='VideoDataset', ann_file='missing.txt',
                                                              pipeline=[]))
    cfg.dump(path)
    with pytest.raises(SystemExit, match='--iters-per-epoch'):
        plot_lr.main(['--config', str(path), '--out', str(tmp_path / 'lr.png')])
