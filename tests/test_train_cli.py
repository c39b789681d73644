"""``python -m actionjax.train`` end to end on tiny synthetic videos (in-process, real components)."""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest
from engine_utils import REPO, TINY_CONFIG, json_records, run_module, tiny_workspace

from actionjax import train
from actionjax.config import Config


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    return tiny_workspace(str(tmp_path_factory.mktemp('train_cli')))


def test_train_writes_config_logs_checkpoints_and_evaluates(workspace, monkeypatch):
    monkeypatch.chdir(workspace)
    with open('with_tensorboard.py', 'w') as f:
        f.write(f"_base_ = [{TINY_CONFIG!r}]\n"
                "log_config = dict(hooks=[dict(type='TextLoggerHook'),\n"
                "                         dict(type='TensorboardLoggerHook')])\n")
    out = train.main(['--config', 'with_tensorboard.py', '--work-dir', 'wd', '--seed', '3'])
    files = set(os.listdir('wd'))

    # the resolved config, loadable again
    assert 'with_tensorboard.py' in files
    assert Config.fromfile('wd/with_tensorboard.py').seed == 3
    # text log, JSON-lines log with one record per interval, TensorBoard events
    text = open(glob.glob('wd/*.log')[0]).read()
    assert 'Epoch [1][1/4]' in text and 'Epoch(val) [2]' in text and 'eta:' in text
    train_records = json_records('wd')
    assert [(r['epoch'], r['iter']) for r in train_records] == [(e, i) for e in (1, 2) for i in (1, 2, 3, 4)]
    assert {'lr', 'loss', 'loss_cls', 'top1_acc', 'top5_acc', 'time', 'data_time'} <= set(train_records[0])
    assert train_records[0]['lr'] == pytest.approx(0.002)  # linear warmup from 0.1 x 0.02
    assert train_records[-1]['lr'] == pytest.approx(0.002)  # step policy: x0.1 after epoch 1
    val_records = json_records('wd', 'val')
    assert [r['epoch'] for r in val_records] == [1, 2]
    assert val_records[-1]['top1_acc'] == out['eval']['top1_acc']
    assert set(out['eval']) == {'top1_acc', 'top5_acc', 'mean_class_accuracy'}
    assert glob.glob('wd/tf_logs/events.out.tfevents.*')
    # checkpoints: every epoch, mid-epoch every 2 iterations, max_keep_ckpts=2 of each kind, best
    assert {'epoch_1', 'epoch_2', 'iter_2', 'iter_6'} <= files and 'iter_4' not in files
    assert len([n for n in files if n.startswith('best_top1_acc_epoch_')]) == 1
    assert int(out['state'].step) == 8
    # the final state is what epoch_2 holds
    from actionjax.engine.build import read_variables

    saved = read_variables('wd/epoch_2')['params']
    np.testing.assert_array_equal(saved['cls_head']['fc_cls']['kernel'],
                                  np.asarray(out['state'].params['cls_head']['fc_cls']['kernel']))


def test_a_second_launch_runs_the_stored_traces_and_trains_the_same(workspace, tmp_path):
    """The init, train and eval steps a launch traces are stored with the compiled programs;
    the next launch of the same config (in another work dir) loads them (the files are not
    written again) and trains to the same numbers, and a changed config traces its own."""
    cache = str(tmp_path / 'cache')
    traced = os.path.join(cache, 'traced')

    def launch(name: str, *args: str) -> tuple[list, dict]:
        run_module('actionjax.train', ['--config', TINY_CONFIG, '--work-dir', str(tmp_path / name), *args],
                   cwd=workspace, ACTIONJAX_CACHE_DIR=cache)
        losses = [r['loss'] for r in json_records(str(tmp_path / name))]
        return losses, {f: os.stat(os.path.join(traced, f)).st_mtime_ns for f in os.listdir(traced)}

    first, stored = launch('first')
    assert len(stored) == 3  # init, train step, eval step
    second, loaded = launch('second')
    assert loaded == stored, 'the second launch traced and stored its steps again'
    assert second == first
    # the seed reaches the stored init as an argument: same programs, other numbers
    reseeded, loaded = launch('other_seed', '--seed', '1')
    assert loaded == stored and reseeded[0] != first[0]
    other, more = launch('other_lr', '--cfg-options', 'optimizer.lr=0.05')
    assert len(more) == 6 and other[0] == first[0] and other[1:] != first[1:]


def mmaction2_1x_config(path: str) -> None:
    """The tiny run written with MMAction2 1.x / mmengine keys only (no 0.x key left)."""
    tiny = Config.fromfile(TINY_CONFIG)
    dataset = dict(type='VideoDataset', data_prefix=dict(video=tiny.data_root))
    cfg = Config(dict(
        model=tiny.model,
        train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=1, val_begin=1, val_interval=1),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
                           clip_grad=dict(max_norm=40, norm_type=2)),
        param_scheduler=[dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=3)],
        default_hooks=dict(logger=dict(type='LoggerHook', interval=2),
                           checkpoint=dict(type='CheckpointHook', interval=1, save_best='auto')),
        train_dataloader=dict(batch_size=4, num_workers=0, dataset=dict(
            dataset, ann_file=tiny.ann_file_train, pipeline=tiny.train_pipeline)),
        val_dataloader=dict(batch_size=4, num_workers=0, dataset=dict(
            dataset, ann_file=tiny.ann_file_val, pipeline=tiny.val_pipeline, test_mode=True)),
        val_evaluator=dict(type='AccMetric')))
    cfg.dump(path)


def test_mmaction2_1x_config_trains_through_the_same_path(workspace, monkeypatch):
    monkeypatch.chdir(workspace)
    mmaction2_1x_config('tiny_1x.py')
    out = train.main(['--config', 'tiny_1x.py', '--work-dir', 'wd_1x'])
    records = json_records('wd_1x')
    assert [r['iter'] for r in records] == [2, 4]  # default_hooks.logger.interval
    assert records[0]['lr'] == pytest.approx(0.011)  # mmengine's LinearLR(0.1, end=3) at iteration 1
    assert set(out['eval']) == {'top1_acc', 'top5_acc', 'mean_class_accuracy'}
    assert 'epoch_1' in os.listdir('wd_1x') and int(out['state'].step) == 4


def test_missing_kinetics_data_exits_with_how_to_prepare_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as err:
        train.main(['--config', os.path.join(REPO, 'configs', 'tsn.py'), '--work-dir', 'wd'])
    message = str(err.value)
    assert 'kinetics400' in message and 'python -m actionjax.train --config configs/tsn_demo.py' in message
    assert 'kinetics400' not in capsys.readouterr().err  # the exit prints it, once
    assert not os.path.exists('wd')  # failed before training: the work dir it made is gone


def test_a_misspelt_key_is_reported_with_the_key_it_resembles(caplog, capsys):
    from actionjax.runtime_config import load_config

    with caplog.at_level('WARNING', logger='actionjax'):
        cfg = load_config(TINY_CONFIG, {'total_epoch': 3})
    assert "did you mean 'total_epochs'?" in capsys.readouterr().err  # --cfg-options adds it, with a word
    assert "'total_epoch' is not read by actionjax; did you mean 'total_epochs'?" in caplog.text
    assert cfg.train_loop['max_epochs'] == 2  # the file's own total_epochs
