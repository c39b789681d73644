"""ANetMetric: AR@AN and AUC equal MMAction2 1.2.0's ANetMetric; the metric's plumbing (localizer
post-processing per batch, dataset lookup, ActivityNet json, BSN TEM csv files)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from actionjax.data import build_dataset
from actionjax.metrics import ANetMetric
from actionjax.metrics.anet_metric import evaluate_proposals, random_proposals
from actionjax.registry import METRICS

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures', 'localizers')
with open(os.path.join(HERE, 'localizers.json')) as _f:
    INFO = json.load(_f)


def test_ar_an_and_auc_equal_mmaction2s():
    """Five videos, 20-140 proposals each (some near a segment), 1-3 segments each."""
    videos = INFO['metric']['videos']
    results = evaluate_proposals({v['video_name']: v['proposal_list'] for v in videos},
                                 {v['video_name']: v['annotations'] for v in videos})
    assert results == INFO['metric']['results']


@pytest.fixture(scope='module')
def dataset():
    """The two videos the BMN goldens describe (durations, segments), as an ActivityNetDataset."""
    root = os.path.join(HERE, 'anet_tiny')
    return build_dataset(dict(type='ActivityNetDataset', ann_file=os.path.join(root, 'anno.json'),
                              data_prefix=dict(video=os.path.join(root, 'features')), test_mode=True,
                              pipeline=[dict(type='LoadLocalizationFeature')]))


def bmn_predictions() -> dict[str, np.ndarray]:
    arrays = np.load(os.path.join(HERE, 'bmn_tiny.npz'))
    return {key: arrays[key] for key in ('confidence_map', 'start', 'end')}


def test_metric_post_processes_per_batch_and_writes_activitynet_json(dataset, tmp_path):
    """Batches in any order and size: the proposals are MMAction2's BMN.predict lists, the json
    is ActivityNet's format, the numbers are those of the lists."""
    out = tmp_path / 'results.json'
    metric = METRICS.build(dict(type='ANetMetric', metric_type='AR@AN', model=INFO['bmn'],
                                dump_config=dict(out=str(out), output_format='json')))
    predictions = bmn_predictions()
    for rows in ([1], [0]):
        metric.process({k: v[rows] for k, v in predictions.items()}, dict(index=np.array(rows)))
    results = metric.compute(dataset)
    dumped = json.loads(out.read_text())
    assert dumped['version'] == 'VERSION 1.3' and dumped['external_data'] == {}
    assert dumped['results'] == {'tiny1': INFO['bmn_proposals'][1], 'tiny0': INFO['bmn_proposals'][0]}
    names = ['v_tiny1', 'v_tiny0']
    expected = evaluate_proposals(dict(zip(names, INFO['bmn_proposals'][::-1], strict=True)),
                                  {n: dataset.video_infos[int(n[-1])]['annotations'] for n in names})
    assert results == expected


def test_metric_options_and_errors(dataset):
    metric = ANetMetric(metric_type='AR@AN', model=INFO['bmn'],
                        metric_options={'AR@AN': dict(max_avg_proposals=10, temporal_iou_thresholds=[0.5])})
    metric.process(bmn_predictions(), dict(index=np.array([0, 1])))
    results = metric.compute(dataset)
    assert set(results) == {'auc', 'AR@1', 'AR@5', 'AR@10', 'AR@100'}
    with pytest.raises(ValueError, match='needs the localizer'):
        ANetMetric(metric_type='AR@AN').process(bmn_predictions(), dict(index=np.array([0, 1])))
    with pytest.raises(ValueError, match="'AR@AN' or 'TEM'"):
        ANetMetric(metric_type='mAP')
    with pytest.raises(ValueError, match='dump_config=dict'):
        ANetMetric(metric_type='TEM', model=INFO['tem'])


def test_tem_results_are_written_as_csv_for_pgm(dataset, tmp_path):
    """metric_type='TEM': one csv per video (action, start, end, tmin, tmax), no numbers."""
    arrays = np.load(os.path.join(HERE, 'tem_tiny.npz'))
    metric = ANetMetric(metric_type='TEM', model=INFO['tem'], dump_config=dict(out=str(tmp_path / 'tem')))
    output = arrays['output']
    metric.process(dict(action=output[:, 0], start=output[:, 1], end=output[:, 2]),
                   dict(index=np.array([0, 1])))
    assert metric.compute(dataset) == {}
    for i, name in enumerate(['v_tiny0', 'v_tiny1']):
        path = tmp_path / 'tem' / f'{name}.csv'
        assert path.read_text().splitlines()[0] == 'action,start,end,tmin,tmax'
        np.testing.assert_allclose(np.loadtxt(path, delimiter=',', skiprows=1), arrays['tem_results'][i],
                                   rtol=1e-6)


def test_random_proposals_are_a_weak_baseline():
    videos = INFO['metric']['videos']
    random = evaluate_proposals(random_proposals(videos, 100, seed=0),
                                {v['video_name']: v['annotations'] for v in videos})
    assert random['AR@100'] < INFO['metric']['results']['AR@100']
    assert 0 < random['auc'] < INFO['metric']['results']['auc']


def test_random_baseline_and_prefix_are_reported_beside(dataset):
    metric = ANetMetric(metric_type='AR@AN', model=INFO['bmn'], random_baseline=True, prefix='val')
    metric.process(bmn_predictions(), dict(index=np.array([0, 1])))
    results = metric.compute(dataset)
    names = ['auc', 'AR@1', 'AR@5', 'AR@10', 'AR@100']
    assert list(results) == [f'val/{n}' for n in names] + [f'val/random/{n}' for n in names]
