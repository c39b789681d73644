"""Python API: init_recognizer (config path or dict, checkpoint or not), logits/scores, inference."""

import copy

import jax
import numpy as np
import pytest

from actionjax.apis import LoadedRecognizer, inference_recognizer, init_recognizer
from actionjax.data.pipelines import Compose
from actionjax.data.synthetic import write_video
from actionjax.models.checkpoint_io import load_variables, save_variables

MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


TEST_PIPELINE = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips=3, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 40)),
    dict(type='CenterCrop', crop_size=32),
    dict(type='Normalize', mean=MEAN, std=STD, to_bgr=False),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='Collect', keys=['imgs', 'label'], meta_keys=[]),
    dict(type='ToTensor', keys=['imgs']),
]
CFG = dict(
    model=dict(type='Recognizer2D',
               backbone=dict(type='ResNet', depth=18, num_stages=1, out_indices=(0,), strides=(1,),
                             dilations=(1,)),
               cls_head=dict(type='TSNHead', num_classes=6, in_channels=64, init_std=0.5),
               test_cfg=dict(average_clips=None)),
    data=dict(test=dict(type='VideoDataset', ann_file='unused.txt', data_prefix='', pipeline=TEST_PIPELINE)),
)


@pytest.fixture(scope='module')
def recognizer():
    return init_recognizer(CFG, seed=3)


@pytest.fixture(scope='module')
def video(tmp_path_factory):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (12, 48, 64, 3), dtype=np.uint8)
    path = str(tmp_path_factory.mktemp('video') / 'clip.mp4')
    write_video(path, frames)
    return path


def normalised(imgs):
    return (np.asarray(imgs, np.float32) - np.float32(MEAN)) / np.float32(STD)


def test_logits_and_scores(recognizer):
    assert isinstance(recognizer, LoadedRecognizer)
    imgs = np.random.default_rng(1).integers(0, 256, (2, 3, 32, 32, 3), dtype=np.uint8)
    logits = recognizer.logits(normalised(imgs))
    assert logits.shape == (2, 6) and logits.dtype == np.float32
    np.testing.assert_allclose(recognizer.scores(normalised(imgs)), jax.nn.softmax(logits), rtol=1e-5)
    # predict normalises on the device; with average_clips=None TSN's test output is its logits
    np.testing.assert_allclose(recognizer.predict(imgs), logits, rtol=1e-4, atol=1e-5)


def test_checkpoint_round_trip(recognizer, tmp_path):
    variables = jax.tree_util.tree_map(lambda x: np.asarray(x) * 1.5, recognizer.variables)
    path = save_variables(tmp_path / 'ckpt', variables)
    with pytest.raises(FileExistsError):
        save_variables(path, variables)
    config_file = tmp_path / 'tiny.py'
    config_file.write_text(f'model = {CFG["model"]!r}\ndata = {CFG["data"]!r}\n')
    loaded = init_recognizer(str(config_file), path)
    for a, b in zip(jax.tree_util.tree_leaves(loaded.variables), jax.tree_util.tree_leaves(variables),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    assert set(load_variables(path)) == {'params', 'batch_stats'}


def test_checkpoint_for_another_model_is_refused(recognizer, tmp_path):
    path = save_variables(tmp_path / 'ckpt', recognizer.variables)
    other = copy.deepcopy(CFG)
    other['model']['cls_head']['num_classes'] = 7
    with pytest.raises(ValueError, match=r'mis-shaped \(2\): cls_head.fc_cls.bias \(params\)'):
        init_recognizer(other, path)
    with pytest.raises(FileNotFoundError, match='convert.mmaction2'):
        init_recognizer(CFG, tmp_path / 'missing')


def test_inference_recognizer_on_a_video(recognizer, video):
    result = inference_recognizer(recognizer, video)
    assert len(result) == 5 and all(isinstance(i, int) and isinstance(s, float) for i, s in result)
    assert [s for _, s in result] == sorted((s for _, s in result), reverse=True)
    results = Compose(TEST_PIPELINE)(dict(filename=video, label=-1, start_index=0, modality='RGB'))
    assert results['imgs'].shape == (3, 32, 32, 3) and results['imgs'].dtype == np.uint8
    scores = recognizer.predict(results['imgs'][None])[0]
    assert result[0] == (int(np.argmax(scores)), pytest.approx(float(scores.max()), rel=1e-6))
    # a rawframes config decodes a video file with PyAV, like MMAction2 0.x's OpenCV swap
    rawframes = copy.deepcopy(CFG)
    rawframes['data']['test']['pipeline'] = [s for s in TEST_PIPELINE if s['type'] != 'DecordInit']
    rawframes['data']['test']['pipeline'][1] = dict(type='RawFrameDecode')
    as_rawframes = LoadedRecognizer(rawframes, recognizer.model, recognizer.variables)
    assert inference_recognizer(as_rawframes, video, topk=2) == result[:2]
