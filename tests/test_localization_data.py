"""Temporal localization data: ActivityNetDataset, its pipelines, batches, the synthetic feature set.

The golden part (tests/fixtures/localizers/anet_tiny + localizers.json) is what MMAction2
1.2.0's ActivityNetDataset with BMN's train pipeline gives for two small feature files.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from actionjax.data import build_dataloader, build_dataset
from actionjax.data.activitynet import video_info
from actionjax.data.pipelines import LoadProposals, PackLocalizationInputs
from actionjax.data.synthetic_features import ensure_synthetic_features, make_synthetic_features

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures', 'localizers')
ROOT = os.path.join(HERE, 'anet_tiny')
with open(os.path.join(HERE, 'localizers.json')) as _f:
    GOLDEN = json.load(_f)['pipeline']['samples']
TRAIN_PIPELINE = [dict(type='LoadLocalizationFeature'), dict(type='GenerateLocalizationLabels'),
                  dict(type='PackLocalizationInputs', keys=('gt_bbox',), meta_keys=('video_name',))]


def tiny_dataset(**kwargs):
    cfg = dict(type='ActivityNetDataset', ann_file=os.path.join(ROOT, 'anno.json'),
               data_prefix=dict(video=os.path.join(ROOT, 'features')), pipeline=TRAIN_PIPELINE)
    return build_dataset(dict(cfg, **kwargs))


def test_dataset_and_pipeline_match_mmaction2():
    """Features (channels-last here), segments as fractions of the featured video, names."""
    dataset = tiny_dataset()
    assert len(dataset) == len(GOLDEN)
    for i, golden in enumerate(GOLDEN):
        sample = dataset[i]
        assert sample['meta'] == {'video_name': golden['video_name']}
        np.testing.assert_array_equal(sample['raw_feature'], np.asarray(golden['raw_feature'], np.float32).T)
        boxes = np.asarray(golden['gt_bbox'])
        assert sample['num_instances'] == len(boxes)
        np.testing.assert_array_equal(sample['gt_bbox'][:len(boxes)], boxes.astype(np.float32))
        assert not sample['gt_bbox'][len(boxes):].any() and sample['gt_bbox'].shape == (64, 2)
        assert video_info(dataset, i)['feature_path'].endswith(f'{golden["video_name"]}.csv')


def test_loader_batches_features_and_padded_segments():
    dataset = tiny_dataset(test_mode=True)
    loader = build_dataloader(dataset, batch_size=3, shard_index=0, shard_count=1)
    (batch,) = list(loader)
    assert sorted(batch) == ['gt_bbox', 'index', 'num_instances', 'raw_feature', 'valid']
    assert batch['raw_feature'].shape == (3, 16, 5) and batch['raw_feature'].dtype == np.float32
    assert batch['gt_bbox'].shape == (3, 64, 2)
    np.testing.assert_array_equal(batch['num_instances'], [2, 1, 2])  # the last row pads
    np.testing.assert_array_equal(batch['valid'], [True, True, False])


def test_annotation_errors_name_the_config_key(tmp_path):
    bad = tmp_path / 'anno.json'
    bad.write_text(json.dumps({'v_a': {'duration_second': 3.0, 'annotations': []}}))
    with pytest.raises(ValueError, match=r"lacks \['duration_frame', 'feature_frame'\].*data.train.ann_file"):
        build_dataset(dict(type='ActivityNetDataset', ann_file=str(bad), pipeline=TRAIN_PIPELINE),
                      'data.train')


def test_missing_feature_file_is_an_oserror(tmp_path):
    """So the loader replaces (train) or masks (eval) the video and names the file."""
    anno = json.load(open(os.path.join(ROOT, 'anno.json')))
    (tmp_path / 'anno.json').write_text(json.dumps(anno))
    dataset = build_dataset(dict(type='ActivityNetDataset', ann_file=str(tmp_path / 'anno.json'),
                                 data_prefix=str(tmp_path), pipeline=TRAIN_PIPELINE))
    with pytest.raises(OSError, match='v_tiny0.csv'):
        dataset[0]


def test_pack_pads_to_max_instances_and_checks_counts():
    pack = PackLocalizationInputs(keys=('gt_bbox',), max_instances=3)
    out = pack(dict(raw_feature=np.zeros((4, 2)), gt_bbox=np.array([[0.1, 0.2], [0.5, 0.9]]), video_name='v'))
    assert out['gt_bbox'].shape == (3, 2) and out['num_instances'] == 2
    with pytest.raises(ValueError, match='max_instances=1'):
        PackLocalizationInputs(keys=('gt_bbox',), max_instances=1)(
            dict(raw_feature=np.zeros((4, 2)), gt_bbox=np.zeros((2, 2))))
    with pytest.raises(ValueError, match='different numbers of rows'):
        PackLocalizationInputs(keys=('tmin', 'gt_bbox'))(
            dict(raw_feature=np.zeros((4, 2)), tmin=np.zeros(3), gt_bbox=np.zeros((2, 2))))


def test_load_proposals_pads_to_top_k(tmp_path):
    """BSN's PEM inputs: the first top_k proposals and BSP features, padded to top_k rows."""
    rows = np.random.default_rng(0).uniform(size=(5, 7)).astype(np.float32)
    (tmp_path / 'p').mkdir()
    (tmp_path / 'f').mkdir()
    np.savetxt(tmp_path / 'p' / 'v_a.csv', rows, delimiter=',', header='tmin,tmax,a,b,c,d,e', comments='')
    np.save(tmp_path / 'f' / 'v_a.npy', np.ones((5, 32)))
    results = LoadProposals(top_k=4, pgm_proposals_dir=str(tmp_path / 'p'),
                            pgm_features_dir=str(tmp_path / 'f'))(dict(video_name='v_a'))
    np.testing.assert_allclose(results['reference_temporal_iou'], rows[:4, 5], rtol=1e-6)
    packed = PackLocalizationInputs(keys=('bsp_feature', 'tmin', 'reference_temporal_iou'))(results)
    assert packed['bsp_feature'].shape == (4, 32) and packed['num_instances'] == 4
    packed = PackLocalizationInputs(keys=('bsp_feature',), max_instances=6)(results)
    assert packed['bsp_feature'].shape == (6, 32) and not packed['bsp_feature'][4:].any()


def test_synthetic_features_are_deterministic_and_carry_the_segments(tmp_path):
    kwargs = dict(num_train=6, num_val=2, temporal_dim=20, feat_dim=8, seed=3)
    root = ensure_synthetic_features(str(tmp_path / 'syn'), **kwargs)
    assert ensure_synthetic_features(root, **kwargs) == root  # complete: not written again
    make_synthetic_features(str(tmp_path / 'again'), **kwargs)
    for name in ('anet_anno_train.json', 'features/v_syn00007.csv'):
        assert (tmp_path / 'syn' / name).read_bytes() == (tmp_path / 'again' / name).read_bytes()
    dataset = build_dataset(dict(type='ActivityNetDataset', ann_file=f'{root}/anet_anno_train.json',
                                 data_prefix=dict(video=f'{root}/features'), pipeline=TRAIN_PIPELINE))
    inside, outside = [], []
    for i in range(len(dataset)):
        sample = dataset[i]
        centres = (np.arange(20) + 0.5) / 20
        boxes = sample['gt_bbox'][:sample['num_instances']]
        hit = ((centres[:, None] > boxes[:, 0]) & (centres[:, None] < boxes[:, 1])).any(axis=1)
        energy = np.linalg.norm(sample['raw_feature'] - sample['raw_feature'].mean(axis=0), axis=1)
        inside.extend(energy[hit])
        outside.extend(energy[~hit])
    assert np.mean(inside) > np.mean(outside)  # the action direction sets the snippets apart
