"""PyAVInit/PyAVDecode: MMAction2's DecordDecode frames (golden), exact frames on B-frame streams."""

from __future__ import annotations

import os

import av
import numpy as np
import pytest

from actionjax.data.pipelines import Compose, PyAVDecode, PyAVInit, VideoReadError

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures', 'pipelines')
VIDEO = os.path.join(FIXTURES, 'tiny.mp4')
INDS = np.array([0, 7, 13, 39, 20, 20], dtype=np.int32)  # the indices of the golden DecordDecode frames
# MMAction2 1.2.0's PyAVDecode(mode='efficient') on tiny.mp4 (key frames every 12) at INDS returns these
# frames (found by matching its output against a sequential decode, in a venv with mmaction2 and av).
MMACTION2_EFFICIENT = [0, 0, 12, 36, 12, 12]


@pytest.fixture(scope='module')
def pixels():
    with np.load(os.path.join(FIXTURES, 'pixels.npz')) as data:
        return {k: data[k] for k in data.files}


def decode(path, frame_inds, mode='accurate', multi_thread=False):
    results = PyAVInit()(dict(filename=str(path), start_index=0))
    results['frame_inds'] = np.asarray(frame_inds, dtype=np.int32)
    return PyAVDecode(multi_thread=multi_thread, mode=mode)(results)


def test_frames_equal_mmaction2(pixels):
    results = PyAVInit()(dict(filename=VIDEO, start_index=0))
    assert results['total_frames'] == 40 and results['avg_fps'] == pytest.approx(25)
    results['frame_inds'] = INDS
    results = PyAVDecode()(results)
    np.testing.assert_array_equal(results['imgs'], pixels['decoded'])  # MMAction2's DecordDecode
    assert results['video_reader'] is None
    assert results['original_shape'] == results['img_shape'] == (48, 64)
    key_frames = decode(VIDEO, INDS, mode='efficient')['imgs']
    np.testing.assert_array_equal(key_frames, decode(VIDEO, MMACTION2_EFFICIENT)['imgs'])


def encode(path, codec, options, num_frames=48):
    """A small clip whose frames all differ, with B-frames (decode order != presentation order)."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    with av.open(str(path), 'w') as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt, stream.options = 64, 48, 'yuv420p', options
        for t in range(num_frames):
            frame = np.roll(base, 2 * t, axis=1)
            frame[:8, :8] = 4 * t  # a per-frame mark
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')))
        container.mux(stream.encode())


@pytest.mark.parametrize('codec,options', [
    ('mpeg4', {'bf': '2', 'g': '12'}),
    ('libx264', {'x264-params': 'keyint=15:open-gop=1:bframes=3:log-level=none'}),
])
def test_random_access_equals_sequential_decoding_with_b_frames(tmp_path, codec, options):
    if codec not in av.codecs_available:
        pytest.skip(f'this PyAV build has no {codec} encoder')
    path = tmp_path / f'{codec}.mp4'
    encode(path, codec, options)
    with av.open(str(path)) as container:  # MMAction2's PyAVDecode(mode='accurate'): the i-th decoded frame
        truth = np.stack([f.to_ndarray(format='rgb24') for f in container.decode(video=0)])
    assert len(truth) == 48
    results = PyAVInit()(dict(filename=str(path), start_index=0))
    video = results['video_reader']
    assert len(video.key_pos) > 2 and results['total_frames'] == 48
    assert any(video.key_frame_before(i) != i for i in video.key_pos)  # key frames move when reordered
    video.close()
    rng = np.random.default_rng(1)
    orders = [np.arange(48), np.arange(48)[::-1], rng.integers(0, 48, 16), np.sort(rng.integers(0, 48, 8))]
    for inds in orders:
        np.testing.assert_array_equal(decode(path, inds)['imgs'], truth[inds])
    np.testing.assert_array_equal(decode(path, orders[2], multi_thread=True)['imgs'], truth[orders[2]])
    video = PyAVInit()(dict(filename=str(path), start_index=0))['video_reader']  # reads in turn, as
    for inds in ([47], [0, 5, 24], [45, 46, 47], [3]):  # check_videos --full does: after the end too
        np.testing.assert_array_equal(video.read(np.array(inds), skip_unused=inds != [3]), truth[inds])
    video.close()
    key_of = [video.key_frame_before(i) for i in range(48)]
    assert len(set(key_of)) > 2
    np.testing.assert_array_equal(decode(path, np.arange(48), mode='efficient')['imgs'], truth[key_of])


def test_missing_truncated_and_misplaced(tmp_path):
    with pytest.raises(VideoReadError, match='not found'):
        PyAVInit()(dict(filename=str(tmp_path / 'missing.mp4')))
    truncated = tmp_path / 'truncated.mp4'
    data = open(VIDEO, 'rb').read()
    truncated.write_bytes(data[:len(data) // 3])
    pipe = Compose([dict(type='PyAVInit'), dict(type='SampleFrames', clip_len=1, num_clips=8, test_mode=True),
                    dict(type='PyAVDecode')])
    with pytest.raises(VideoReadError, match='truncated.mp4'):
        pipe(dict(filename=str(truncated), start_index=0))
    with pytest.raises(TypeError, match='put PyAVInit before it'):
        PyAVDecode()(dict(video_reader=None, frame_inds=INDS))
    with pytest.raises(ValueError, match="'accurate' or 'efficient'"):
        PyAVDecode(mode='fast')


def test_data_benchmark_switches_decoders_and_compares_their_frames(tmp_path):
    from actionjax.benchmarks.data import decoders_agree, with_decoder
    from actionjax.config import Config

    cfg = Config.fromfile(os.path.join(os.path.dirname(__file__), '..', 'configs', '_base_', 'datasets',
                                       'kinetics400_tsn_video.py'))
    pipeline = [dict(step) for step in cfg.data.train.pipeline]
    assert [s['type'] for s in pipeline[:3]] == ['PyAVInit', 'SampleFrames', 'PyAVDecode']
    as_decord = with_decoder(pipeline + [dict(type='DecordDecode', mode='efficient')], 'decord')
    decoders = [s['type'] for s in as_decord if 'Decord' in s['type']]
    assert decoders == ['DecordInit', 'DecordDecode', 'DecordDecode']
    assert as_decord[-1] == dict(type='DecordDecode', mode='efficient') and as_decord[3:-1] == pipeline[3:]
    ann = tmp_path / 'list.txt'
    ann.write_text('tiny.mp4 0\ntiny.mp4 1\n')
    assert decoders_agree(pipeline, str(ann), FIXTURES, num_videos=2)
