"""Frame sampling against MMAction2's own samplers (golden files in tests/fixtures/pipelines)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from actionjax.data.pipelines import DenseSampleFrames, SampleFrames, UniformSample, UniformSampleFrames
from actionjax.data.pipelines import rng as rng_module
from actionjax.registry import PIPELINES

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures', 'pipelines')


def load_grid(name: str) -> list[tuple[dict, np.ndarray | None]]:
    """The cases of a sampling golden file: (params, frame_inds or None where MMAction2 raised)."""
    with np.load(os.path.join(FIXTURES, name)) as data:
        params = json.loads(str(data['params']))
        lengths, flat = data['lengths'].tolist(), data['frame_inds']
    cases, start = [], 0
    for p, length in zip(params, lengths, strict=True):
        if length < 0:
            cases.append((p, None))
            continue
        cases.append((p, flat[start:start + length]))
        start += length
    return cases


def run_case(params: dict, **extra) -> np.ndarray:
    params = dict(params)
    results = dict(total_frames=params.pop('total_frames'), start_index=params.pop('start_index'))
    if params.get('avg_fps') is not None:
        results['avg_fps'] = params['avg_fps']
    params.pop('avg_fps')
    transform = PIPELINES.build({**params, **extra})
    return transform(results)['frame_inds']


@pytest.mark.parametrize('version', ['1x', '0x'])
def test_test_mode_indices_equal_mmaction2(version):
    cases = load_grid(f'sampling_{version}.npz')
    assert len(cases) > 700
    checked = 0
    for params, expected in cases:
        extra = {'test_sampling': '0.x'} if version == '0x' and params['type'] == 'SampleFrames' else {}
        if expected is None:  # 1.x divides by zero for twice_sample with one 3D clip; we explain instead
            with pytest.raises(ValueError, match='twice_sample'):
                run_case(params, **extra)
            continue
        ours = run_case(params, **extra)
        assert ours.dtype == np.int32
        np.testing.assert_array_equal(ours, expected, err_msg=str(params))
        checked += 1
    assert checked > 600


def test_0x_and_1x_test_sampling_agree_for_segments_only():
    by_key = {}
    for version in ('1x', '0x'):
        for params, inds in load_grid(f'sampling_{version}.npz'):
            if params['type'] == 'SampleFrames' and inds is not None:
                by_key.setdefault(json.dumps(params, sort_keys=True), {})[version] = inds
    same = differ = 0
    for key, pair in by_key.items():
        params = json.loads(key)
        if len(pair) < 2:
            continue
        equal = pair['1x'].shape == pair['0x'].shape and np.array_equal(pair['1x'], pair['0x'])
        if params['clip_len'] == 1 and params['frame_interval'] == 1:
            assert equal, params
            same += 1
        differ += not equal
    assert same > 50 and differ > 100  # the option matters: most 3D settings sample differently


def test_train_mode_stays_in_mmaction2_ranges():
    """Over many seeds every index lies between MMAction2's extremes, with MMAction2's mean."""
    with open(os.path.join(FIXTURES, 'train_ranges.json')) as f:
        cases = json.load(f)
    num_draws = 500
    for i, case in enumerate(cases):
        transform = PIPELINES.build(dict(type=case['type'], **case['kwargs']))
        rng = np.random.default_rng(i)
        results = dict(total_frames=case['total_frames'], start_index=0, rng=rng)
        draws = np.array([transform(dict(results))['frame_inds'] for _ in range(num_draws)], dtype=np.float64)
        low, high = np.array(case['low']), np.array(case['high'])
        inside = (draws >= low) & (draws <= high)
        wrapped = low > high  # jitter pushed the index past the end and 'loop' wrapped it to the start
        inside[:, wrapped] = ((draws >= low) | (draws <= high))[:, wrapped]
        assert inside.all(), case
        # the same distribution: means agree within 5 standard errors of the difference
        stderr = np.sqrt(np.array(case['std']) ** 2 / 2000 + draws.std(0) ** 2 / num_draws)
        assert (np.abs(draws.mean(0) - np.array(case['mean'])) <= 5 * stderr + 1e-9).all(), case
        # and reach both ends where MMAction2's range is small enough to be hit often
        spread = high - low
        if case['kwargs'].get('num_clips', 1) == 1 and (spread <= 20).all() and not case['kwargs'].get(
                'temporal_jitter'):
            np.testing.assert_array_equal(draws.min(0), low, err_msg=str(case))
            np.testing.assert_array_equal(draws.max(0), high, err_msg=str(case))


def test_train_sampling_is_reproducible_and_leaves_global_state_alone():
    transform = SampleFrames(clip_len=4, frame_interval=2, num_clips=3, temporal_jitter=True)
    state = np.random.get_state()[1].copy()
    a = transform(dict(total_frames=100, start_index=0, rng=np.random.default_rng(7)))['frame_inds']
    b = transform(dict(total_frames=100, start_index=0, rng=np.random.default_rng(7)))['frame_inds']
    c = transform(dict(total_frames=100, start_index=0, rng=np.random.default_rng(8)))['frame_inds']
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_fallback_generator_is_per_process(monkeypatch):
    first = rng_module.get_rng({})
    assert isinstance(first, np.random.Generator)
    assert rng_module.get_rng({}) is first
    monkeypatch.setattr(rng_module.os, 'getpid', lambda: -1)  # as if in a freshly forked worker
    assert rng_module.get_rng({}) is not first
    with pytest.raises(TypeError, match='Generator'):
        rng_module.get_rng({'rng': 3})


def test_sampler_results_keys_and_start_index():
    out = SampleFrames(clip_len=2, frame_interval=3, num_clips=2, test_mode=True)(
        dict(total_frames=20, start_index=1))
    assert (out['clip_len'], out['frame_interval'], out['num_clips']) == (2, 3, 2)
    assert out['frame_inds'].min() >= 1 and out['frame_inds'].max() <= 20
    uniform = UniformSample(clip_len=4, num_clips=2)(dict(total_frames=30, start_index=0,
                                                          rng=np.random.default_rng()))
    assert uniform['frame_interval'] is None and len(uniform['frame_inds']) == 4
    dense = DenseSampleFrames(clip_len=2, frame_interval=2, num_clips=2, test_mode=True,
                              num_sample_positions=3)(dict(total_frames=100, start_index=0))
    assert len(dense['frame_inds']) == 3 * 2 * 2 and dense['num_clips'] == 2
    pose = UniformSampleFrames(clip_len=5)(dict(total_frames=12, rng=np.random.default_rng(0)))
    assert len(pose['frame_inds']) == 5 and pose['frame_inds'].max() < 12
    with pytest.raises(KeyError, match="start_index.*dataset"):
        SampleFrames(clip_len=1)(dict(total_frames=10))


def test_sampler_argument_errors():
    with pytest.raises(ValueError, match='out_of_bound_opt'):
        SampleFrames(clip_len=1, out_of_bound_opt='clip')
    with pytest.raises(ValueError, match="test_sampling.*'0.x'"):
        SampleFrames(clip_len=1, test_sampling='0.24')
    with pytest.raises(ValueError, match='clip_len'):
        SampleFrames(clip_len=0)
    with pytest.warns(UserWarning, match='start_index'):
        SampleFrames(clip_len=1, start_index=1)  # MMAction2 0.x configs may still pass it
