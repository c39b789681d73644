"""Pipelines against MMAction2's own transforms (golden files in tests/fixtures/pipelines)."""

from __future__ import annotations

import json
import os
import shutil

import cv2
import numpy as np
import pytest

from actionjax.data.pipelines import (
    Collect,
    ColorJitter,
    Compose,
    DecordDecode,
    DecordInit,
    Flip,
    FormatShape,
    MultiScaleCrop,
    Normalize,
    PackActionInputs,
    RandomCrop,
    RandomRescale,
    RandomResizedCrop,
    RawFrameDecode,
    Resize,
    ToTensor,
    VideoReadError,
    color_jitter,
)
from actionjax.registry import PIPELINES, RegistryError

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures', 'pipelines')
VIDEO = os.path.join(FIXTURES, 'tiny.mp4')
RANDOM_STEPS = {'MultiScaleCrop', 'RandomResizedCrop'}  # their output size is a random draw


def untuple(cfg):
    """Configs in the golden files mark tuples as {'__tuple__': [...]} (JSON has only lists)."""
    if isinstance(cfg, dict):
        if set(cfg) == {'__tuple__'}:
            return tuple(untuple(v) for v in cfg['__tuple__'])
        return {k: untuple(v) for k, v in cfg.items()}
    if isinstance(cfg, list):
        return [untuple(v) for v in cfg]
    return cfg


@pytest.fixture(scope='module')
def pixels():
    with np.load(os.path.join(FIXTURES, 'pixels.npz')) as data:
        return {k: data[k] for k in data.files}


def video_results(**extra):
    return dict(filename=VIDEO, label=3, start_index=0, modality='RGB', **extra)


def to_channels_last(shape, input_format):
    """MMAction2's (V, C, H, W) / (V, C, T, H, W) as our channels-last shape."""
    shape = list(shape)
    return shape[:1] + shape[2:] + shape[1:2] if input_format in ('NCHW', 'NCTHW') else shape


# -- Compose ---------------------------------------------------------------------------


def test_compose_builds_configs_and_names_bad_keys():
    pipe = Compose([dict(type='Resize', scale=(-1, 32)), lambda r: {**r, 'seen': True}])
    out = pipe(dict(imgs=np.zeros((2, 48, 64, 3), np.uint8)))
    assert out['imgs'].shape == (2, 32, 43, 3) and out['seen']
    with pytest.raises(RegistryError, match=r"data\.train\.pipeline\.1\.type.*'Resize'"):
        Compose([dict(type='Flip'), dict(type='Resise', scale=(-1, 32))], key_path='data.train.pipeline')
    with pytest.raises(TypeError, match=r'data\.val\.pipeline'):
        Compose(dict(type='Flip'), key_path='data.val.pipeline')
    assert Compose([lambda r: None, lambda r: 1 / 0])({}) is None  # None drops the sample


def test_compose_keeps_exception_type_and_names_the_step():
    pipe = Compose([dict(type='DecordInit')])
    with pytest.raises(VideoReadError) as info:
        pipe(dict(filename='/nonexistent/video.mp4'))
    assert 'pipeline step 0' in ''.join(getattr(info.value, '__notes__', []))


# -- recipes: keys and shapes step by step ----------------------------------------------


def check_recipe(name, golden, ignore_extra=()):
    pipeline = untuple(golden['pipeline'])
    transforms = Compose(pipeline, key_path=name).transforms
    results = video_results(rng=np.random.default_rng(0))
    input_format = None
    for cfg, transform, expected in zip(pipeline, transforms, golden['steps'], strict=True):
        results = transform(results)
        step = f"{name}: {cfg['type']}"
        ours = set(results) - {'rng', *ignore_extra}
        if cfg['type'] == 'PackActionInputs':  # MMAction2 packs into inputs + data_samples
            assert {'imgs', 'label'} <= ours, step
            assert list(results['imgs'].shape) == to_channels_last(expected['shape'], input_format), step
            continue
        assert ours == set(expected['keys']), (step, ours ^ set(expected['keys']))
        if 'shape' not in expected:
            continue
        shape = list(np.shape(results['imgs']))
        if cfg['type'] == 'FormatShape':
            input_format = cfg['input_format']
            assert shape == to_channels_last(expected['shape'], input_format), step
            assert results['imgs'].dtype == np.uint8 and results['imgs'].flags.c_contiguous, step
            assert tuple(results['input_shape']) == tuple(shape), step
        elif input_format:  # Collect / ToTensor after FormatShape
            assert shape == to_channels_last(expected['shape'], input_format), step
        elif cfg['type'] in RANDOM_STEPS:
            assert shape[0] == expected['shape'][0] and shape[3] == expected['shape'][3], step
        else:
            assert shape == expected['shape'], step
            assert list(results['img_shape']) == expected['img_shape'], step
        if 'num_frame_inds' in expected:
            assert len(results['frame_inds']) == expected['num_frame_inds'], step


with open(os.path.join(FIXTURES, 'recipes_1x.json')) as f:
    RECIPES_1X = json.load(f)
with open(os.path.join(FIXTURES, 'recipes_0x.json')) as f:
    RECIPES_0X = json.load(f)


@pytest.mark.parametrize('name', sorted(RECIPES_1X))
def test_mmaction2_1x_recipe_keys_and_shapes(name):
    check_recipe(name, RECIPES_1X[name])


@pytest.mark.parametrize('name', sorted(RECIPES_0X))
def test_mmaction2_0x_tsn_video_recipe_loads_unchanged(name):
    # 0.x's DecordInit did not record avg_fps yet
    check_recipe(name, RECIPES_0X[name], ignore_extra=('avg_fps',))
    out = Compose(untuple(RECIPES_0X[name]['pipeline']))(video_results())
    assert set(out) == {'imgs', 'label'} and out['imgs'].dtype == np.uint8  # normalised on device


# -- pixels: deterministic transforms equal MMAction2's ------------------------------------


def test_decord_decode_equals_mmaction2(pixels):
    for mode, key in (('accurate', 'decoded'), ('efficient', 'decoded_efficient')):
        results = DecordInit()(video_results())
        assert results['total_frames'] == 40 and results['avg_fps'] == pytest.approx(25)
        results['frame_inds'] = np.array([0, 7, 13, 39, 20, 20], dtype=np.int32)
        results = DecordDecode(mode=mode)(results)
        np.testing.assert_array_equal(results['imgs'], pixels[key])
        assert results['video_reader'] is None
        assert results['original_shape'] == results['img_shape'] == (48, 64)


def test_deterministic_transforms_equal_mmaction2(pixels):
    frames = pixels['decoded'][1:3]
    cases = untuple(json.loads(str(pixels['cases'])))
    assert len(cases) >= 26
    exact = []
    for name, cfgs in cases.items():
        for as_list in (False, True):  # MMAction2-style frame lists work too
            imgs = list(frames) if as_list else frames.copy()
            results = Compose(cfgs)(dict(imgs=imgs, img_shape=(48, 64), modality='RGB', num_clips=1,
                                         clip_len=2, label=1))
            ours = np.asarray(results['imgs'])
            assert ours.shape == pixels[name].shape and ours.dtype == np.uint8, name
            diff = np.abs(ours.astype(np.int16) - pixels[name]).max()
            # OpenCV builds may round a few interpolated pixels differently; geometry must be exact
            assert diff <= (1 if name.startswith('resize') and 'nearest' not in name else 0), (name, diff)
            exact.append(diff == 0)
        np.testing.assert_array_equal(frames, pixels['decoded'][1:3], err_msg=f'{name} changed its input')
    assert np.mean(exact) > 0.9


def test_format_shape_is_mmaction2_channels_last(pixels):
    for fmt, axes in (('NCHW', (0, 2, 3, 1)), ('NCTHW', (0, 2, 3, 4, 1))):
        out = FormatShape(fmt)(dict(imgs=pixels['decoded'], num_clips=2, clip_len=3, modality='RGB'))
        np.testing.assert_array_equal(out['imgs'], pixels[f'format_{fmt}'].transpose(axes))
    flow = np.arange(6 * 4 * 5 * 2, dtype=np.uint8).reshape(6, 4, 5, 2)
    out = FormatShape('NCHW')(dict(imgs=flow, num_clips=2, clip_len=3, modality='Flow'))
    # torch: (6, 2, 4, 5) -> (2, 3 * 2, 4, 5) with channel index t * 2 + c
    expected = flow.transpose(0, 3, 1, 2).reshape(2, 6, 4, 5).transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(out['imgs'], expected)
    collapsed = FormatShape('NCTHW', collapse=True)(dict(imgs=flow[:3, ..., :1], num_clips=1, clip_len=3))
    assert collapsed['imgs'].shape == (3, 4, 5, 1)


def test_color_jitter_equals_mmaction2_for_fixed_draws(pixels):
    frames = pixels['decoded'][1:3]
    for k in range(3):
        ours = color_jitter(frames, *pixels[f'jitter{k}_factors'], order=pixels[f'jitter{k}_order'])
        assert np.abs(ours.astype(np.int16) - pixels[f'jitter{k}']).max() <= 1
    out = ColorJitter()(dict(imgs=frames, rng=np.random.default_rng(0)))
    assert out['imgs'].shape == frames.shape and out['imgs'].dtype == np.uint8


@pytest.mark.parametrize('name', ['tsn_val', 'i3d_test', 'rawframes'])
def test_whole_pipelines_equal_mmaction2(pixels, name):
    cfgs = untuple(json.loads(str(pixels['pipelines'])))[name]
    results = video_results()
    if name == 'rawframes':
        results = dict(frame_dir=os.path.join(FIXTURES, 'frames'), total_frames=4,
                       filename_tmpl='img_{:05}.jpg', label=2, start_index=1, modality='RGB')
    ours = Compose(cfgs)(results)['imgs']
    np.testing.assert_array_equal(ours, np.moveaxis(pixels[f'pipeline_{name}'], 1, -1))


# -- random transforms: MMAction2's choices --------------------------------------------


def test_random_crops_choose_mmaction2_boxes():
    with open(os.path.join(FIXTURES, 'crop_choices.json')) as f:
        cases = untuple(json.load(f))
    for case in cases:
        transform = PIPELINES.build(dict(case['cfg']))
        rng = np.random.default_rng(0)
        boxes = {tuple(int(v) for v in transform(dict(img_shape=(48, 64), rng=rng))['crop_bbox'])
                 for _ in range(3000)}
        assert boxes == {tuple(b) for b in case['boxes']}, case['cfg']


def test_random_resized_crop_respects_area_and_aspect_ratio():
    transform = RandomResizedCrop(area_range=(0.2, 0.8), aspect_ratio_range=(0.75, 1.333))
    rng = np.random.default_rng(0)
    for _ in range(300):
        out = transform(dict(imgs=np.zeros((2, 48, 64, 3), np.uint8), rng=rng))
        left, top, right, bottom = out['crop_bbox']
        w, h = right - left, bottom - top
        assert 0 <= left and right <= 64 and 0 <= top and bottom <= 48
        assert out['imgs'].shape == (2, h, w, 3) and out['img_shape'] == (h, w)
        if (w, h) != (48, 48):  # else the centre-square fallback
            assert 0.2 * 48 * 64 - w - h <= w * h <= 0.8 * 48 * 64 + w + h + 1  # rounding of the sides
            assert 0.75 - 1 / min(w, h) <= w / h <= 1.333 + 1 / min(w, h)
    quad = out['crop_quadruple']
    assert quad.dtype == np.float32 and quad[2] == pytest.approx(w / 64)


def test_flip_ratio_labels_and_flow():
    imgs = np.arange(2 * 3 * 4 * 3, dtype=np.uint8).reshape(2, 3, 4, 3)
    assert not Flip(flip_ratio=0)(dict(imgs=imgs, rng=np.random.default_rng()))['flip']
    out = Flip(flip_ratio=1, flip_label_map={3: 5})(dict(imgs=imgs, label=3, modality='RGB'))
    assert out['flip'] and out['flip_direction'] == 'horizontal' and out['label'] == 5
    np.testing.assert_array_equal(out['imgs'], imgs[:, :, ::-1])
    flows = imgs[..., :2]
    out = Flip(flip_ratio=1)(dict(imgs=flows, modality='Flow'))
    np.testing.assert_array_equal(out['imgs'][..., 0], 255 - flows[:, :, ::-1, 0])
    np.testing.assert_array_equal(out['imgs'][..., 1], flows[:, :, ::-1, 1])
    flips = [Flip()(dict(imgs=imgs, rng=np.random.default_rng(s)))['flip'] for s in range(400)]
    assert 0.4 < np.mean(flips) < 0.6
    onehot = np.array([0, 1, 0, 1], np.float32)  # multi-label samples keep their labels
    assert Flip(flip_ratio=1, flip_label_map={1: 3})(dict(imgs=imgs, label=onehot))['label'] is onehot


def test_flip_mirrors_owned_clips_in_place_and_copies_views():
    clip = np.arange(2 * 4 * 6 * 3, dtype=np.uint8).reshape(2, 4, 6, 3).copy()
    original = clip.copy()
    view = clip[:, 1:3, 1:5]
    out = Flip(flip_ratio=1)(dict(imgs=view))['imgs']
    np.testing.assert_array_equal(out, original[:, 1:3, 1:5][:, :, ::-1])
    np.testing.assert_array_equal(clip, original)  # a crop view never changes the clip it came from
    out = Flip(flip_ratio=1, direction='vertical')(dict(imgs=clip))['imgs']
    assert out is clip  # the clip owned its buffer: mirrored in place, as mmcv.imflip_ does
    np.testing.assert_array_equal(out, original[:, ::-1])


def test_random_rescale_and_multiscale_crop_keys():
    rng = np.random.default_rng(0)
    sides = {RandomRescale((30, 34))(dict(imgs=np.zeros((1, 48, 64, 3), np.uint8), rng=rng))['short_edge']
             for _ in range(100)}
    assert sides == {30, 31, 32, 33, 34}
    out = MultiScaleCrop(32, scales=(1, 0.75))(dict(imgs=np.zeros((1, 48, 64, 3), np.uint8), rng=rng))
    assert out['scales'] == (1, 0.75) and {'crop_bbox', 'crop_quadruple'} <= set(out)
    with pytest.raises(ValueError, match='larger than'):
        RandomCrop(50)(dict(imgs=np.zeros((1, 48, 64, 3), np.uint8)))


# -- formatting and 0.x/1.x compatibility steps ---------------------------------------------


def test_normalize_records_config_and_keeps_uint8():
    imgs = np.arange(24, dtype=np.uint8).reshape(1, 2, 4, 3)
    cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])
    out = Normalize(**cfg)(dict(imgs=imgs, modality='RGB'))
    assert out['imgs'] is imgs
    np.testing.assert_allclose(out['img_norm_cfg']['mean'], cfg['mean'])
    assert out['img_norm_cfg']['to_bgr'] is False
    bgr = Normalize(**cfg, to_bgr=True)(dict(imgs=imgs, modality='RGB'))
    np.testing.assert_array_equal(bgr['imgs'], imgs[..., ::-1])


def test_collect_totensor_and_pack():
    results = dict(imgs=np.zeros((1, 2, 2, 3), np.uint8), label=4, img_shape=(2, 2), filename='a.mp4')
    assert set(Collect(keys=['imgs', 'label'], meta_keys=[])(dict(results))) == {'imgs', 'label'}
    collected = Collect(keys=['imgs'])(dict(results))
    assert collected['img_metas'] == {'filename': 'a.mp4', 'label': 4, 'img_shape': (2, 2)}
    assert ToTensor(keys=['imgs', 'label'])(dict(results))['label'] == 4
    with pytest.raises(KeyError, match='gt_bboxes'):
        ToTensor(keys=['gt_bboxes'])(dict(results))
    packed = PackActionInputs()(dict(results))
    assert set(packed) == {'imgs', 'label', 'img_metas'} and packed['img_metas'] == {'img_shape': (2, 2)}
    assert set(PackActionInputs(meta_keys=())(dict(results))) == {'imgs', 'label'}


def test_resize_arguments():
    imgs = np.zeros((1, 48, 64, 3), np.uint8)
    assert Resize((-1, 96))(dict(imgs=imgs))['img_shape'] == (96, 128)
    assert Resize((96, -1))(dict(imgs=imgs))['img_shape'] == (96, 128)
    assert Resize((40, 30), keep_ratio=False)(dict(imgs=imgs))['imgs'].shape == (1, 30, 40, 3)
    with pytest.raises(TypeError, match='tuple'):  # as MMAction2: a list is not a scale
        Resize([40, 30], keep_ratio=False)
    out = Resize(0.5)(Resize(2.0)(dict(imgs=imgs)))
    np.testing.assert_allclose(out['scale_factor'], [1, 1])
    with pytest.raises(TypeError, match='scale'):
        Resize(256)
    with pytest.raises(ValueError, match='interpolation'):
        Resize((-1, 32), interpolation='cubic')


# -- decoding errors ---------------------------------------------------------------------


def test_missing_and_truncated_videos_raise_video_read_error(tmp_path):
    with pytest.raises(VideoReadError, match='not found'):
        DecordInit()(dict(filename=str(tmp_path / 'missing.mp4')))
    truncated = tmp_path / 'truncated.mp4'
    data = open(VIDEO, 'rb').read()
    truncated.write_bytes(data[:len(data) // 3])
    pipe = Compose([dict(type='DecordInit'),
                    dict(type='SampleFrames', clip_len=1, num_clips=8, test_mode=True),
                    dict(type='DecordDecode')])
    with pytest.raises(VideoReadError, match='truncated.mp4'):
        pipe(dict(filename=str(truncated), start_index=0))
    assert issubclass(VideoReadError, OSError)


def test_rawframe_decode_rgb_flow_and_errors(tmp_path):
    shutil.copytree(os.path.join(FIXTURES, 'frames'), tmp_path / 'rgb')
    rgb = dict(frame_dir=str(tmp_path / 'rgb'), filename_tmpl='img_{:05}.jpg', modality='RGB')
    out = RawFrameDecode()(dict(rgb, frame_inds=np.array([[1, 3, 3]])))
    assert out['imgs'].shape == (3, 48, 64, 3) and out['original_shape'] == (48, 64)
    np.testing.assert_array_equal(out['imgs'][1], out['imgs'][2])
    first = cv2.imread(str(tmp_path / 'rgb' / 'img_00001.jpg'))[..., ::-1]
    np.testing.assert_array_equal(out['imgs'][0], first)
    (tmp_path / 'flow').mkdir()
    for i in (1, 2):
        for axis, value in (('x', 10 * i), ('y', 100 + i)):
            cv2.imwrite(str(tmp_path / 'flow' / f'{axis}_{i:05d}.png'), np.full((6, 8), value, np.uint8))
    flow = RawFrameDecode()(dict(frame_dir=str(tmp_path / 'flow'), filename_tmpl='{}_{:05d}.png',
                                 modality='Flow', frame_inds=np.array([2, 1]), offset=0))
    assert flow['imgs'].shape == (2, 6, 8, 2)
    assert flow['imgs'][0, 0, 0].tolist() == [20, 102]
    with pytest.raises(VideoReadError, match='img_00009.jpg'):
        RawFrameDecode()(dict(rgb, frame_inds=np.array([9])))
    with pytest.raises(ValueError, match="only 'disk'"):
        RawFrameDecode(io_backend='petrel')
