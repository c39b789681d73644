"""SSN's data side against MMAction2 0.24.1 (tests/fixtures/ssn/tag_dataset.txt, ssn_dataset.npz):
proposal pools, regression targets and their normalisation, stage scale factors, test-mode
proposal ticks, SampleProposalFrames' frame indices; and the training samples' layout."""

from __future__ import annotations

import os

import numpy as np
import pytest

from actionjax.data import SSNDataset, build_dataloader
from actionjax.data.pipelines import SampleProposalFrames

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures', 'ssn')
GOLDEN = np.load(os.path.join(HERE, 'ssn_dataset.npz'))
TRAIN_CFG = dict(ssn=dict(
    assigner=dict(positive_iou_threshold=0.7, background_iou_threshold=0.01, incomplete_iou_threshold=0.3,
                  background_coverage_threshold=0.02, incomplete_overlap_threshold=0.01),
    sampler=dict(num_per_video=8, positive_ratio=1, background_ratio=1, incomplete_ratio=6,
                 add_gt_as_proposals=True)))
TEST_CFG = dict(ssn=dict(sampler=dict(test_interval=6, batch_size=16)))
SAMPLER = dict(clip_len=1, body_segments=5, aug_segments=(2, 2), aug_ratio=0.5)


def dataset(test_mode: bool = False, pipeline=()) -> SSNDataset:
    return SSNDataset(os.path.join(HERE, 'tag_dataset.txt'), list(pipeline), TRAIN_CFG, TEST_CFG,
                      data_prefix=HERE, test_mode=test_mode)


def test_pools_targets_and_stage_factors_equal_mmaction2s():
    ds = dataset()
    for name in ('positive', 'incomplete', 'background'):
        pool = getattr(ds, f'{name}_pool')
        rows = [(int(vid[-1]), p.start_frame, p.end_frame, p.label) for vid, p in pool]
        np.testing.assert_array_equal(rows, GOLDEN[f'{name}_pool'], err_msg=name)
        np.testing.assert_array_equal([p.regression_targets for _, p in pool], GOLDEN[f'{name}_targets'])
        np.testing.assert_array_equal([ds.stage_scale_factors(p, p.num_video_frames) for _, p in pool],
                                      GOLDEN[f'{name}_stage'])
    np.testing.assert_array_equal(ds.reg_norm_consts, GOLDEN['reg_norm_consts'])


def test_test_mode_inputs_and_frame_indices_equal_mmaction2s():
    ds = dataset(test_mode=True)
    for v in range(len(ds)):
        results = ds[v]
        for key in ('relative_proposal_list', 'scale_factor_list', 'proposal_tick_list'):
            np.testing.assert_array_equal(results[key], GOLDEN[f'test_{v}_{key}'], err_msg=f'{v} {key}')
    train = dataset()
    out_proposals = [(entry, 0) for entry in train.positive_pool[:3]] + [
        (entry, 1) for entry in train.incomplete_pool[:3]]
    frames = train.video_infos[0]['total_frames']
    val = SampleProposalFrames(**SAMPLER, mode='val')(dict(total_frames=frames, out_proposals=out_proposals,
                                                          start_index=1))
    np.testing.assert_array_equal(val['frame_inds'], GOLDEN['val_frame_inds'])
    assert (val['num_proposals'], val['num_clips']) == (6, 9)
    test = SampleProposalFrames(**SAMPLER, mode='test')(dict(total_frames=frames, start_index=1))
    np.testing.assert_array_equal(test['frame_inds'], GOLDEN['test_frame_inds'])


def test_training_samples_and_batches():
    """Per video 1 positive, 6 incompletes, 1 background in the sampler's order, positives'
    targets normalised, 9 frames per proposal inside the video; the loader stacks them."""
    pipeline = [dict(type='SampleProposalFrames', **SAMPLER),
                dict(type='Collect', keys=['frame_inds', 'reg_targets', 'proposal_scale_factor',
                                           'proposal_labels', 'proposal_type'], meta_keys=[])]
    ds = dataset(pipeline=pipeline)
    sample = ds.prepare(1, np.random.default_rng(0))
    np.testing.assert_array_equal(sample['proposal_type'], [0, 1, 1, 1, 1, 1, 1, 2])
    assert sample['proposal_labels'][-1] == 0 and (sample['proposal_labels'][:-1] > 0).all()
    frames = ds.video_infos[1]['total_frames']
    inds = sample['frame_inds']
    assert inds.shape == (72,) and 1 <= inds.min() <= inds.max() <= frames
    assert sample['proposal_scale_factor'].shape == (8, 2) and not sample['reg_targets'][1:].any()
    again = ds.prepare(1, np.random.default_rng(0))
    np.testing.assert_array_equal(again['frame_inds'], sample['frame_inds'])  # the loader's rng decides
    (batch,) = list(build_dataloader(ds, batch_size=3, shard_index=0, shard_count=1))
    assert batch['proposal_type'].shape == (3, 8) and batch['frame_inds'].shape == (3, 72)


def test_a_missing_kind_of_proposal_is_a_clear_error():
    """tag_tiny.txt has no background proposal: the sampler cannot fill its quota (MMAction2 fails
    inside numpy)."""
    ds = SSNDataset(os.path.join(HERE, 'tag_tiny.txt'), [], TRAIN_CFG, TEST_CFG, data_prefix=HERE)
    with pytest.raises(ValueError, match='proposals of type 2'):
        ds.prepare(0, np.random.default_rng(0))


def test_rawframes_to_ssn_loss(tmp_path):
    """The recipe's training pipeline on real jpg frames: SampleProposalFrames, RawFrameDecode,
    Resize, FormatShape('NPTCHW'), Collect; the loader's batch goes into SSN.loss."""
    import cv2
    import jax

    from actionjax.models.localizers import build_localizer
    from tests.test_ssn import MODEL

    rng = np.random.default_rng(0)
    lines = []
    for v in range(2):
        os.makedirs(tmp_path / f'vid{v}')
        for i in range(1, 61):
            frame = rng.integers(0, 255, (32, 40, 3), np.uint8)
            cv2.imwrite(str(tmp_path / f'vid{v}' / f'img_{i:05d}.jpg'), frame)
        # the positives differ between the videos, so the regression targets have a spread to normalise by
        lines += [f'# {v}', f'vid{v}', '60', '1', '1', '1 10 30', '3',
                  f'1 0.9000 0.9000 {11 + v} {29 - 3 * v}', '1 0.2000 0.8000 12 18', '0 0.0000 0.0000 40 55']
    (tmp_path / 'tag.txt').write_text('\n'.join(lines) + '\n')
    keys = ['imgs', 'reg_targets', 'proposal_scale_factor', 'proposal_labels', 'proposal_type']
    pipeline = [dict(type='SampleProposalFrames', **SAMPLER), dict(type='RawFrameDecode'),
                dict(type='Resize', scale=(28, 28), keep_ratio=False),
                dict(type='FormatShape', input_format='NPTCHW'),
                dict(type='Collect', keys=keys, meta_keys=[])]
    ds = SSNDataset(str(tmp_path / 'tag.txt'), pipeline, TRAIN_CFG, TEST_CFG, data_prefix=str(tmp_path))
    (batch,) = list(build_dataloader(ds, batch_size=2, shard_index=0, shard_count=1))
    assert batch['imgs'].shape == (2, 8, 9, 28, 28, 3) and batch['imgs'].dtype == np.uint8
    model = build_localizer(dict(MODEL, data_preprocessor=dict(mean=[104, 117, 128], std=[1, 1, 1])))
    variables = model.init({'params': jax.random.key(0)}, model.example_input())
    losses, _ = jax.jit(lambda v, b: model.apply(v, b, method='loss', rngs={'dropout': jax.random.key(1)},
                                                 mutable=['batch_stats']))(variables, batch)
    assert sorted(losses) == ['loss_activity', 'loss_completeness', 'loss_reg']
    assert all(np.isfinite(float(value)) for value in losses.values())
