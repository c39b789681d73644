"""The grain loader: batch layout, reproducibility across worker counts, exact resume, bad files, workers."""

import itertools
import json
import logging
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from actionjax.data import VideoDataset, build_dataloader, loader_kwargs
from actionjax.data.loader import BatchPlan
from actionjax.data.synthetic import make_set

PIPELINE = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips=3),
    dict(type='DecordDecode'),
    dict(type='RandomCrop', size=24),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCHW'),
]
BAD = ('truncated.mp4', 'missing.mp4')


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """22 tiny real videos plus a truncated one and a missing one: 24 annotation lines."""
    root = tmp_path_factory.mktemp('loader')
    make_set(str(root), 'motion', num_train=22, num_val=0, size=32, num_frames=12)
    data = root / 'motion'
    good = data / 'videos' / 'train' / '000000.mp4'
    (data / 'videos' / 'train' / 'truncated.mp4').write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    lines = (data / 'train_list.txt').read_text().splitlines()
    lines[5:5] = ['train/truncated.mp4 0']
    lines[17:17] = ['train/missing.mp4 1']
    (data / 'train_list.txt').write_text('\n'.join(lines) + '\n')
    return data


def dataset(data, test_mode=False, dataset_type=VideoDataset, **extra):
    return dataset_type(str(data / 'train_list.txt'), PIPELINE, data_prefix=str(data / 'videos'),
                        test_mode=test_mode, **extra)


def train_loader(data, num_workers=0, source=None, **kwargs):
    """The training loader over ``source`` (default: ``dataset(data)``)."""
    defaults = dict(batch_size=4, shuffle=True, seed=0, drop_last=True, shard_index=0, shard_count=1)
    kwargs = dict(defaults, **kwargs)
    return build_dataloader(source or dataset(data), num_workers=num_workers, **kwargs)


def assert_same_batches(got, want):
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.fixture(scope='module')
def reference(data):
    """Two epochs read in this process (0 workers), with the report of each epoch."""
    with train_loader(data) as loader:
        epoch0 = list(loader)
        report0 = loader.last_report
        epoch1 = list(loader)
    return epoch0, report0, epoch1


def test_batch_plan_shards_and_padding():
    train = BatchPlan(num_samples=10, batch_size=3, shuffle=True, seed=1, drop_last=True)
    assert len(train) == 3 and sorted(train.order(0)) == list(range(10))
    assert not np.array_equal(train.order(0), train.order(1))  # a new order every epoch
    seen = []
    for shard in range(2):
        plan = BatchPlan(10, 2, shuffle=False, seed=0, drop_last=False, shard_index=shard, shard_count=2)
        assert len(plan) == 3  # both processes run the same number of batches
        seen += [i for k in range(len(plan)) for i in plan.batch_indices(plan.order(0), k)]
    assert sorted(i for i in seen if i >= 0) == list(range(10)) and seen.count(-1) == 2


def test_batches_are_fixed_shape_uint8_and_reproducible(data, reference):
    epoch0, _, epoch1 = reference
    assert len(epoch0) == 6 and len(epoch1) == 6
    for batch in epoch0:
        assert batch['imgs'].shape == (4, 3, 24, 24, 3) and batch['imgs'].dtype == np.uint8
        assert batch['label'].dtype == np.int32 and batch['valid'].all()
    assert sorted(np.concatenate([b['index'] for b in epoch0])) == list(range(24))
    assert not np.array_equal(epoch0[0]['index'], epoch1[0]['index'])
    with train_loader(data) as again:
        assert_same_batches(list(again), epoch0)


def test_bad_files_are_replaced_logged_once_and_reported(data, reference, caplog):
    _, report, _ = reference
    assert report['replaced'] == 2 and report['worker_restarts'] == 0
    assert sorted(os.path.basename(p) for p in report['bad_files']) == sorted(BAD)
    with caplog.at_level(logging.WARNING, logger='actionjax'), train_loader(data) as loader:
        list(loader)
        list(loader)
        assert loader.last_report['replaced'] == len(loader.last_report['bad_files']) == 2  # every epoch
    per_file = [r.getMessage() for r in caplog.records if 'cannot load sample' in r.getMessage()]
    logged = sorted(os.path.basename(m.split('(')[1].split(')')[0]) for m in per_file)
    assert logged == sorted(BAD)  # ... and logged once
    assert any('Epoch [2]: 2 samples replaced, 2 unreadable files' in r.getMessage() for r in caplog.records)


def test_pyav_pipeline_gives_the_same_batches_and_the_same_report(data, reference):
    epoch0, report0, _ = reference
    pyav = [dict(step, type=step['type'].replace('Decord', 'PyAV')) for step in PIPELINE]
    loader_cfg = dict(batch_size=4, shuffle=True, seed=0, drop_last=True, shard_index=0, shard_count=1)
    dataset = VideoDataset(str(data / 'train_list.txt'), pyav, data_prefix=str(data / 'videos'))
    with build_dataloader(dataset, num_workers=0, **loader_cfg) as loader:
        assert_same_batches(list(loader), epoch0)
        assert loader.last_report['replaced'] == report0['replaced'] == 2
        assert sorted(loader.last_report['bad_files']) == sorted(report0['bad_files'])


def test_eval_counts_every_sample_once_and_masks_bad_files(data):
    eval_set = dataset(data, test_mode=True)
    with build_dataloader(eval_set, batch_size=5, shard_index=0, shard_count=1) as loader:
        batches = list(loader)
    assert len(batches) == 5 and all(b['imgs'].shape[0] == 5 for b in batches)
    index = np.concatenate([b['index'] for b in batches])
    valid = np.concatenate([b['valid'] for b in batches])
    assert sorted(index[index >= 0]) == list(range(24)) and (index == -1).sum() == 1  # one padding row
    paths = [os.path.basename(loader.dataset.sample_path(i)) if i >= 0 else None for i in index]
    assert [p for p, v in zip(paths, valid, strict=True) if not v] == [BAD[0], BAD[1], None]
    assert loader.last_report['replaced'] == 2


def test_resume_mid_epoch_is_exact(data, reference):
    epoch0, report0, epoch1 = reference
    with train_loader(data) as first:
        taken = list(itertools.islice(first, 4))
        state = json.loads(json.dumps(first.get_state(pending=1)))  # 4 read, 3 trained on
    assert_same_batches(taken, epoch0[:4])
    assert (state['epoch'], state['next_batch']) == (0, 3)
    with train_loader(data) as resumed:
        resumed.set_state(state)
        assert_same_batches(list(resumed), epoch0[3:])
        assert resumed.last_report == report0  # counts from before the interruption are kept
        assert resumed.epoch == 1 and resumed.get_state()['next_batch'] == 0
        assert_same_batches(list(resumed), epoch1)
        resumed.set_epoch(1)
        assert_same_batches([next(iter(resumed))], epoch1[:1])
    with train_loader(data, batch_size=3) as other, pytest.raises(ValueError, match='batch_size=4'):
        other.set_state(state)


def test_workers_give_the_same_batches_and_report(data, reference):
    epoch0, report0, epoch1 = reference
    with train_loader(data, num_workers=2) as loader:
        assert len(loader) == 6
        assert_same_batches(list(loader), epoch0)
        assert loader.last_report == report0  # failures travel from the workers with the batches
        assert_same_batches([next(iter(loader))], epoch1[:1])  # the next epoch continues seamlessly


class MarkingDataset(VideoDataset):
    """Touches ``marker`` whenever it prepares a sample: shows when the workers began."""

    def __init__(self, *args, marker, **kwargs):
        super().__init__(*args, **kwargs)
        self.marker = marker

    def prepare(self, index, rng):
        open(self.marker, 'a').close()
        return super().prepare(index, rng)


def test_start_prefetch_starts_the_workers_before_the_first_batch(data, reference, tmp_path):
    epoch0, _, _ = reference
    marker = tmp_path / 'prepared'
    marking = dataset(data, dataset_type=MarkingDataset, marker=str(marker))
    with train_loader(data, num_workers=2, source=marking) as loader:
        loader.start_prefetch()
        loader.start_prefetch()  # idempotent
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), 'no worker prepared a sample before the first batch was asked for'
        assert_same_batches(list(loader), epoch0)
    with train_loader(data) as loader:
        loader.start_prefetch()  # no workers: nothing to start, the same batches
        assert_same_batches(list(loader), epoch0)


KILL_SCRIPT = '''
import json, multiprocessing, os, sys
import numpy as np
sys.path.insert(0, {tests!r})
from test_loader import train_loader
from pathlib import Path

if __name__ == '__main__':
    # batches of 2 and prefetch=1: the workers cannot have read the whole epoch ahead
    with train_loader(Path({data!r}), num_workers=2, batch_size=2, prefetch=1) as loader:
        batches = []
        for batch in loader:
            batches.append(batch)
            if len(batches) == 2:
                worker = [p for p in multiprocessing.active_children() if p.name.startswith('grain')][0]
                os.kill(worker.pid, 9)
        report = loader.last_report
    print(json.dumps(dict(index=[b['index'].tolist() for b in batches],
                          imgs=[int(b['imgs'].astype(np.int64).sum()) for b in batches], report=report)))
'''


def test_the_data_package_does_not_import_the_models():
    """Each loader worker imports the data package; the models (flax and every backbone) would
    cost each worker a second of CPU, taken from the model's start on a 2-core machine."""
    code = 'import sys, actionjax.data; print(sorted({"flax", "actionjax.models"} & set(sys.modules)))'
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == '[]', out.stdout + out.stderr


def test_killed_worker_loses_no_sample_and_shutdown_is_clean(data, reference, tmp_path):
    _, report0, _ = reference
    with train_loader(data, batch_size=2) as in_process:
        epoch0 = list(in_process)
    script = tmp_path / 'kill.py'
    script.write_text(KILL_SCRIPT.format(tests=os.path.dirname(os.path.abspath(__file__)), data=str(data)))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out['index'] == [b['index'].tolist() for b in epoch0]  # every batch, in order, none skipped
    assert out['imgs'] == [int(b['imgs'].astype(np.int64).sum()) for b in epoch0]
    assert out['report']['worker_restarts'] == 1
    assert out['report']['replaced'] == report0['replaced']
    assert 'a data loader worker died' in proc.stderr and 'restarting the workers' in proc.stderr
    assert 'Traceback' not in proc.stderr and 'leaked' not in proc.stderr, proc.stderr


def test_loader_kwargs_from_configs():
    cfg = dict(seed=3, data=dict(videos_per_gpu=8, workers_per_gpu=2, val_dataloader=dict(videos_per_gpu=1),
                                 train=dict(type='VideoDataset'), val=dict(type='VideoDataset')))
    assert loader_kwargs(cfg, 'train', num_devices=2) == dict(batch_size=16, num_workers=2, shuffle=True,
                                                              drop_last=True, seed=3)
    assert loader_kwargs(cfg, 'val')['batch_size'] == 1 and not loader_kwargs(cfg, 'val')['drop_last']
    one_x = dict(val_dataloader=dict(batch_size=4, num_workers=1, dataset={}))
    want = dict(batch_size=4, num_workers=1, shuffle=False, drop_last=False, seed=0)
    assert loader_kwargs(one_x, 'val') == want


def test_too_few_samples_for_a_batch(data):
    with pytest.raises(ValueError, match='no full batch'):
        train_loader(data, batch_size=32)
