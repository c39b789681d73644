"""SSN (MMAction2 0.24.1): head outputs, STPP (train and test), SSNLoss and conversion against goldens.

tests/fixtures/ssn/make_fixtures.py made them with MMAction2 0.24.1's own code: a small SSN
(ResNet-18's first stage) with random weights, a training batch of two videos with their
sampled proposals, and a test case of per-frame features and proposal ticks.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from actionjax.config import Config
from actionjax.models.heads.ssn_head import stpp_test_pool
from actionjax.models.localizers import build_localizer
from actionjax.models.losses import SSNLoss
from actionjax.registry import LOSSES
from convert import mmaction2 as mm

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures', 'ssn')
SSN_TINY = Config.fromfile(os.path.join(HERE, 'ssn_tiny.py')).to_dict()  # the goldens' model
STPP, TRAIN_CFG, MODEL = SSN_TINY['stpp'], SSN_TINY['train_cfg'], SSN_TINY['model']
GOLDEN = dict(np.load(os.path.join(HERE, 'ssn_tiny.npz')))
BATCH = {k: GOLDEN[k] for k in ('imgs', 'proposal_scale_factor', 'proposal_type', 'proposal_labels',
                                'reg_targets')}


def assert_close(actual, expected, what: str, rtol: float = 1e-4) -> None:
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f'{what}: {actual.shape} != {expected.shape}'
    err = np.abs(actual - expected).max() / (expected.max() - expected.min())
    assert err < rtol, f'{what}: max abs diff / spread = {err:.2e}'


@pytest.fixture(scope='module')
def ssn():
    model = build_localizer(MODEL)
    return model, mm.convert_checkpoint(os.path.join(HERE, 'ssn_tiny.pth'), dict(model=MODEL))


def losses_of(outputs, **kwargs):
    return SSNLoss()(*outputs, GOLDEN['proposal_type'], GOLDEN['proposal_labels'], GOLDEN['reg_targets'],
                     TRAIN_CFG, **kwargs)


def test_head_outputs_and_losses(ssn):
    """STPPTrain + the three fc layers on the converted backbone's frame features, and SSNLoss's
    three terms (cross entropy, OHEM completeness hinge, smooth-L1 regression)."""
    model, variables = ssn
    outputs = jax.jit(lambda v, x, s: model.apply(v, x, s))(variables, BATCH['imgs'],
                                                            BATCH['proposal_scale_factor'])
    for name, value in zip(('activity', 'completeness', 'bbox'), outputs, strict=True):
        assert_close(value, GOLDEN[name], name)
    for given in (outputs, tuple(GOLDEN[k] for k in ('activity', 'completeness', 'bbox'))):
        losses = losses_of(given)
        assert sorted(losses) == ['loss_activity', 'loss_completeness', 'loss_reg']
        for key, value in losses.items():
            assert float(value) == pytest.approx(float(GOLDEN[key]), rel=1e-5), key


def test_test_scores_and_stpp_test_pooling(ssn):
    """MMAction2's prepare_test_fc + STPPTest: every frame scored for every STPP part, pooled
    over each proposal's ticks (proposals past the video's end and empty ones included)."""
    model, variables = ssn
    scores = model.cls_head.apply({'params': variables['params']['cls_head']}, GOLDEN['test_features'],
                                  method='test_scores')
    assert_close(scores, GOLDEN['test_scores'], 'test scores')
    pooled = stpp_test_pool(GOLDEN['test_scores'], GOLDEN['test_ticks'], GOLDEN['test_scale_factors'],
                            num_classes=5, stpp_stage=STPP)
    for name, value in zip(('test_activity', 'test_completeness', 'test_bbox'), pooled, strict=True):
        np.testing.assert_allclose(value, GOLDEN[name], rtol=2e-6, atol=1e-6, err_msg=name)


@LOSSES.register_module(force=True)
class L1RegressionForTest:
    """A user's regression loss for SSN's loss_bbox (mmdet-style signature)."""

    def __call__(self, pred, target, weight=None):
        return jnp.sum(weight * jnp.abs(pred - target)) / jnp.sum(weight)


def test_training_step_and_user_regression_loss(ssn):
    """model.loss(batch) in training mode (batch statistics, dropout) gives finite terms; a
    registered loss_bbox takes the regression term, and its gradient reaches the regressor."""
    _, variables = ssn
    model = build_localizer(dict(MODEL, loss_bbox=dict(type='L1RegressionForTest')))
    outputs = model.apply(variables, BATCH['imgs'], BATCH['proposal_scale_factor'])
    expected = losses_of(outputs, loss_bbox=L1RegressionForTest())['loss_reg']
    assert float(expected) != pytest.approx(float(GOLDEN['loss_reg']), rel=1e-3)  # not the default term

    one_video = {k: v[:1] for k, v in BATCH.items()}

    def reg_loss(params):
        losses, _ = model.apply(dict(variables, params=params), one_video, method='loss',
                                rngs={'dropout': jax.random.key(0)}, mutable=['batch_stats'])
        return losses['loss_reg'], losses

    (reg, losses), grads = jax.jit(jax.value_and_grad(reg_loss, has_aux=True))(variables['params'])
    assert all(np.isfinite(float(v)) for v in losses.values())
    assert float(jnp.abs(grads['cls_head']['regressor_fc']['kernel']).max()) > 0
    assert float(jnp.abs(grads['cls_head']['activity_fc']['kernel']).max()) == 0


def test_conversion_round_trip(tmp_path):
    config = tmp_path / 'ssn.py'
    config.write_text(f'model = {MODEL!r}\n')
    out = tmp_path / 'converted'
    assert mm.main([os.path.join(HERE, 'ssn_tiny.pth'), '--config', str(config), '--out', str(out)]) == 0
    assert mm.main(['--reverse', str(out), '--config', str(config), '--out', str(tmp_path / 'back.pth')]) == 0
    back = mm.read_checkpoint(tmp_path / 'back.pth')[0]
    original = mm.read_checkpoint(os.path.join(HERE, 'ssn_tiny.pth'))[0]
    assert list(back) == list(original)
    for key, value in original.items():
        np.testing.assert_array_equal(back[key], value, err_msg=key)


def test_recipe_model_has_mmaction2s_parameter_count():
    """configs/ssn.py builds MMAction2 0.24.1's SSN-R50 (23,919,761 parameters; BN statistics
    are batch_stats here, 53,120 values, buffers there)."""
    from actionjax.config import Config

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    model = build_localizer(Config.fromfile(os.path.join(repo, 'configs', 'ssn.py'))['model'])
    shapes = jax.eval_shape(lambda: model.init({'params': jax.random.key(0)}, model.example_input()))
    count = {k: sum(int(np.prod(x.shape)) for x in jax.tree.leaves(v)) for k, v in shapes.items()}
    assert count == {'params': 23919761, 'batch_stats': 53120}


# ----------------------------------------------------------------------------- evaluation

@pytest.mark.parametrize('name, evaluater', [('top2000', dict(top_k=2000, nms=0.2)),
                                             ('top6', dict(top_k=6, nms=0.4))])
def test_map_equals_mmaction2s_ssn_dataset_evaluate(name, evaluater):
    """mAP@0.10..0.90 (THUMOS'14 protocol) of per-proposal scores against a TAG proposal list:
    softmax x exp(completeness), top_k, regression, NMS, VOC average precision."""
    from actionjax.metrics.ssn_eval import SSNMetric

    golden = np.load(os.path.join(HERE, 'ssn_eval.npz'))
    from actionjax.metrics.ssn_eval import ground_truth_by_class

    assert ground_truth_by_class(os.path.join(HERE, 'tag_tiny.txt'))[0] == [
        'video_0000', 'video_0001', 'video_0002']  # video_0003 has no ground truth
    metric = SSNMetric(ann_file=os.path.join(HERE, 'tag_tiny.txt'), evaluater=evaluater)
    keys = ('activity_scores', 'completeness_scores', 'bbox_preds', 'relative_proposal_list')
    for v in range(3):
        result = {k: golden[f'{name}_{v}_{k}'][None] for k in keys}
        batch = dict(index=np.array([v]), relative_proposal_list=result['relative_proposal_list'])
        metric.process(result, batch)
    results = metric.compute()
    assert list(results) == [f'mAP@{t:.2f}' for t in np.arange(0.1, 1.0, 0.1)]
    np.testing.assert_array_equal(list(results.values()), golden[f'{name}_map'])


def test_metric_pools_predict_output_over_dataset_ticks():
    """SSNMetric on SSN.predict's per-frame test scores: pooled over each SSNDataset test sample's
    proposal ticks, regression de-normalised, mAP against the dataset's ground truth."""
    from actionjax.data import SSNDataset
    from actionjax.metrics.ssn_eval import SSNMetric

    assign = dict(positive_iou_threshold=0.7, background_iou_threshold=0.01, incomplete_iou_threshold=0.3,
                  background_coverage_threshold=0.02, incomplete_overlap_threshold=0.01)
    dataset = SSNDataset(os.path.join(HERE, 'tag_dataset.txt'), [],
                         dict(ssn=dict(TRAIN_CFG['ssn'], assigner=assign)),
                         dict(ssn=dict(sampler=dict(test_interval=6))), data_prefix=HERE, test_mode=True)
    metric = SSNMetric(model=MODEL, evaluater=dict(top_k=2000, nms=0.2))
    rng = np.random.default_rng(0)
    for index in range(len(dataset)):
        sample = dataset[index]
        frames = len(np.arange(0, sample['total_frames'] - 1, 6))
        scores = rng.standard_normal((1, frames, 6 + 5 * 5 + 10 * 5)).astype(np.float32)
        batch = {k: np.asarray(sample[k])[None] for k in ('proposal_tick_list', 'scale_factor_list',
                                                          'relative_proposal_list', 'reg_norm_consts')}
        metric.process({'test_scores': scores}, dict(batch, index=np.array([index])))
        pooled = metric._results[index]
        activity, _, bbox = stpp_test_pool(scores[0], sample['proposal_tick_list'],
                                           sample['scale_factor_list'], 5, STPP)
        np.testing.assert_array_equal(pooled['activity_scores'], activity)
        norm = sample['reg_norm_consts']
        np.testing.assert_allclose(pooled['bbox_preds'][:, :, 1], bbox.reshape(-1, 5, 2)[:, :, 1] * norm[1, 1]
                                   + norm[0, 1], rtol=1e-6)
    results = metric.compute(dataset)
    assert list(results) == [f'mAP@{t:.2f}' for t in np.arange(0.1, 1.0, 0.1)]
    # labels 4 and 5 have no ground truth in this list: their AP is NaN and so is the mean over
    # classes, as MMAction2 0.24.1 computes it
    assert np.isnan(list(results.values())).all()
