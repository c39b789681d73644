"""Evaluation and testing with a checkpoint converted from MMAction2.

The checkpoint is the converter's golden fixture (tests/fixtures/convert/
tsn_r50_tiny_0x.pth: MMAction2's TSN with ResNet-50's first stage, 5 classes,
random weights, written as an MMAction2 0.x checkpoint), converted with
``python -m convert.mmaction2`` and run on the tiny synthetic videos.
"""

from __future__ import annotations

import json
import logging
import os

import jax
import numpy as np
import pytest
from engine_utils import NUM_VAL, REPO, TINY_CONFIG, tiny_workspace

from actionjax import demo, test, train
from actionjax.config import Config
from actionjax.data import build_dataloader, build_dataset
from actionjax.engine import build
from actionjax.engine.evaluation import build_metrics, run_evaluation
from actionjax.engine.sharding import batch_sharded, make_mesh, replicated
from actionjax.engine.steps import make_eval_step
from actionjax.models import build_model
from actionjax.runtime_config import to_runtime_config

CONVERT = os.path.join(REPO, 'tests', 'fixtures', 'convert')


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    """(workspace, config path, converted checkpoint dir) with the tiny data and the 5-class TSN."""
    from convert import mmaction2

    root = tiny_workspace(str(tmp_path_factory.mktemp('eval')))
    model = dict(Config.fromfile(os.path.join(CONVERT, 'tsn_r50_tiny.py')).model.to_dict(), _delete_=True)
    config = os.path.join(root, 'tsn_r50_tiny_data.py')
    with open(config, 'w') as f:
        f.write(f'_base_ = [{TINY_CONFIG!r}]\nmodel = {model!r}\n')
    ckpt = os.path.join(root, 'tsn_r50_tiny')
    source = os.path.join(CONVERT, 'tsn_r50_tiny_0x.pth')
    assert mmaction2.main([source, '--config', config, '--out', ckpt]) == 0
    return root, config, ckpt


def _val_labels(root: str) -> list[int]:
    with open(os.path.join(root, 'tiny_synthetic', 'appearance', 'val_list.txt')) as f:
        return [int(line.split()[1]) for line in f]


def test_every_sample_is_scored_exactly_once_when_the_batch_does_not_divide_the_set(converted, monkeypatch):
    root, config, ckpt = converted
    monkeypatch.chdir(root)
    cfg = to_runtime_config(Config.fromfile(config))
    dataset = build_dataset(cfg, 'data.val', test_mode=True)
    model = build_model(cfg)
    mesh = make_mesh()
    variables = jax.device_put(build.checkpoint_variables(model, build.sample_batch(dataset), ckpt),
                               replicated(mesh))
    step = make_eval_step(model, replicated(mesh), batch_sharded(mesh))
    outputs = {}
    for batch_size in (4, 5):  # 10 videos: 4 + 4 + 2 real rows and 2 padded; 5 + 5, no padding
        loader = build_dataloader(dataset, batch_size=batch_size)
        valid = [int(b['valid'].sum()) for b in loader]
        kept = _Keep()
        results, unreadable = run_evaluation(step, variables, loader, batch_sharded(mesh),
                                             [kept, *build_metrics(cfg.val_metrics)], dataset)
        outputs[batch_size] = np.concatenate(kept.scores), np.concatenate(kept.labels), results
        assert sum(valid) == NUM_VAL and unreadable == []
    assert valid == [5, 5]
    scores, labels, results = outputs[4]
    assert scores.shape == (NUM_VAL, 5) and labels.tolist() == _val_labels(root)
    np.testing.assert_allclose(scores, outputs[5][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)  # average_clips='prob'
    assert results == outputs[5][2] and set(results) == {'top1_acc', 'top5_acc', 'mean_class_accuracy'}


class _Keep:
    """A metric that keeps what it is given."""

    def __init__(self):
        self.scores, self.labels = [], []

    def process(self, predictions, batch):
        self.scores.append(predictions['scores'])
        self.labels.append(batch['label'])

    def compute(self, dataset=None):
        return {}


def test_test_cli_multi_clip_multi_crop_on_a_converted_checkpoint(converted, monkeypatch, capsys):
    root, config, ckpt = converted
    monkeypatch.chdir(root)
    results = test.main(['--config', config, '--checkpoint', ckpt, '--out', 'out/results.json',
                         '--eval', 'top_k_accuracy', 'mean_class_accuracy'])
    printed = capsys.readouterr().out
    assert set(results) == {'top1_acc', 'top5_acc', 'mean_class_accuracy'}
    assert f'top1_acc: {results["top1_acc"]:.4f}' in printed
    with open('out/results.json') as f:
        saved = json.load(f)
    assert saved['num_videos'] == NUM_VAL and saved['labels'] == _val_labels(root)  # 4 batches of 3, 2 padded
    assert saved['unreadable'] == [] and saved['num_unreadable'] == 0
    assert saved['metrics'] == results
    # the first video's score equals the converted model applied to its 4 clips x 3 crops
    from actionjax.apis import init_recognizer

    cfg = Config.fromfile(config)
    clip = build_dataset(to_runtime_config(cfg), 'data.test', test_mode=True)[0]['imgs']
    assert clip.shape == (12, 16, 16, 3)
    expected = init_recognizer(cfg, ckpt).predict(clip[None])[0]
    np.testing.assert_allclose(saved['scores'][0], expected, rtol=1e-5, atol=1e-6)


def test_load_from_fills_matching_variables_and_lists_the_head_it_skips(converted, monkeypatch, caplog):
    root, config, ckpt = converted
    monkeypatch.chdir(root)
    source = build.read_variables(ckpt)
    for num_classes, skipped in ((5, []), (4, ['cls_head.fc_cls.bias', 'cls_head.fc_cls.weight'])):
        cfg = to_runtime_config(Config.fromfile(config))
        cfg.model.cls_head.num_classes = num_classes
        model = build_model(cfg)
        init = build.init_variables(model, {'imgs': np.zeros((1, 2, 16, 16, 3), np.uint8)}, seed=0)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger='actionjax'):
            loaded = build.load_from(init, ckpt)
        warned = ' '.join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
        assert sorted(name for name in skipped if name in warned) == skipped
        if not skipped:
            assert 'size mismatch' not in warned and 'missing' not in warned
        np.testing.assert_array_equal(loaded['params']['backbone']['conv1']['conv']['kernel'],
                                      source['params']['backbone']['conv1']['conv']['kernel'])
        np.testing.assert_array_equal(loaded['batch_stats']['backbone']['layer1']['0']['conv3']['bn']['var'],
                                      source['batch_stats']['backbone']['layer1']['0']['conv3']['bn']['var'])
        head = loaded['params']['cls_head']['fc_cls']['kernel']
        np.testing.assert_array_equal(head, source['params']['cls_head']['fc_cls']['kernel'] if not skipped
                                      else init['params']['cls_head']['fc_cls']['kernel'])


def test_fine_tune_a_converted_checkpoint_into_a_4_class_head(converted, monkeypatch):
    root, config, ckpt = converted
    monkeypatch.chdir(root)
    out = train.main(['--config', config, '--load-from', ckpt, '--work-dir', 'finetune',
                      '--cfg-options', 'model.cls_head.num_classes=4', 'total_epochs=1'])
    log = open(next(os.path.join('finetune', n) for n in os.listdir('finetune') if n.endswith('.log'))).read()
    assert 'size mismatch' in log and 'cls_head.fc_cls.weight' in log
    assert int(out['state'].step) == 4 and out['eval']['top1_acc'] >= 0.0
    assert np.asarray(out['state'].params['cls_head']['fc_cls']['kernel']).shape == (256, 4)
    # the Python API reads training checkpoints too, with the resolved config the run wrote
    from actionjax.apis import init_recognizer
    resolved = os.path.join('finetune', os.path.basename(config))
    recognizer = init_recognizer(resolved, os.path.join('finetune', 'latest'))
    np.testing.assert_array_equal(recognizer.variables['params']['cls_head']['fc_cls']['kernel'],
                                  out['state'].params['cls_head']['fc_cls']['kernel'])


def test_demo_prints_the_top_labels_of_a_video(converted, monkeypatch, capsys):
    root, config, ckpt = converted
    monkeypatch.chdir(root)
    with open('labels.txt', 'w') as f:
        f.write('\n'.join(f'class_{i}' for i in range(5)) + '\n')
    video = os.path.join('tiny_synthetic', 'appearance', 'videos', 'val', '000000.mp4')
    top = demo.main([video, '--config', config, '--checkpoint', ckpt, '--label-map', 'labels.txt'])
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == 'The top-5 labels with corresponding scores are:'
    assert [line.split(':')[0] for line in printed[1:]] == [name for name, _ in top]
    scores = [score for _, score in top]
    assert scores == sorted(scores, reverse=True) and sum(scores) == pytest.approx(1.0, abs=1e-4)


def test_backbone_pretrained_names_a_converted_checkpoint(converted, monkeypatch):
    root, config, ckpt = converted
    monkeypatch.chdir(root)
    cfg = to_runtime_config(Config.fromfile(config))
    cfg.model.backbone.pretrained = ckpt  # a whole recognizer contributes its backbone
    cfg.model.cls_head.num_classes = 4
    init = build.init_variables(build_model(cfg), {'imgs': np.zeros((1, 2, 16, 16, 3), np.uint8)}, seed=0)
    loaded = build.load_pretrained(init, cfg)
    source = build.read_variables(ckpt)
    backbones = (jax.tree.leaves(v['params']['backbone']) for v in (loaded, source))
    for a, b in zip(*backbones, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded['params']['cls_head']['fc_cls']['kernel'],
                                  init['params']['cls_head']['fc_cls']['kernel'])
    cfg.model.backbone.pretrained = 'torchvision://resnet50'
    with pytest.raises(ValueError, match='convert.torchvision'):
        build.load_pretrained(init, cfg)
