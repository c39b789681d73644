"""The flow modality against MMAction2 1.2.0: decoding, flipping, formatting and a TSN flow model.

Golden files: tests/fixtures/flow/ (made by make_fixtures.py there with MMAction2's own
transforms and model): 12 frames of x/y flow JPEGs, the flow recipes' step keys and
shapes, whole flow pipelines' outputs, and a small TSN flow recognizer (10 input
channels: 5 frames x (x, y)) with its logits on the test pipeline's output.
"""

from __future__ import annotations

import json
import os
import shutil

import jax
import numpy as np
import pytest

from actionjax.apis import inference_recognizer, init_recognizer
from actionjax.config import Config
from actionjax.data.datasets import RawframeDataset
from actionjax.data.pipelines import Compose, Flip, FormatShape, RawFrameDecode
from actionjax.models import build_model
from convert import mmaction2 as mm

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(REPO, 'tests', 'fixtures', 'flow')
FRAMES = os.path.join(HERE, 'frames')
TMPL = '{}_{:05d}.jpg'  # the flow recipes' filename_tmpl
RTOL = 1e-4
RANDOM_STEPS = {'RandomResizedCrop'}  # its output size is a random draw

TSN_FLOW = dict(model=dict(
    type='Recognizer2D',
    backbone=dict(type='ResNet', depth=50, in_channels=10, num_stages=1, out_indices=(0,), strides=(2,),
                  dilations=(1,), norm_eval=False, pretrained=None),
    cls_head=dict(type='TSNHead', num_classes=5, in_channels=256, spatial_type='avg',
                  consensus=dict(type='AvgConsensus', dim=1), dropout_ratio=0.4, init_std=0.01,
                  average_clips='prob'),
    data_preprocessor=dict(type='ActionDataPreprocessor', mean=[128, 128] * 5, std=[128, 128] * 5,
                           format_shape='NCHW')))


def untuple(cfg):
    """Configs in the golden files mark tuples as {'__tuple__': [...]} (JSON has only lists)."""
    if isinstance(cfg, dict):
        if set(cfg) == {'__tuple__'}:
            return tuple(untuple(v) for v in cfg['__tuple__'])
        return {k: untuple(v) for k, v in cfg.items()}
    if isinstance(cfg, list):
        return [untuple(v) for v in cfg]
    return cfg


def frame_results(frame_dir: str = FRAMES, tmpl: str = TMPL, **extra) -> dict:
    return dict(frame_dir=frame_dir, total_frames=12, filename_tmpl=tmpl, start_index=1, modality='Flow',
                label=2, **extra)


@pytest.fixture(scope='module')
def pixels() -> dict[str, np.ndarray]:
    with np.load(os.path.join(HERE, 'pixels_flow.npz')) as data:
        return {k: data[k] for k in data.files}


def pipeline_cfgs(pixels, name: str) -> list[dict]:
    return untuple(json.loads(str(pixels['pipelines'])))[name]


# -- decoding, flipping, formatting ----------------------------------------------------------------


@pytest.mark.parametrize('tmpl', [TMPL, 'flow_{}_{:05d}.jpg', '{}_{:05}.jpg'])
def test_flow_frames_decode_as_mmaction2(pixels, tmp_path, tmpl):
    frame_dir = FRAMES
    if tmpl != TMPL:  # the same frames under another of MMAction2's flow file names
        frame_dir = str(tmp_path)
        for axis in 'xy':
            for i in range(1, 13):
                shutil.copy(os.path.join(FRAMES, TMPL.format(axis, i)),
                            os.path.join(frame_dir, tmpl.format(axis, i)))
    out = RawFrameDecode()(frame_results(frame_dir, tmpl, frame_inds=np.array([1, 4, 4, 12, 7])))
    np.testing.assert_array_equal(out['imgs'], pixels['decoded'])  # (M, H, W, 2): x, y
    assert out['img_shape'] == out['original_shape'] == (30, 40)


def test_flip_mirrors_flow_and_inverts_x(pixels):
    decoded = pixels['decoded']
    ours = Flip(flip_ratio=1.0)(dict(imgs=decoded.copy(), modality='Flow'))['imgs']
    mirrored = decoded[:, :, ::-1]
    np.testing.assert_array_equal(ours[..., 0], 255 - mirrored[..., 0])  # x motion changes sign
    np.testing.assert_array_equal(ours[..., 1], mirrored[..., 1])
    # MMAction2 1.2.0 mirrors every frame, then inverts whole frames 0, 2, 4, ... (x and y), a
    # leftover of 0.x, whose frames alternated x, y: its even frames agree with ours in x and
    # have y inverted, its odd frames agree in y and keep x uninverted.
    mm2 = pixels['flipped_mmaction2']
    np.testing.assert_array_equal(ours[0::2, ..., 0], mm2[0::2, ..., 0])
    np.testing.assert_array_equal(ours[0::2, ..., 1], 255 - mm2[0::2, ..., 1])
    np.testing.assert_array_equal(ours[1::2, ..., 0], 255 - mm2[1::2, ..., 0])
    np.testing.assert_array_equal(ours[1::2, ..., 1], mm2[1::2, ..., 1])
    with pytest.raises(ValueError, match='horizontal'):
        Flip(flip_ratio=1.0, direction='vertical')(dict(imgs=decoded.copy(), modality='Flow'))


def test_format_shape_stacks_flow_frames_as_x1_y1_x2_y2(pixels):
    decoded = pixels['decoded'][:4]  # 2 clips of 2 frames
    out = FormatShape('NCHW')(dict(imgs=decoded, num_clips=2, clip_len=2, modality='Flow'))['imgs']
    assert out.shape == (2, 30, 40, 4)
    for view in range(2):
        for t in range(2):
            for c, axis in enumerate('xy'):
                np.testing.assert_array_equal(out[view, ..., 2 * t + c], decoded[2 * view + t, ..., c], axis)
    same = FormatShape('NCHW_Flow')(dict(imgs=decoded, num_clips=2, clip_len=2, modality='Flow'))['imgs']
    np.testing.assert_array_equal(same, out)  # 0.x's name for the same layout


@pytest.mark.parametrize('name', ['tsn_flow_val', 'tsn_flow_test', 'slowonly_flow_test'])
def test_whole_flow_pipelines_equal_mmaction2(pixels, name):
    ours = Compose(pipeline_cfgs(pixels, name))(frame_results())['imgs']
    # MMAction2: (V, T * 2, H, W) or (V, 2, T, H, W); actionjax: channels last
    np.testing.assert_array_equal(ours, np.moveaxis(pixels[name], 1, -1))


with open(os.path.join(HERE, 'recipes_flow.json')) as f:
    RECIPES = json.load(f)


@pytest.mark.parametrize('name', sorted(RECIPES))
def test_flow_recipe_keys_and_shapes_step_by_step(name):
    golden = RECIPES[name]
    pipeline = untuple(golden['pipeline'])
    results = frame_results(rng=np.random.default_rng(0))
    for cfg, transform, expected in zip(pipeline, Compose(pipeline).transforms, golden['steps'], strict=True):
        results = transform(results)
        step = f"{name}: {cfg['type']}"
        if cfg['type'] == 'PackActionInputs':
            assert {'imgs', 'label'} <= set(results), step
        else:
            keys = set(results) - {'rng'}
            assert keys == set(expected['keys']), (step, keys ^ set(expected['keys']))
        if 'shape' not in expected:
            continue
        shape, want = list(np.shape(results['imgs'])), expected['shape']
        if cfg['type'] in ('FormatShape', 'PackActionInputs'):
            want = want[:1] + want[2:] + want[1:2]  # channels last
        elif cfg['type'] in RANDOM_STEPS:
            shape, want = shape[::3], want[::3]  # frames and channels; the size is a random draw
        assert shape == want, step


# -- a converted TSN flow checkpoint gives MMAction2's logits -------------------------------------


@pytest.fixture(scope='module')
def golden() -> dict[str, np.ndarray]:
    return dict(np.load(os.path.join(HERE, 'tsn_flow_tiny.npz')))


def assert_close(actual, expected, what: str) -> None:
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f'{what}: shape {actual.shape} != {expected.shape}'
    err = np.abs(actual - expected).max() / np.abs(expected).max()
    assert err < RTOL, f'{what}: max abs diff / max |value| = {err:.2e}'


def test_tsn_flow_checkpoint_gives_mmaction2_logits(pixels, golden):
    imgs = Compose(pipeline_cfgs(pixels, 'tsn_flow_test'))(frame_results())['imgs'][None]
    np.testing.assert_array_equal(imgs, golden['imgs'])  # the same frames, channels x1, y1, ..., y5
    variables = mm.convert_checkpoint(os.path.join(HERE, 'tsn_flow_tiny.pth'), TSN_FLOW)
    assert sum(np.size(p) for p in jax.tree.leaves(variables['params'])) == int(golden['num_params'])
    model = build_model(TSN_FLOW)

    def outputs(model, imgs):
        return model.extract_feat(imgs), model.forward_head(imgs), model(imgs)

    features, logits, scores = jax.jit(lambda v, x: model.apply(v, x, method=outputs))(variables, imgs)
    assert_close(features, golden['features'], 'features')
    assert_close(logits, golden['logits'], 'logits')
    assert_close(scores, golden['scores'], 'scores')


def test_flow_dataset_and_inference_from_a_config(pixels, golden, tmp_path):
    """RawframeDataset(modality='Flow') + the converted checkpoint through the Python API."""
    ann = tmp_path / 'flow_list.txt'
    ann.write_text('frames 12 2\n')
    pipeline = pipeline_cfgs(pixels, 'tsn_flow_test')
    dataset = RawframeDataset(str(ann), pipeline, data_prefix=HERE, filename_tmpl=TMPL, modality='Flow',
                              test_mode=True)
    np.testing.assert_array_equal(dataset[0]['imgs'], golden['imgs'][0])

    cfg = dict(TSN_FLOW, test_pipeline=pipeline)
    mm.convert_checkpoint(os.path.join(HERE, 'tsn_flow_tiny.pth'), cfg, out=tmp_path / 'tsn_flow')
    recognizer = init_recognizer(cfg, tmp_path / 'tsn_flow')
    top = inference_recognizer(recognizer, frame_results(), topk=5)
    scores = golden['scores'][0]
    assert [i for i, _ in top] == list(np.argsort(-scores))
    np.testing.assert_allclose([s for _, s in top], np.sort(scores)[::-1], atol=RTOL)


def test_tsn_flow_recipe_builds_with_mmaction2s_parameter_count():
    cfg = Config.fromfile(os.path.join(REPO, 'configs', 'tsn_flow.py'))
    shapes = mm.variable_shapes(cfg)
    assert shapes['params']['backbone']['conv1']['conv']['kernel'].shape == (7, 7, 10, 64)
    assert sum(np.size(p) for p in jax.tree.leaves(shapes['params'])) == 24_349_584  # MMAction2's
    for split in ('train', 'val', 'test'):
        Compose(cfg[f'{split}_dataloader']['dataset']['pipeline'], key_path=f'{split}_dataloader')
