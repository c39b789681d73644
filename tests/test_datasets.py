"""Datasets: MMAction2 annotation formats, error messages, config lookup; check_videos."""

import json
import os

import numpy as np
import pytest

from actionjax.data import RawframeDataset, VideoDataset, build_dataset
from actionjax.data.datasets import RepeatDataset
from actionjax.data.synthetic import make_set
from actionjax.registry import DATASETS
from actionjax.tools import check_videos

IDENTITY = [lambda results: results]  # a pipeline that returns the annotation as it is


def write(path, text):
    path.write_text(text)
    return str(path)


@pytest.fixture(scope='module')
def videos(tmp_path_factory):
    """Six tiny real videos (4 classes) plus one truncated and one missing file in the list."""
    root = tmp_path_factory.mktemp('videos')
    make_set(str(root), 'appearance', num_train=6, num_val=0, size=32, num_frames=12)
    data = root / 'appearance'
    good = data / 'videos' / 'train' / '000001.mp4'
    (data / 'videos' / 'train' / 'truncated.mp4').write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with open(data / 'train_list.txt', 'a') as f:
        f.write('train/truncated.mp4 0\ntrain/missing.mp4 1\n')
    return data


def test_video_dataset_lines_prefix_and_start_index(tmp_path):
    ann = write(tmp_path / 'list.txt', 'a/x.mp4 3\n\nb/y.mp4 0\n')
    ds = VideoDataset(ann, IDENTITY, data_prefix=str(tmp_path))
    assert len(ds) == 2
    sample = ds[0]
    want = dict(filename=os.path.join(str(tmp_path), 'a/x.mp4'), label=3, modality='RGB', start_index=0)
    assert sample == want
    assert ds.sample_path(1).endswith('b/y.mp4')
    assert VideoDataset(ann, IDENTITY, start_index=1)[1]['start_index'] == 1
    assert VideoDataset(ann, IDENTITY)[0]['filename'] == 'a/x.mp4'  # no prefix: paths as written


def test_video_dataset_multi_label_is_one_hot(tmp_path):
    ann = write(tmp_path / 'list.txt', 'x.mp4 1 3\ny.mp4 0\n')
    ds = VideoDataset(ann, IDENTITY, multi_class=True, num_classes=5)
    assert ds.video_infos[0]['label'] == [1, 3]
    label = ds[0]['label']
    assert label.dtype == np.float32 and label.tolist() == [0, 1, 0, 1, 0]
    with pytest.raises(ValueError, match='num_classes'):
        VideoDataset(ann, IDENTITY, multi_class=True)
    with pytest.raises(ValueError, match=r'list.txt:1.*multi_class=True'):
        VideoDataset(ann, IDENTITY)


def test_mmaction2_1x_spellings(tmp_path):
    (tmp_path / 'vids').mkdir()
    write(tmp_path / 'list.txt', 'x.mp4,2\nunlabelled.mp4\n')
    ds = VideoDataset('list.txt', IDENTITY, data_root=str(tmp_path), data_prefix=dict(video='vids'),
                      delimiter=',')
    assert ds[0]['filename'] == os.path.join(str(tmp_path), 'vids', 'x.mp4') and ds[0]['label'] == 2
    assert ds[1]['label'] == -1  # 1.x: a list without labels is for inference


def test_json_annotations(tmp_path):
    ann = tmp_path / 'list.json'
    ann.write_text(json.dumps([{'filename': 'x.mp4', 'label': [2]}, {'filename': 'y.mp4', 'label': [0]}]))
    ds = VideoDataset(str(ann), IDENTITY, data_prefix=str(tmp_path))
    assert ds[0]['label'] == 2 and ds[1]['filename'] == os.path.join(str(tmp_path), 'y.mp4')


def test_rawframe_dataset(tmp_path):
    ann = write(tmp_path / 'list.txt', 'clip_a 120 4\nclip_b 80 1 7\n')
    ds = RawframeDataset(ann, IDENTITY, data_prefix=str(tmp_path), multi_class=True, num_classes=8,
                         filename_tmpl='{:06}.jpg')
    sample = ds[0]
    assert sample['frame_dir'] == os.path.join(str(tmp_path), 'clip_a') and sample['total_frames'] == 120
    assert sample['filename_tmpl'] == '{:06}.jpg' and sample['start_index'] == 1
    assert np.flatnonzero(ds[1]['label']).tolist() == [1, 7]
    offsets = RawframeDataset(write(tmp_path / 'off.txt', 'clip_a 12 100 3\n'), IDENTITY, with_offset=True)
    assert offsets[0]['offset'] == 12 and offsets[0]['total_frames'] == 100 and offsets[0]['label'] == 3
    default = RawframeDataset(write(tmp_path / 'two.txt', 'c 5 1\n'), IDENTITY)
    assert default[0]['filename_tmpl'] == 'img_{:05}.jpg'


def test_missing_files_name_the_path_and_config_key(tmp_path):
    cfg = dict(data=dict(train=dict(type='VideoDataset', ann_file=str(tmp_path / 'nope.txt'), pipeline=[])))
    with pytest.raises(FileNotFoundError, match=r"nope.txt.*config key 'data.train.ann_file'"):
        build_dataset(cfg)
    ann = write(tmp_path / 'list.txt', 'x.mp4 0\n')
    cfg['data']['train'].update(ann_file=ann, data_prefix=str(tmp_path / 'videos'))
    with pytest.raises(FileNotFoundError, match=r"videos.*config key 'data.train.data_prefix'"):
        build_dataset(cfg)
    one_x = dict(val_dataloader=dict(dataset=dict(type='VideoDataset', ann_file=ann, pipeline=[],
                                                  data_prefix=dict(video=str(tmp_path / 'gone')))))
    with pytest.raises(FileNotFoundError, match=r"config key 'val_dataloader.dataset.data_prefix.video'"):
        build_dataset(one_x, 'data.val')
    with pytest.raises(KeyError, match="'data.val'"):
        build_dataset(cfg, 'data.val')


def test_build_dataset_from_whole_config_or_dataset_config(tmp_path):
    ann = write(tmp_path / 'list.txt', 'x.mp4 1\ny.mp4 2\n')
    ds_cfg = dict(type='VideoDataset', ann_file=ann, pipeline=[dict(type='DecordInit')])
    ds = build_dataset(dict(data=dict(val=ds_cfg)), 'data.val', test_mode=True)
    assert isinstance(ds, VideoDataset) and ds.test_mode and len(ds) == 2
    assert build_dataset(ds_cfg).cfg_key == 'data.train'
    repeated = build_dataset(dict(type='RepeatDataset', times=3, dataset=ds_cfg))
    assert isinstance(repeated, RepeatDataset) and len(repeated) == 6
    assert repeated.sample_path(4) == 'x.mp4'
    assert 'SyntheticVideoDataset' in DATASETS and 'RawframeDataset' in DATASETS


@pytest.mark.parametrize('decoder', ['Decord', 'PyAV'])
def test_real_pipeline_and_check_videos(videos, decoder):
    pipeline = [dict(type=f'{decoder}Init'),
                dict(type='SampleFrames', clip_len=1, num_clips=4, test_mode=True),
                dict(type=f'{decoder}Decode'), dict(type='FormatShape', input_format='NCHW')]
    ds = VideoDataset(str(videos / 'train_list.txt'), pipeline, data_prefix=str(videos / 'videos'))
    sample = ds[0]
    assert sample['imgs'].shape == (4, 32, 32, 3) and sample['imgs'].dtype == np.uint8
    assert sample['label'] == int(open(videos / 'train_list.txt').readline().split()[1])

    assert check_videos.pipeline_decoder(ds) == decoder.lower()
    bad = check_videos.check_dataset(ds, num_workers=0)
    assert [os.path.basename(path) for path, _ in bad] == ['truncated.mp4', 'missing.mp4']
    assert bad[1][1] == 'file not found' and 'cannot' in bad[0][1]
    assert check_videos.check_video(ds.sample_path(0), full=True, decoder=decoder.lower()) is None


def test_check_videos_command(videos, tmp_path, capsys):
    cfg = tmp_path / 'cfg.py'
    ann, prefix = str(videos / 'train_list.txt'), str(videos / 'videos')
    cfg.write_text(f"data = dict(train=dict(type='VideoDataset', ann_file={ann!r}, data_prefix={prefix!r}, "
                   "pipeline=[]))\n")
    out = tmp_path / 'bad.txt'
    assert check_videos.main(['--config', str(cfg), '--num-workers', '2', '--out', str(out)]) == 1
    listed = [os.path.basename(line) for line in out.read_text().split()]
    assert listed == ['truncated.mp4', 'missing.mp4']
    assert 'truncated.mp4' in capsys.readouterr().out


def test_rawframes_decode_and_check(tmp_path):
    import cv2

    from actionjax.data.synthetic import render_clip

    clip = render_clip('appearance', 2, np.random.default_rng(0), size=32, num_frames=8)
    for name in ('clip_a', 'clip_b'):
        (tmp_path / name).mkdir()
        for i, frame in enumerate(clip, 1):
            cv2.imwrite(str(tmp_path / name / f'img_{i:05}.jpg'), frame[..., ::-1])
    (tmp_path / 'clip_b' / 'img_00008.jpg').unlink()  # a missing last frame
    pipeline = [dict(type='SampleFrames', clip_len=1, num_clips=4, test_mode=True),
                dict(type='RawFrameDecode'), dict(type='FormatShape', input_format='NCHW')]
    ds = RawframeDataset(write(tmp_path / 'list.txt', 'clip_a 8 2\nclip_b 8 2\n'), pipeline,
                         data_prefix=str(tmp_path))
    sample = ds[0]
    assert sample['imgs'].shape == (4, 32, 32, 3) and sample['label'] == 2
    assert np.abs(sample['imgs'][0].astype(int) - clip[1]).mean() < 8  # frame 2 (img_00002.jpg), JPEG-close
    bad = check_videos.check_dataset(ds, num_workers=0)
    assert [(os.path.basename(path), reason.split()[0]) for path, reason in bad] == [('clip_b', 'cannot')]
