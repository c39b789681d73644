"""Engine pieces: metrics, save_best rules, 1.x config mapping, checkpoints, the jitted step, the loop.

The loop tests run the real tiny TSN (tests/fixtures/engine/tiny_tsn.py), the real
optimizer and schedule builders and the real grain ``DataLoader``, over an in-memory
dataset so that no video is decoded.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from engine_utils import REPO, TINY_CONFIG, cli_env, json_records

from actionjax.config import Config
from actionjax.engine import build
from actionjax.engine.checkpoint import (
    CheckpointPolicy,
    find_latest,
    merge_variables,
    resolve_checkpoint,
    restore_checkpoint,
    save_checkpoint,
)
from actionjax.engine.evaluation import BestTracker, build_metrics
from actionjax.engine.logger import RunLogger, setup_logger
from actionjax.engine.runner import LoopConfig, NonFiniteLossError, Validation, run_training
from actionjax.engine.sharding import batch_sharded, make_mesh, replicated
from actionjax.engine.state import TrainState
from actionjax.engine.steps import make_train_step
from actionjax.metrics import accuracy as M
from actionjax.models import build_model
from actionjax.runtime_config import to_runtime_config

FIXTURES = os.path.join(REPO, 'tests', 'fixtures', 'engine')


# --------------------------------------------------------------------------- metrics

def test_metrics_match_mmaction2_goldens():
    golden = np.load(os.path.join(FIXTURES, 'metrics.npz'))
    for case in range(8):
        scores, labels = golden[f'{case}_scores'], golden[f'{case}_labels']
        np.testing.assert_allclose(M.top_k_accuracy(scores, labels, (1, 2, 5)), golden[f'{case}_topk'])
        np.testing.assert_allclose(M.mean_class_accuracy(scores, labels), golden[f'{case}_mean_class'])
        np.testing.assert_allclose(M.mean_average_precision(scores, golden[f'{case}_multi_hot']),
                                   golden[f'{case}_map'])


def test_evaluate_names_results_as_mmaction2_and_rejects_unknown_metrics():
    scores = np.eye(4)[[0, 1, 2, 2]]
    results = M.evaluate(scores, np.array([0, 1, 2, 3]), ['top_k_accuracy', 'mean_class_accuracy'])
    assert list(results) == ['top1_acc', 'top5_acc', 'mean_class_accuracy']
    assert results['top1_acc'] == 0.75 and results['mean_class_accuracy'] == 0.75
    with pytest.raises(KeyError, match='evaluation.metrics'):
        M.evaluate(scores, np.zeros(4, int), ['accuracy'])


def test_save_best_rules_follow_mmcv():
    auto = BestTracker('auto')
    assert auto.update({'top1_acc': 0.5, 'top5_acc': 0.9}) and auto.key == 'top1_acc'
    assert auto.rule == 'greater'
    assert not auto.update({'top1_acc': 0.4, 'top5_acc': 1.0})
    assert auto.update({'top1_acc': 0.6, 'top5_acc': 1.0}) and auto.best_score == 0.6
    loss = BestTracker('val_loss')
    assert loss.update({'val_loss': 2.0}) and loss.rule == 'less' and loss.update({'val_loss': 1.0})
    with pytest.raises(ValueError, match="evaluation.rule"):
        BestTracker('throughput').update({'throughput': 1.0})
    assert not BestTracker(None).update({'top1_acc': 1.0})


# --------------------------------------------------------------------------- configs

def test_mmaction2_1x_keys_map_to_the_runtime_form():
    cfg = Config(dict(
        model=dict(type='Recognizer2D', backbone=dict(type='ResNet'),
                   cls_head=dict(type='TSNHead', num_classes=4, in_channels=8, average_clips='prob'),
                   data_preprocessor=dict(type='ActionDataPreprocessor', mean=[1, 2, 3], std=[4, 5, 6])),
        train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=50, val_begin=1, val_interval=5),
        optim_wrapper=dict(constructor='TSMOptimWrapperConstructor', paramwise_cfg=dict(fc_lr5=True),
                           optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
                           clip_grad=dict(max_norm=20, norm_type=2)),
        param_scheduler=[dict(type='MultiStepLR', begin=0, end=50, by_epoch=True, milestones=[25, 45])],
        default_hooks=dict(logger=dict(type='LoggerHook', interval=10),
                           checkpoint=dict(type='CheckpointHook', interval=3, max_keep_ckpts=3,
                                           save_best='auto')),
        train_dataloader=dict(batch_size=16, num_workers=8, dataset=dict(type='VideoDataset', ann_file='a')),
        val_dataloader=dict(batch_size=4, num_workers=2, dataset=dict(type='VideoDataset', ann_file='b')),
        val_evaluator=dict(type='AccMetric'),
        vis_backends=[dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')],
        resume=True))
    out = to_runtime_config(cfg)
    assert out.train_loop == dict(by_epoch=True, max_epochs=50, max_iters=None, val_interval=5, val_begin=1)
    assert out.optimizer == dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4,
                                 paramwise_cfg=dict(fc_lr5=True), constructor='TSMOptimWrapperConstructor')
    assert out.grad_clip == dict(max_norm=20, norm_type=2)
    assert out.lr_schedule == cfg.param_scheduler and out.momentum_schedule is None
    assert out.checkpoint == dict(interval=3, max_keep_ckpts=3, save_last=True, interval_iters=None,
                                  save_optimizer=True, by_epoch=True)
    assert out.save_best == 'auto'
    assert out.val_metrics == [dict(type='AccMetric', metric_list=['top_k_accuracy', 'mean_class_accuracy'])]
    assert out.log == dict(interval=10, tensorboard=True)
    assert out.data.train == dict(dataset=dict(type='VideoDataset', ann_file='a'), batch_size=16,
                                  num_workers=8, cfg_key='train_dataloader.dataset')
    assert out.data.val == dict(dataset=dict(type='VideoDataset', ann_file='b'), batch_size=4, num_workers=2,
                                cfg_key='val_dataloader.dataset')
    assert out.resume_from == 'auto' and out.load_from is None


def test_a_momentum_scheduler_in_param_scheduler_schedules_momentum():
    """The bug the runtime config fixes: 1.x momentum schedulers used to be dropped."""
    scheduler = [dict(type='CosineAnnealingLR', T_max=10, by_epoch=False),
                 dict(type='CosineAnnealingMomentum', T_max=10, eta_min=0.85, by_epoch=False)]
    cfg = Config(dict(model=dict(type='Recognizer2D'), train_cfg=dict(by_epoch=False, max_iters=10),
                      optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.95)),
                      param_scheduler=scheduler))
    out = to_runtime_config(cfg)
    assert out.lr_schedule == scheduler and out.momentum_schedule == scheduler
    assert out.train_loop['by_epoch'] is False and out.train_loop['max_iters'] == 10


def test_one_meaning_under_both_generations_keys_is_an_error():
    from actionjax.config import ConfigError

    base = dict(model=dict(type='Recognizer2D'), optimizer=dict(type='SGD', lr=0.1), total_epochs=1)
    both = ((dict(optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1))), 'optim_wrapper'),
            (dict(lr_config=dict(policy='step', step=[1]), param_scheduler=[]), 'param_scheduler'),
            (dict(train_cfg=dict(max_epochs=3)), 'train_cfg'),
            (dict(data=dict(), train_dataloader=dict(dataset={})), 'train_dataloader'))
    for extra, names in both:
        with pytest.raises(ConfigError, match=names):
            to_runtime_config(Config(dict(base, **extra)))


def test_an_unread_key_that_looks_like_a_typo_is_reported(caplog):
    cfg = Config(dict(model=dict(type='Recognizer2D'), optimizer=dict(type='SGD', lr=0.1), total_epoch=1,
                      lr_confg=dict(policy='step', step=[1]), train_pipeline=[]))
    with caplog.at_level('WARNING', logger='actionjax'):
        to_runtime_config(cfg)
    assert "'total_epoch' is not read by actionjax; did you mean 'total_epochs'" in caplog.text
    assert "'lr_confg'" in caplog.text and "'lr_config'" in caplog.text
    assert 'train_pipeline' not in caplog.text


def test_real_recipe_without_kinetics_says_how_to_prepare_it_and_which_demo_to_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = to_runtime_config(Config.fromfile(os.path.join(REPO, 'configs', 'tsn.py')))
    with pytest.raises(FileNotFoundError) as err:
        build.check_data(cfg, ('train', 'val'))
    message = str(err.value)
    assert 'data.train.ann_file' in message and 'kinetics400_train_list_videos.txt' in message
    assert 'Kinetics-400' in message and 'configs/tsn_demo.py' in message


# --------------------------------------------------------------------------- checkpoints

def _tree(value: float) -> dict:
    return {'params': {'w': jnp.full((3, 2), value)}, 'step': jnp.int32(value)}


def test_checkpoints_keep_the_latest_and_restore_exactly(tmp_path):
    policy = CheckpointPolicy.from_config(str(tmp_path), dict(interval=1, max_keep_ckpts=2, interval_iters=2))
    for epoch in (1, 2, 3):
        policy.save('epoch', epoch, _tree(epoch), {'iter': 10 * epoch, 'epoch': epoch})
    policy.save('iter', 32, _tree(3.5), {'iter': 32, 'epoch': 3})
    assert sorted(os.listdir(tmp_path)) == ['epoch_2', 'epoch_3', 'iter_32']
    assert find_latest(tmp_path) == os.path.join(tmp_path, 'iter_32')
    assert resolve_checkpoint(tmp_path / 'latest') == os.path.join(tmp_path, 'iter_32')
    save_checkpoint(tmp_path / 'best_top1_acc_epoch_2', _tree(2), {'iter': 20})
    assert resolve_checkpoint(tmp_path / 'best') == os.path.join(tmp_path, 'best_top1_acc_epoch_2')
    shutil.rmtree(tmp_path / 'best_top1_acc_epoch_2')
    state, meta = restore_checkpoint(tmp_path / 'epoch_3', _tree(0.0))
    np.testing.assert_array_equal(state['params']['w'], np.full((3, 2), 3.0))
    assert meta == {'iter': 30, 'epoch': 3}
    # a resumed run counts the checkpoints already there
    again = CheckpointPolicy.from_config(str(tmp_path), dict(interval=1, max_keep_ckpts=2))
    again.save('epoch', 4, _tree(4), {'iter': 40})
    assert sorted(os.listdir(tmp_path)) == ['epoch_3', 'epoch_4', 'iter_32']
    with pytest.raises(KeyError, match='checkpoint_config'):
        CheckpointPolicy.from_config(str(tmp_path), dict(intervl=1))


_SAVE_BIG = """
import sys
import numpy as np
from actionjax.engine.checkpoint import save_checkpoint
print('saving', flush=True)
save_checkpoint(sys.argv[1], {'w': np.ones((64, 1024, 1024), np.float32)}, {'iter': 2})
"""


def test_a_kill_during_a_save_leaves_the_previous_checkpoint_usable(tmp_path):
    save_checkpoint(tmp_path / 'iter_1', {'w': np.zeros((64, 1024, 1024), np.float32)}, {'iter': 1})
    proc = subprocess.Popen([sys.executable, '-c', _SAVE_BIG, str(tmp_path / 'iter_2')], env=cli_env(),
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == 'saving'
    deadline = time.monotonic() + 120
    while not any('tmp' in name for name in os.listdir(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    leftovers = [name for name in os.listdir(tmp_path) if name.startswith('iter_2')]
    assert leftovers and all('orbax-checkpoint-tmp' in name for name in leftovers), leftovers
    assert find_latest(tmp_path) == os.path.join(tmp_path, 'iter_1')
    state, _ = restore_checkpoint(find_latest(tmp_path), {'w': np.ones((64, 1024, 1024), np.float32)})
    assert float(np.abs(state['w']).max()) == 0.0


def test_merge_variables_lists_what_it_skips():
    target = {'params': {'backbone': {'conv1': {'kernel': np.zeros((3, 3, 3, 8))}},
                         'cls_head': {'fc_cls': {'kernel': np.zeros((8, 4)), 'bias': np.zeros(4)}}},
              'batch_stats': {'backbone': {'bn': {'mean': np.zeros(8)}}}}
    source = {'params': {'backbone': {'conv1': {'kernel': np.ones((3, 3, 3, 8))}},
                         'cls_head': {'fc_cls': {'kernel': np.ones((8, 5)), 'bias': np.ones(5)}},
                         'neck': {'w': np.ones(2)}}}
    merged, report = merge_variables(target, source)
    np.testing.assert_array_equal(merged['params']['backbone']['conv1']['kernel'], 1.0)
    np.testing.assert_array_equal(merged['params']['cls_head']['fc_cls']['kernel'], 0.0)
    assert sorted(report['mismatched']) == ['cls_head.fc_cls.bias: checkpoint (5,), model (4,)',
                                            'cls_head.fc_cls.weight: checkpoint (8, 5), model (8, 4)']
    assert report['missing'] == ['backbone.bn.running_mean']
    assert report['unexpected'] == ['neck.w']


# --------------------------------------------------------------------------- step and loop

class ArrayDataset:
    """In-memory clips whose class is their brightness: the loader's dataset protocol, no decoding."""

    test_mode = False

    def __init__(self, num: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.labels = np.arange(num) % 4
        noise = rng.integers(0, 40, size=(num, 2, 16, 16, 3))
        self.imgs = (noise + 50 * self.labels[:, None, None, None, None]).astype(np.uint8)

    def __len__(self) -> int:
        return len(self.labels)

    def prepare(self, index: int, rng: np.random.Generator | None = None) -> dict:
        flip = rng is not None and rng.random() < 0.5
        imgs = self.imgs[index][:, :, ::-1] if flip else self.imgs[index]
        return {'imgs': np.ascontiguousarray(imgs), 'label': int(self.labels[index])}


@pytest.fixture(scope='module')
def tiny():
    """The tiny TSN's config, model and initial variables (compiled once for the module)."""
    cfg = to_runtime_config(Config.fromfile(TINY_CONFIG))
    model = build_model(cfg)
    data = ArrayDataset(1)
    sample = {'imgs': data.imgs[:1], 'label': data.labels[:1].astype(np.int32)}
    return cfg, model, build.init_variables(model, sample, seed=0), sample


def _tx(cfg, model, variables, sample, iters_per_epoch, lr=None):
    if lr is not None:
        cfg = Config(dict(cfg), cfg.filename)
        cfg['optimizer'] = dict(cfg['optimizer'], lr=lr)
    return build.build_tx(cfg, model, variables, sample, iters_per_epoch)


def test_train_step_donates_the_state_and_learns(tiny):
    cfg, model, variables, sample = tiny
    tx = _tx(cfg, model, variables, sample, iters_per_epoch=4)
    state = jax.device_put(TrainState.create(variables, tx, jax.random.PRNGKey(0)))
    step = make_train_step(model, tx)
    data = ArrayDataset(8)
    batch = {'imgs': data.imgs, 'label': data.labels.astype(np.int32)}
    losses = []
    for _ in range(6):
        old = state
        state, metrics = step(state, batch)
        losses.append(float(metrics['loss']))
        assert jax.tree.leaves(old.params)[0].is_deleted()  # buffers reused by the new state
    assert int(state.step) == 6
    assert set(metrics) >= {'loss', 'loss_cls', 'top1_acc', 'top5_acc', 'lr'}
    assert losses[-1] < losses[0]


def _loop(tmp_path, tiny, lr=None, epochs=2, checkpoint=None):
    from actionjax.data import build_dataloader

    cfg, model, variables, sample = tiny
    loader = build_dataloader(ArrayDataset(16), batch_size=4, shuffle=True, seed=0, drop_last=True)
    val = build_dataloader(ArrayDataset(10, seed=1), batch_size=4)
    tx = _tx(cfg, model, variables, sample, len(loader), lr)
    state = TrainState.create(variables, tx, jax.random.PRNGKey(0))
    loop = LoopConfig(work_dir=str(tmp_path), by_epoch=True, max_epochs=epochs, max_iters=None,
                      val_interval=1, val_begin=1, log_interval=2, save_best='auto', rule=None,
                      checkpoint=checkpoint or dict(interval=1))
    metrics = build_metrics([dict(type='AccMetric', metric_list=['top_k_accuracy', 'mean_class_accuracy'])])
    mesh = make_mesh()
    run_log = RunLogger(str(tmp_path), 'run', False, setup_logger())
    try:
        return run_training(model, tx, state, loader, loop, (replicated(mesh), batch_sharded(mesh)),
                            run_log, val=Validation(val, ArrayDataset(10, seed=1), metrics))
    finally:
        run_log.close()


def test_loop_logs_every_interval_evaluates_and_keeps_the_best(tmp_path, tiny):
    state, results = _loop(tmp_path, tiny)
    assert int(state.step) == 8
    records = json_records(str(tmp_path))
    assert [(r['epoch'], r['iter']) for r in records] == [(1, 2), (1, 4), (2, 2), (2, 4)]
    assert {'lr', 'loss', 'loss_cls', 'top1_acc', 'top5_acc', 'time', 'data_time'} <= set(records[0])
    vals = json_records(str(tmp_path), 'val')
    assert [v['epoch'] for v in vals] == [1, 2] and vals[-1]['top1_acc'] == results['top1_acc']
    best = [n for n in os.listdir(tmp_path) if n.startswith('best_top1_acc_epoch_')]
    assert len(best) == 1 and {'epoch_1', 'epoch_2'} <= set(os.listdir(tmp_path))


def test_a_non_finite_loss_stops_the_run_naming_step_lr_and_checkpoint(tmp_path, tiny):
    with pytest.raises(NonFiniteLossError) as err:
        _loop(tmp_path, tiny, lr=1e12, epochs=3, checkpoint=dict(interval=1, interval_iters=1))
    message = str(err.value)
    assert 'by iteration' in message or 'at iteration' in message
    assert '(lr ' in message and 'last good checkpoint is ' in message
    last_good = message.split('last good checkpoint is ')[1].split('. ')[0]
    saved = [n for n in os.listdir(tmp_path) if n.startswith(('iter_', 'epoch_'))]
    if saved:  # the newest checkpoint is the one named, and it holds finite weights
        assert last_good == find_latest(tmp_path)
        params = build.read_variables(last_good)['params']
        assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree.leaves(params))
    else:
        assert last_good.startswith('none')
