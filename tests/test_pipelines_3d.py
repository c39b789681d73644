"""3D recipes' pipelines and transform argument checks against MMAction2 1.2.0.

Golden files: tests/fixtures/pipelines/{recipes_3d.json, pixels_3d.npz, arg_checks.json},
made by make_fixtures_3d.py there with MMAction2's own transforms.
"""

from __future__ import annotations

import builtins
import json
import os

import numpy as np
import pytest

from actionjax.data.pipelines import Compose
from actionjax.registry import PIPELINES

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures', 'pipelines')
VIDEO = os.path.join(FIXTURES, 'tiny.mp4')
RANDOM_STEPS = {'MultiScaleCrop', 'RandomResizedCrop', 'RandomCrop'}  # output size is a random draw


def untuple(cfg):
    """Configs in the golden files mark tuples as {'__tuple__': [...]} (JSON has only lists)."""
    if isinstance(cfg, dict):
        if set(cfg) == {'__tuple__'}:
            return tuple(untuple(v) for v in cfg['__tuple__'])
        return {k: untuple(v) for k, v in cfg.items()}
    if isinstance(cfg, list):
        return [untuple(v) for v in cfg]
    return cfg


def channels_last(shape: list[int], input_format: str | None) -> list[int]:
    """MMAction2's (V, C, H, W) / (V, C, T, H, W) as actionjax's channels-last shape."""
    return shape[:1] + shape[2:] + shape[1:2] if input_format in ('NCHW', 'NCTHW') else shape


def video_results(**extra) -> dict:
    return dict(filename=VIDEO, label=3, start_index=0, modality='RGB', **extra)


with open(os.path.join(FIXTURES, 'recipes_3d.json')) as f:
    RECIPES = json.load(f)


@pytest.mark.parametrize('name', sorted(RECIPES))
def test_3d_recipe_keys_and_shapes_step_by_step(name):
    golden = RECIPES[name]
    pipeline = untuple(golden['pipeline'])
    results = video_results(rng=np.random.default_rng(0))
    input_format = None
    for cfg, transform, expected in zip(pipeline, Compose(pipeline, key_path=name).transforms,
                                        golden['steps'], strict=True):
        results = transform(results)
        step = f"{name}: {cfg['type']}"
        if cfg['type'] == 'PackActionInputs':  # MMAction2 packs into inputs + data_samples
            assert {'imgs', 'label'} <= set(results), step
            assert list(results['imgs'].shape) == channels_last(expected['shape'], input_format), step
            continue
        assert set(results) - {'rng'} == set(expected['keys']), (step, set(results) ^ set(expected['keys']))
        if 'num_frame_inds' in expected:
            assert len(results['frame_inds']) == expected['num_frame_inds'], step
        if 'shape' not in expected:
            continue
        shape = list(np.shape(results['imgs']))
        if cfg['type'] == 'FormatShape':
            input_format = cfg['input_format']
            assert shape == channels_last(expected['shape'], input_format), step
            assert results['imgs'].dtype == np.uint8 and results['imgs'].flags.c_contiguous, step
        elif cfg['type'] in RANDOM_STEPS:
            assert shape[0] == expected['shape'][0] and shape[3] == expected['shape'][3], step
        else:
            assert shape == expected['shape'] and list(results['img_shape']) == expected['img_shape'], step


@pytest.fixture(scope='module')
def pixels() -> dict[str, np.ndarray]:
    with np.load(os.path.join(FIXTURES, 'pixels_3d.npz')) as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize('name', ['x3d_test', 'c3d_test', 'tencrop_ncthw'])
def test_whole_3d_pipelines_equal_mmaction2(pixels, name):
    cfgs = untuple(json.loads(str(pixels['pipelines'])))[name]
    ours = Compose(cfgs)(video_results())['imgs']
    # MMAction2: (crops x clips, C, T, H, W); actionjax: (crops x clips, T, H, W, C)
    np.testing.assert_array_equal(ours, np.moveaxis(pixels[name], 1, -1))


# -- argument checks: what MMAction2 rejects is rejected, naming the step and argument ----------

with open(os.path.join(FIXTURES, 'arg_checks.json')) as f:
    ARG_CHECKS = [dict(cfg=untuple(case['cfg']), mmaction2=case['mmaction2']) for case in json.load(f)]

# Where actionjax refuses a value MMAction2 builds and fails on only when it runs.
STRICTER = {"{'type': 'TenCrop', 'crop_size': (224,)}": 'a one-element crop size fails in MMAction2 '
            "at the first clip ('not enough values to unpack')"}


@pytest.mark.parametrize('case', ARG_CHECKS, ids=lambda case: repr(case['cfg']))
def test_argument_checks_match_mmaction2(case):
    cfg, outcome = case['cfg'], case['mmaction2']
    if repr(cfg) in STRICTER:
        outcome = 'ValueError or TypeError'
    if outcome == 'ok':
        PIPELINES.build(cfg)
        return
    with pytest.raises((TypeError, ValueError)) as info:
        PIPELINES.build(cfg, key_path='data.train.pipeline.2')
    if outcome in ('TypeError', 'ValueError'):  # MMAction2's AssertionErrors are one of the two here
        assert type(info.value).__name__ == outcome, info.value
    message = str(info.value)
    argument = list(cfg)[-1]  # the cases put the argument under test last
    assert cfg['type'] in message and argument in message, message


with open(os.path.join(FIXTURES, 'recognition_pipelines.json')) as f:
    RECOGNITION_PIPELINES = json.load(f)


def test_mmaction2_recognition_recipe_pipelines_build_where_mmaction2_builds_them():
    """The checks refuse nothing MMAction2's recognition recipes (I3D ... X3D, TSN, TSM) use, and
    what MMAction2 refuses there (one TSM recipe's ``DecordDecode(io_backend=...)``) is refused."""
    assert len(RECOGNITION_PIPELINES) > 40
    for case in RECOGNITION_PIPELINES:
        pipeline = untuple(case['pipeline'])
        where = f"{case['config']}:{case['split']}_pipeline"
        if case['mmaction2'] == 'ok':
            Compose(pipeline, key_path=where)
        else:
            with pytest.raises(getattr(builtins, case['mmaction2'])):
                Compose(pipeline, key_path=where)
