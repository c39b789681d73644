"""What a new user runs into (issue 11): broken videos, damaged checkpoints, errors, MMAction2 habits.

One tiny training run (the tiny TSN on the tiny synthetic set, one epoch) has its first,
middle and last videos truncated in the train and val sets (the val set is also the test
set); the other tests reuse its work dir. Everything runs in-process, so the whole file
costs about three compilations of the tiny model.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
import subprocess

import numpy as np
import pytest
from engine_utils import NUM_TRAIN, NUM_VAL, REPO, TINY_CONFIG, json_records, tiny_workspace

from actionjax import benchmark, demo, test, train
from actionjax.config import Config
from actionjax.data import build_dataset
from actionjax.data.loader import DataError
from actionjax.engine import build
from actionjax.engine.checkpoint import CheckpointError, find_resumable, read_state
from actionjax.runtime_config import to_runtime_config

BAD = [0, NUM_VAL // 2, NUM_VAL - 1]  # first, middle and last video of a split
BAD_TRAIN = [0, NUM_TRAIN // 2, NUM_TRAIN - 1]
ONE_EPOCH = ['--cfg-options', 'total_epochs=1']  # tiny_tsn: 4 iterations, iter_2 and epoch_1 saved


def _video(split: str, index: int) -> str:
    return os.path.join('tiny_synthetic', 'appearance', 'videos', split, f'{index:06d}.mp4')


def _truncate(path: str, keep: float = 1 / 3) -> None:
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:int(len(data) * keep)])


def _labels(split: str) -> list[int]:
    with open(os.path.join('tiny_synthetic', 'appearance', f'{split}_list.txt')) as f:
        return [int(line.split()[1]) for line in f]


def _log_text(work_dir: str) -> str:
    return ''.join(open(p).read() for p in sorted(glob.glob(os.path.join(work_dir, '*.log'))))


def _truncate_data_files(checkpoint: str) -> None:
    """Cut every data file of the checkpoint's state: orbax spreads params and optimizer state over
    several files, in an order that varies from run to run, so damaging one file may spare the
    params."""
    for path in glob.glob(os.path.join(checkpoint, 'state', 'ocdbt.process_0', 'd', '*')):
        _truncate(path, keep=0.1)


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    """(workspace, work dir, train.main's result, the run's log lines) of one epoch on broken data."""
    root = tiny_workspace(str(tmp_path_factory.mktemp('reliability')))
    cwd = os.getcwd()
    os.chdir(root)
    try:
        for index in BAD_TRAIN:
            _truncate(_video('train', index))
        for index in BAD:
            _truncate(_video('val', index))
        out = train.main([TINY_CONFIG, '--validate', '--work-dir', 'wd', *ONE_EPOCH])
        yield root, os.path.join(root, 'wd'), out, _messages('wd')
    finally:
        os.chdir(cwd)


def _messages(work_dir: str) -> list[str]:
    """The messages of a work dir's text logs (the part after 'actionjax - LEVEL - ')."""
    lines = _log_text(work_dir).splitlines()
    return [line.split(' - ', 3)[-1] for line in lines if ' - actionjax - ' in line]


# --------------------------------------------------------------------------- data faults

def test_training_with_unreadable_first_middle_and_last_videos_finishes(run):
    root, work_dir, out, messages = run
    assert int(out['state'].step) == 4  # one epoch of 16 videos, 4 per batch
    # the shape probe skipped the unreadable first training video
    assert any(m.startswith('input shape taken from sample 1; skipped unreadable: ' + _video('train', 0))
               for m in messages)
    # bad training files are replaced, counted per epoch as the log counts epochs
    assert any(m.startswith('Epoch [1]: cannot load sample') for m in messages)
    assert any(m.startswith('Epoch [1]: 3 samples replaced, 3 unreadable files') for m in messages)
    assert not any('epoch 0' in m for m in messages)
    # validation scores the 7 readable videos and lists the 3 others with their count
    shown = ', '.join(_video('val', i) for i in BAD)
    assert (f'validation: 3 unreadable sample(s) not scored, the metrics cover the other {NUM_VAL - 3}: '
            f'{shown}') in messages
    assert set(out['eval']) == {'top1_acc', 'top5_acc', 'mean_class_accuracy'}
    assert json_records(work_dir, 'val')[-1]['top1_acc'] == out['eval']['top1_acc']


def test_test_scores_every_readable_video_and_reports_the_others(run, capsys):
    root, work_dir, _, _ = run
    os.chdir(root)
    results = test.main([TINY_CONFIG, 'wd/latest', '--eval', 'top_k_accuracy', '--out', 'out/result.json'])
    printed = capsys.readouterr().out
    with open('out/result.json') as f:
        saved = json.load(f)
    readable = [i for i in range(NUM_VAL) if i not in BAD]
    assert saved['num_unreadable'] == 3 and saved['unreadable'] == [_video('val', i) for i in BAD]
    assert saved['num_videos'] == len(readable)
    assert saved['labels'] == [_labels('val')[i] for i in readable]
    # the metrics are those of the readable videos' scores
    scores, labels = np.asarray(saved['scores']), np.asarray(saved['labels'])
    assert results['top1_acc'] == pytest.approx(np.mean(scores.argmax(1) == labels))
    assert f'3 unreadable sample(s) not scored (the metrics cover the other {len(readable)}): ' in printed


def test_the_shape_probe_skips_unreadable_samples_and_names_a_pipeline_bug(run, caplog):
    root, _, _, _ = run
    os.chdir(root)
    cfg = to_runtime_config(Config.fromfile(TINY_CONFIG))
    dataset = build_dataset(cfg, 'data.val', test_mode=True)
    with caplog.at_level(logging.WARNING, logger='actionjax'):
        sample = build.sample_batch(dataset)
    assert sample['imgs'].shape == (1, 2, 16, 16, 3)
    assert f'input shape taken from sample 1; skipped unreadable: {_video("val", 0)}' in caplog.text
    with pytest.raises(DataError, match='none of the first 1 samples'):
        build.sample_batch(dataset, tries=1)  # only the broken first video: a data problem, one line

    class Buggy:  # a user's pipeline step with a bug raises on every sample: that is no data problem
        def __len__(self) -> int:
            return 3

        def __getitem__(self, index: int) -> dict:
            return {'smal': 1}['small']

    with pytest.raises(KeyError, match='small'):
        build.sample_batch(Buggy())


# --------------------------------------------------------------------------- checkpoint faults

def _copy_run(run, name: str) -> str:
    root, work_dir, _, _ = run
    copy = os.path.join(root, name)
    shutil.copytree(work_dir, copy)
    return copy


def test_a_damaged_checkpoint_is_one_line_naming_folder_and_damage(run, capsys):
    root, _, _, _ = run
    os.chdir(root)
    work_dir = _copy_run(run, 'damaged')
    _truncate_data_files(os.path.join(work_dir, 'epoch_1'))
    with pytest.raises(SystemExit) as err:
        test.main([TINY_CONFIG, os.path.join(work_dir, 'epoch_1')])
    message = str(err.value)
    assert message.startswith(f'error: checkpoint {os.path.join(work_dir, "epoch_1")} is damaged: '
                              'a data file under state/ is truncated (reading ')
    assert '\n' not in message and 'Traceback' not in capsys.readouterr().err
    shutil.rmtree(os.path.join(work_dir, 'iter_2', 'meta'))
    with pytest.raises(CheckpointError, match=r'iter_2 is damaged: its meta/ folder is missing'):
        from actionjax.engine.checkpoint import read_meta

        read_meta(os.path.join(work_dir, 'iter_2'))


def test_auto_resume_passes_over_a_damaged_newest_checkpoint(run):
    root, _, _, _ = run
    os.chdir(root)
    work_dir = _copy_run(run, 'fallback')
    newest = os.path.join(work_dir, 'epoch_1')
    _truncate_data_files(newest)
    assert find_resumable(work_dir)[0] == os.path.join(work_dir, 'iter_2')
    out = train.main([TINY_CONFIG, '--work-dir', work_dir, '--auto-resume', '--no-validate', *ONE_EPOCH])
    messages = _messages(work_dir)
    assert any(m.startswith(f'--auto-resume: checkpoint {newest} is damaged: a data file under state/ is '
                            'truncated') and m.endswith('passing over it (nothing is deleted: it stays until '
                                                        'this run saves epoch_1 again)')
               for m in messages)
    assert (f'--auto-resume: resuming from {work_dir}/iter_2 (the newest intact checkpoint), iteration 2'
            in messages)
    assert int(out['state'].step) == 4  # iterations 3 and 4 trained again; epoch_1 rewritten whole
    read_state(newest)


def test_auto_resume_on_a_finished_run_says_so_and_trains_nothing(run):
    root, work_dir, _, _ = run
    os.chdir(root)
    checkpoints = sorted(n for n in os.listdir(work_dir) if not n.endswith(('.log', '.json')))
    out = train.main([TINY_CONFIG, '--work-dir', 'wd', '--auto-resume', *ONE_EPOCH])
    assert out == {'state': None, 'eval': None, 'finished': 'wd/epoch_1'}
    assert any(m.startswith('--auto-resume: the run in wd already finished (wd/epoch_1 is epoch 1 of 1); '
                            'nothing to train') for m in _messages('wd'))
    assert sorted(n for n in os.listdir(work_dir) if not n.endswith(('.log', '.json'))) == checkpoints


def test_inference_reads_only_parameters_and_batch_statistics(run, capsys):
    """The optimizer state of this copy cannot be read (its entries point at arrays that do
    not exist): test, demo and init_recognizer still work; resuming from it does not."""
    root, _, _, _ = run
    os.chdir(root)
    checkpoint = os.path.join(_copy_run(run, 'no_optimizer_state'), 'epoch_1')
    metadata_file = os.path.join(checkpoint, 'state', '_METADATA')
    with open(metadata_file) as f:
        metadata = json.load(f)
    for entry in metadata['tree_metadata'].values():
        if entry['key_metadata'][0]['key'] == 'opt_state' and entry['value_metadata']['value_type'] != 'None':
            entry['key_metadata'][-1]['key'] += '_lost'
    with open(metadata_file, 'w') as f:
        json.dump(metadata, f)
    with pytest.raises(CheckpointError, match='no_optimizer_state/epoch_1 is damaged'):
        read_state(checkpoint)
    assert set(test.main([TINY_CONFIG, checkpoint])) == {'top1_acc', 'top5_acc', 'mean_class_accuracy'}
    # MMAction2's demo/demo.py order; class names from the synthetic set's classes.txt
    top = demo.main([TINY_CONFIG, checkpoint, _video('val', 1)])
    with open(os.path.join('tiny_synthetic', 'appearance', 'classes.txt')) as f:
        classes = f.read().split()
    assert [name for name, _ in top] and all(name in classes for name, _ in top)
    printed = capsys.readouterr().out.splitlines()
    assert printed[-len(top) - 1] == 'The top-4 labels with corresponding scores are:'


# --------------------------------------------------------------------------- errors

def _config(path: str, body: str) -> str:
    """A config file that starts from the tiny TSN and adds ``body``."""
    with open(path, 'w') as f:
        f.write(f'_base_ = [{TINY_CONFIG!r}]\n{body}')
    return path


def test_a_config_error_is_one_line_and_leaves_no_empty_work_dir(run, capsys):
    root, _, _, _ = run
    os.chdir(root)
    config = _config('no_lr.py', "optimizer = dict(type='SGD', momentum=0.9, _delete_=True)\n")
    with pytest.raises(SystemExit) as err:
        train.main([config, '--work-dir', 'new_wd'])
    assert str(err.value).startswith('error: an lr schedule (lr_config / param_scheduler) needs optimizer.lr')
    assert 'Traceback' not in capsys.readouterr().err
    assert not os.path.exists('new_wd')  # created by this run, held only its log and config copy
    os.makedirs('old_wd')
    with pytest.raises(SystemExit):
        train.main([config, '--work-dir', 'old_wd'])
    log = _log_text('old_wd')  # a work dir the run did not create stays, with the traceback logged
    assert 'ERROR - an lr schedule (lr_config / param_scheduler) needs optimizer.lr' in log
    assert 'Traceback (most recent call last)' in log


def test_an_exception_from_user_code_keeps_its_traceback(run, monkeypatch):
    root, _, _, _ = run
    os.chdir(root)
    monkeypatch.syspath_prepend(root)
    with open('my_backbones.py', 'w') as f:
        f.write('import flax.linen as nn\n'
                'from actionjax.registry import BACKBONES\n\n\n'
                '@BACKBONES.register_module(force=True)\n'
                'class TypoNet(nn.Module):\n'
                "    arch: str = 'small'\n\n"
                '    @nn.compact\n'
                '    def __call__(self, x, train=False):\n'
                "        width = {'small': 8}[self.arch + '_']  # the user's typo\n"
                '        return nn.Dense(width)(x)\n')
    config = _config('typo.py', "custom_imports = dict(imports=['my_backbones'])\n"
                                "model = dict(backbone=dict(type='TypoNet', _delete_=True))\n")
    with pytest.raises(KeyError, match='small_'):  # the exception itself, with its traceback
        train.main([config, '--work-dir', 'typo_wd'])
    log = _log_text('typo_wd')  # kept: its log holds the traceback
    assert "ERROR - KeyError: 'small_'" in log and 'my_backbones.py' in log


def test_a_key_nothing_reads_is_reported_with_the_key_it_resembles(tmp_path, caplog):
    config = _config(str(tmp_path / 'typos.py'),
                     "lr_confg = dict(policy='step', step=[1])\ntotal_epoch = 1\n")
    with caplog.at_level(logging.WARNING, logger='actionjax'):
        cfg = to_runtime_config(Config.fromfile(config))
    assert "'lr_confg' is not read by actionjax; did you mean 'lr_config'?" in caplog.text
    assert "'total_epoch' is not read by actionjax; did you mean 'total_epochs'?" in caplog.text
    assert cfg.train_loop['max_epochs'] == 2


# --------------------------------------------------------------------------- habits, feedback

def test_mmaction2_command_lines_parse_as_mmaction2_users_type_them():
    args = train.parse_args(['cfg.py', '--validate', '--work-dir', 'wd'])
    assert (args.config, args.work_dir, args.no_validate) == ('cfg.py', 'wd', False)
    assert train.parse_args(['--config', 'cfg.py']).config == 'cfg.py'
    args = test.parse_args(['cfg.py', 'ckpt', '--eval', 'top_k_accuracy', '--out', 'r.json'])
    assert (args.config, args.checkpoint, args.eval) == ('cfg.py', 'ckpt', ['top_k_accuracy'])
    assert args.out == 'r.json'
    assert test.parse_args(['--config', 'c.py', '--checkpoint', 'k']).checkpoint == 'k'
    args = demo.parse_args(['cfg.py', 'ckpt', 'v.mp4', 'labels.txt'])
    assert (args.config, args.checkpoint) == ('cfg.py', 'ckpt')
    assert (args.video, args.label_map) == ('v.mp4', 'labels.txt')
    args = demo.parse_args(['v.mp4', '--config', 'c.py', '--checkpoint', 'k'])
    assert (args.config, args.checkpoint, args.video, args.label_map) == ('c.py', 'k', 'v.mp4', None)
    incomplete = ((train.parse_args, []), (test.parse_args, ['cfg.py']), (demo.parse_args, ['c.py', 'k']))
    for parse, argv in incomplete:
        with pytest.raises(SystemExit):
            parse(argv)


def test_benchmark_help_works_without_a_mode(capsys):
    with pytest.raises(SystemExit) as exit_:
        benchmark.main(['--help'])
    assert exit_.value.code == 0 and '--what MODE --help' in capsys.readouterr().out


def test_the_run_says_what_it_does_and_ends_with_a_summary(run):
    _, work_dir, _, messages = run
    for line in ('building the datasets and data loaders',
                 'building the model and initialising its variables',
                 'compiling the train step (the first iteration waits for it)'):
        assert line in messages
    compiled = next(m for m in messages if m.startswith('train step compiled in '))
    compile_s = float(compiled.split()[4])
    first = json_records(work_dir)[0]
    assert first['time'] < compile_s  # compilation is not iteration time, nor in the ETA
    summary = [m for m in messages if m.startswith('run finished after 4 iterations in 0:')]
    assert len(summary) == 1
    assert ' at epoch 1: wd/best_top1_acc_epoch_1; last checkpoint: wd/epoch_1' in summary[0]


def test_evaluation_and_test_report_progress(run, monkeypatch):
    root, _, _, _ = run
    os.chdir(root)
    from actionjax.engine import logger as logger_module

    bars = []

    class Bar:
        def __init__(self, desc, total, initial=0):
            self.desc, self.total, self.n = desc, total, initial
            bars.append(self)

        def update(self, n=1):
            self.n += n

        def set_postfix(self, **kwargs):
            pass

        def close(self):
            pass

    monkeypatch.setattr(logger_module, 'progress_bar', Bar)
    test.main([TINY_CONFIG, 'wd/epoch_1'])
    assert [(b.desc, b.total, b.n) for b in bars] == [('test', 4, 4)]  # 10 videos in batches of 3


def test_no_machine_paths_in_the_repository():
    tracked = subprocess.run(['git', 'ls-files'], cwd=REPO, capture_output=True, text=True).stdout.split()
    offenders = []
    for name in tracked:
        path = os.path.join(REPO, name)
        if not name.endswith(('.py', '.md', '.toml', '.txt', '.cfg', '.sh')) or not os.path.isfile(path):
            continue
        with open(path, errors='replace') as f:
            if '/work/' + 'ref' in f.read():  # the reference venvs of one developer machine
                offenders.append(name)
    assert offenders == []
