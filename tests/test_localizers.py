"""BMN and BSN's TEM / PEM against golden outputs, targets, losses and proposals of MMAction2 1.2.0.

The fixtures under tests/fixtures/localizers/ were made by make_fixtures.py there with
MMAction2's own model code: small models with random weights, their checkpoints, inputs,
raw outputs, training targets for given ground truth, loss terms (with the random draws
of the losses recorded) and post-processed proposal lists.
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from actionjax.models.localizers import build_localizer
from actionjax.models.localizers.bmn import bm_mask
from actionjax.models.localizers.labels import bmn_targets, tem_targets
from actionjax.models.losses import BMNLoss
from actionjax.models.losses.bmn_loss import pem_sample_weights
from actionjax.proposals import bmn_candidates, soft_nms
from actionjax.registry import LOSSES
from convert import mmaction2 as mm

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures', 'localizers')
with open(os.path.join(HERE, 'localizers.json')) as _f:
    INFO = json.load(_f)
RTOL = 1e-4  # raw outputs: max |diff| over the spread of MMAction2's values


def assert_close(actual, expected, what: str, rtol: float = RTOL) -> None:
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f'{what}: shape {actual.shape} != {expected.shape}'
    err = np.abs(actual - expected).max() / (expected.max() - expected.min())
    assert err < rtol, f'{what}: max abs diff / spread = {err:.2e}'


class Golden:
    """A fixture model converted from its MMAction2 checkpoint, with its golden arrays."""

    def __init__(self, name: str) -> None:
        self.cfg = INFO[name]
        self.model = build_localizer(self.cfg)
        self.arrays = dict(np.load(os.path.join(HERE, f'{name}_tiny.npz')))
        self.state_dict = mm.read_checkpoint(os.path.join(HERE, f'{name}_tiny.pth'))[0]
        self.variables = mm.convert_checkpoint(os.path.join(HERE, f'{name}_tiny.pth'), dict(model=self.cfg))

    def apply(self, *args, **kwargs):
        return self.model.apply(self.variables, *args, **kwargs)


@pytest.fixture(scope='module')
def bmn() -> Golden:
    return Golden('bmn')


@pytest.fixture(scope='module')
def tem() -> Golden:
    return Golden('tem')


@pytest.fixture(scope='module')
def pem() -> Golden:
    return Golden('pem')


def bmn_batch(g: Golden, prefix: str = '') -> dict[str, np.ndarray]:
    return dict(raw_feature=g.arrays['raw_feature'], gt_bbox=g.arrays[f'{prefix}gt_bbox'],
                num_instances=g.arrays[f'{prefix}num_instances'])


# ----------------------------------------------------------------------------- BMN

def test_bmn_sample_mask_is_mmaction2s(bmn):
    """The boundary-matching sample mask, built in numpy, equals MMAction2's bit for bit."""
    buffers = bmn.model.torch_buffers()
    np.testing.assert_array_equal(buffers['sample_mask'], bmn.state_dict['sample_mask'])
    np.testing.assert_array_equal(buffers['bm_mask'], bmn.state_dict['bm_mask'])


def test_bmn_raw_outputs(bmn):
    out = jax.jit(lambda v, x: bmn.model.apply(v, x))(bmn.variables, bmn.arrays['raw_feature'])
    for key in ('confidence_map', 'start', 'end'):
        assert_close(out[key], bmn.arrays[key], f'BMN {key}')


@pytest.mark.parametrize('prefix', ['', 'edges_'])
def test_bmn_targets(bmn, prefix):
    """IoU map and boundary targets agree, and fall on the same side of every loss threshold:
    both ground truths put overlaps exactly on one (the 'edges' one has segments on the
    snippet grid and at the video's ends)."""
    batch = bmn_batch(bmn, prefix)
    targets = bmn_targets(batch['gt_bbox'], batch['num_instances'], bmn.cfg['temporal_dim'])
    thresholds = dict(gt_iou_map=(0.0, 0.3, 0.7, 0.9), gt_start=(0.5,), gt_end=(0.5,))
    for (name, limits), value in zip(thresholds.items(), targets, strict=True):
        expected = bmn.arrays[prefix + name]
        np.testing.assert_allclose(value, expected, atol=3e-7, err_msg=name)
        for limit in limits:
            np.testing.assert_array_equal(np.asarray(value) > limit, expected > limit,
                                          err_msg=f'{name} > {limit}')


def test_bmn_loss_terms(bmn):
    """BMNLoss on MMAction2's outputs and targets, and on ours, with MMAction2's random draws."""
    a = bmn.arrays
    expected = dict(loss_tem=a['tem_loss'], loss_pem_reg=10 * a['pem_reg_loss'],
                    loss_pem_cls=a['pem_cls_loss'])
    loss = BMNLoss()
    uniforms = (a['uniform_m'], a['uniform_l'])
    mask = bm_mask(bmn.cfg['temporal_dim'])
    theirs = loss(a['confidence_map'], a['start'], a['end'], a['gt_iou_map'], a['gt_start'], a['gt_end'],
                  mask, uniforms=uniforms)
    out = bmn.apply(a['raw_feature'])
    targets = bmn_targets(a['gt_bbox'], a['num_instances'], bmn.cfg['temporal_dim'])
    ours = loss(out['confidence_map'], out['start'], out['end'], *targets, mask, uniforms=uniforms)
    for terms in (theirs, ours):
        for key, value in expected.items():
            assert float(terms[key]) == pytest.approx(float(value), rel=1e-5), key
        assert float(sum(terms.values())) == pytest.approx(float(a['loss']), rel=1e-5)


def test_bmn_loss_method_draws_from_the_dropout_stream(bmn):
    """``model.loss(batch)``: the forward pass, the targets and BMNLoss with uniforms drawn
    from the 'dropout' rng (the engine's per-step randomness)."""
    key = jax.random.key(3)
    batch = bmn_batch(bmn)
    losses = bmn.apply(batch, rngs={'dropout': key}, method='loss')
    rng = bmn.model.apply(bmn.variables, rngs={'dropout': key}, method=lambda m: m.make_rng('dropout'))
    out = bmn.apply(batch['raw_feature'])
    targets = bmn_targets(batch['gt_bbox'], batch['num_instances'], bmn.cfg['temporal_dim'])
    expected = BMNLoss()(out['confidence_map'], out['start'], out['end'], *targets,
                         bm_mask(bmn.cfg['temporal_dim']), rng=rng)
    assert sorted(losses) == ['loss_pem_cls', 'loss_pem_reg', 'loss_tem']
    for k in losses:
        assert float(losses[k]) == pytest.approx(float(expected[k]), rel=1e-6), k


@pytest.mark.parametrize('video', [0, 1])
def test_bmn_proposals_equal_mmaction2s(bmn, video):
    """Post-processing (candidates, soft-NMS, top-k, seconds) of MMAction2's raw outputs gives
    MMAction2's proposal list exactly; of ours, the same segments with scores within 1e-5."""
    a = bmn.arrays
    info = INFO['video_infos'][video]
    golden = INFO['bmn_proposals'][video]
    theirs = {k: a[k][video] for k in ('confidence_map', 'start', 'end')}
    assert bmn.model.proposals(theirs, {}, info) == golden
    out = bmn.apply(a['raw_feature'][video:video + 1], method='__call__')
    ours = bmn.model.proposals({k: np.asarray(v[0]) for k, v in out.items()}, {}, info)
    assert [p['segment'] for p in ours] == [p['segment'] for p in golden]
    np.testing.assert_allclose([p['score'] for p in ours], [p['score'] for p in golden], rtol=1e-5)


def test_soft_nms_keeps_top_k_plus_one_and_breaks_ties_by_order():
    """MMAction2's loop stops after top_k + 1 picks; equal scores go in sorted order."""
    table = np.array([[0.0, 0.5, 0.9], [0.6, 0.9, 0.9], [0.1, 0.2, 0.5], [0.7, 0.8, 0.4]])
    picked = soft_nms(table, alpha=0.4, low_threshold=0.5, high_threshold=0.9, top_k=2)
    assert picked.shape == (3, 3)
    order = np.argsort(table[:, -1])[::-1]  # numpy's order among the tied 0.9s, as MMAction2 sees it
    np.testing.assert_array_equal(picked[:2, :2], table[order[:2], :2])


def test_bmn_candidates_start_and_end_bins():
    """A start is a local maximum or above half the maximum, and always snippet 0; an end
    likewise, and always the last snippet; a candidate ends strictly after it starts."""
    start = np.array([0.1, 0.9, 0.2, 0.3, 0.1], np.float32)
    end = np.array([0.1, 0.1, 0.8, 0.1, 0.05], np.float32)
    confidence = np.ones((2, 5, 5), np.float32)
    table = bmn_candidates(start, end, confidence)
    pairs = {(round(t0 * 5), round(t1 * 5)) for t0, t1 in table[:, :2]}
    assert pairs == {(0, 2), (1, 2), (0, 4), (1, 4), (3, 4)}


# ----------------------------------------------------------------------------- loss_bbox

@LOSSES.register_module(force=True)
class WeightedL1ForTest:
    """A user's regression loss: ``loss(pred, target, weight)``, the mmdet-style signature."""

    calls = 0

    def __call__(self, pred, target, weight=None):
        type(self).calls += 1
        return jnp.sum(weight * jnp.abs(pred - target)) / jnp.sum(weight)


def test_user_loss_bbox_trains_bmn_regression_term(bmn):
    """``loss_bbox=dict(type=...)`` from LOSSES replaces the IoU regression term (weighted by
    BMNLoss's weight_pem_reg) and its gradient reaches the confidence-map layers."""
    model = build_localizer(dict(bmn.cfg, loss_bbox=dict(type='WeightedL1ForTest')))
    batch = bmn_batch(bmn)
    key = jax.random.key(0)
    losses = model.apply(bmn.variables, batch, rngs={'dropout': key}, method='loss')
    rng = model.apply(bmn.variables, rngs={'dropout': key}, method=lambda m: m.make_rng('dropout'))
    out = bmn.apply(batch['raw_feature'])
    gt_iou_map, _, _ = bmn_targets(batch['gt_bbox'], batch['num_instances'], bmn.cfg['temporal_dim'])
    mask = bm_mask(bmn.cfg['temporal_dim'])
    gt_iou_map = gt_iou_map * mask
    weight = pem_sample_weights(gt_iou_map, mask, *jax.random.uniform(rng, (2,) + gt_iou_map.shape))
    reg = out['confidence_map'][:, 0]
    expected = 10 * jnp.sum(weight * jnp.abs(reg - gt_iou_map)) / jnp.sum(weight)
    assert float(losses['loss_pem_reg']) == pytest.approx(float(expected), rel=1e-5)
    assert WeightedL1ForTest.calls > 0

    def reg_loss(params):
        variables = dict(bmn.variables, params=params)
        return model.apply(variables, batch, rngs={'dropout': key}, method='loss')['loss_pem_reg']

    grads = jax.grad(reg_loss)(bmn.variables['params'])
    assert float(jnp.abs(grads['x_2d_p']['6']['kernel']).max()) > 0
    assert float(jnp.abs(grads['x_1d_s']['2']['kernel']).max()) == 0  # the start branch is not in it


# ----------------------------------------------------------------------------- TEM

def test_tem_outputs_targets_and_losses(tem):
    a = tem.arrays
    output = tem.apply(a['raw_feature'])['output']
    assert_close(output, a['output'], 'TEM output')
    targets = tem_targets(a['gt_bbox'], a['num_instances'], tem.cfg['temporal_dim'],
                          tem.cfg['boundary_ratio'])
    for name, value in zip(('label_action', 'label_start', 'label_end'), targets, strict=True):
        np.testing.assert_allclose(value, a[name], atol=3e-7, err_msg=name)
        np.testing.assert_array_equal(np.asarray(value) > 0.5, a[name] > 0.5, err_msg=name)
    losses = tem.apply(bmn_batch(tem), method='loss')
    assert sorted(losses) == ['loss_action', 'loss_end', 'loss_start']
    for key, value in losses.items():
        assert float(value) == pytest.approx(float(a[key]), rel=1e-5), key
    prediction = tem.apply(bmn_batch(tem), method='predict')
    for video in range(2):
        table = tem.model.tem_results({k: np.asarray(v[video]) for k, v in prediction.items()})
        assert_close(table[:, :3], a['tem_results'][video][:, :3], 'TEM result table')
        np.testing.assert_array_equal(table[:, 3:], a['tem_results'][video][:, 3:])


# ----------------------------------------------------------------------------- PEM

def pem_batch(g: Golden) -> dict[str, np.ndarray]:
    return {k: g.arrays[k] for k in ('bsp_feature', 'tmin', 'tmax', 'tmin_score', 'tmax_score',
                                     'reference_temporal_iou', 'num_instances')}


def test_pem_outputs_loss_and_proposals(pem):
    a = pem.arrays
    batch = pem_batch(pem)
    output = np.asarray(pem.apply(batch['bsp_feature'])['output'])
    for video, count in enumerate(a['num_instances']):
        assert_close(output[video, :count], a['output'][video, :count], 'PEM output')
    loss = pem.apply(batch, method='loss')
    assert float(loss['temporal_iou_loss']) == pytest.approx(float(a['temporal_iou_loss']), rel=1e-5)
    prediction = pem.apply(batch, method='predict')
    for video, info in enumerate(INFO['video_infos']):
        sample = {k: v[video] for k, v in batch.items()}
        golden = INFO['pem_proposals'][video]
        theirs = pem.model.proposals({'pem_output': a['output'][video, :, 0]}, sample, info)
        assert [(float(p['segment'][0]), float(p['segment'][1]), p['score']) for p in theirs] == \
            [(p['segment'][0], p['segment'][1], p['score']) for p in golden]
        ours = pem.model.proposals({'pem_output': np.asarray(prediction['pem_output'][video])}, sample, info)
        np.testing.assert_allclose([p['segment'] for p in ours], [p['segment'] for p in golden], rtol=1e-6)
        np.testing.assert_allclose([p['score'] for p in ours], [p['score'] for p in golden], rtol=1e-5)


# ----------------------------------------------------------------------------- conversion

@pytest.mark.parametrize('name', ['bmn', 'tem', 'pem'])
def test_conversion_round_trip(name, request, tmp_path):
    """MMAction2 -> actionjax -> MMAction2 gives the checkpoint's state_dict back, key for key
    (BMN's sample_mask and bm_mask included: checked on the way in, rebuilt on the way out)."""
    g = request.getfixturevalue(name)
    out = tmp_path / 'converted'
    assert mm.main([os.path.join(HERE, f'{name}_tiny.pth'), '--config', str(config_file(g, tmp_path)),
                    '--out', str(out)]) == 0
    assert mm.main(['--reverse', str(out), '--config', str(config_file(g, tmp_path)),
                    '--out', str(tmp_path / 'back.pth')]) == 0
    back = mm.read_checkpoint(tmp_path / 'back.pth')[0]
    assert list(back) == list(g.state_dict)
    for key, value in g.state_dict.items():
        np.testing.assert_array_equal(back[key], value, err_msg=key)


def config_file(g: Golden, tmp_path) -> str:
    path = tmp_path / 'model.py'
    path.write_text(f'model = {g.cfg!r}\n')
    return str(path)


def test_conversion_rejects_a_mask_of_another_configuration(bmn, tmp_path):
    """A BMN checkpoint converted with another boundary_ratio: its sample_mask says so."""
    cfg = dict(bmn.cfg, boundary_ratio=0.25)
    with pytest.raises(ValueError, match='sample_mask'):
        mm.convert_checkpoint(os.path.join(HERE, 'bmn_tiny.pth'), dict(model=cfg))


# ----------------------------------------------------------------------------- recipes

@pytest.mark.parametrize('config, count', [('bmn', 4978564), ('bsn_tem', 1403395), ('bsn_pem', 8705)])
def test_recipe_models_have_mmaction2s_parameter_counts(config, count):
    """configs/{bmn,bsn_tem,bsn_pem}.py build MMAction2's 400x100 models (trainable parameters;
    BMN's 32M-entry sample mask is a constant here, a frozen parameter there)."""
    from actionjax.config import Config

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cfg = Config.fromfile(os.path.join(repo, 'configs', f'{config}.py'))
    model = build_localizer(cfg['model'])
    shapes = jax.eval_shape(lambda: model.init({'params': jax.random.key(0)}, model.example_input()))
    assert sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(shapes)) == count
    assert cfg['val_evaluator']['type'] == 'ANetMetric' and 'model' not in cfg['val_evaluator']
    # the engine hands the run's model to a metric that takes one, as MMAction2's evaluators are written
    from actionjax.engine.evaluation import build_metrics
    from actionjax.runtime_config import to_runtime_config

    runtime = to_runtime_config(cfg)
    metric, = build_metrics(runtime.val_metrics, 'val_metrics', runtime.model)
    assert metric.model is not None


# ----------------------------------------------------------------------------- APIs

def test_init_localizer_and_inference_localizer(bmn, pem, tmp_path):
    """A converted checkpoint through init_localizer(...).raw and inference_localizer."""
    from actionjax.apis import inference_localizer, init_localizer

    out = tmp_path / 'bmn'
    mm.convert_checkpoint(os.path.join(HERE, 'bmn_tiny.pth'), dict(model=bmn.cfg), out=out)
    model = init_localizer(dict(model=bmn.cfg), out)
    raw = model.raw(bmn.arrays['raw_feature'])
    for key in ('confidence_map', 'start', 'end'):
        assert_close(raw[key], bmn.arrays[key], f'raw {key}')
    proposals = inference_localizer(model, bmn.arrays['raw_feature'][1], INFO['video_infos'][1])
    golden = INFO['bmn_proposals'][1]
    assert [p['segment'] for p in proposals] == [p['segment'] for p in golden]
    np.testing.assert_allclose([p['score'] for p in proposals], [p['score'] for p in golden], rtol=1e-5)

    model = init_localizer(dict(model=pem.cfg))  # random weights: the PEM path, shapes only
    count = int(pem.arrays['num_instances'][0])
    model.variables = pem.variables
    rows = {k: pem.arrays[k][0, :count] for k in ('tmin', 'tmax', 'tmin_score', 'tmax_score')}
    proposals = inference_localizer(model, pem.arrays['bsp_feature'][0, :count], INFO['video_infos'][0], rows)
    golden = INFO['pem_proposals'][0]
    np.testing.assert_allclose([p['score'] for p in proposals], [p['score'] for p in golden], rtol=1e-5)
    with pytest.raises(ValueError, match='does not match|missing'):
        init_localizer(dict(model=dict(bmn.cfg, hidden_dim_2d=4)), out)
