"""X3D, X3DHead and C3D against golden outputs of MMAction2 1.2.0 (tests/fixtures/x3d_c3d).

The fixtures were made by make_fixtures.py there with MMAction2's own model code: small
recognizers with random weights and BatchNorm statistics, their checkpoints, an input
batch and MMAction2's backbone features, per-view logits and clip-averaged scores.
The configs below are the fixtures' MMAction2 configs, unchanged.
"""

from __future__ import annotations

import gzip
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

from actionjax.config import Config
from actionjax.models import build_model
from actionjax.models.backbones import C3D, X3D
from actionjax.models.heads import X3DHead
from convert import mmaction2 as mm

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures', 'x3d_c3d')
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RTOL = 1e-4  # of max |value|, as the issue states parity


class NarrowC3D(C3D):
    """C3D with the fixture's narrowed widths (MMAction2's C3D has no width argument)."""

    conv_channels = (4, 8, 8, 8, 8, 8, 8, 8)
    fc_channels = 32


X3D_PRE = dict(type='ActionDataPreprocessor', mean=[114.75] * 3, std=[57.38] * 3, format_shape='NCTHW')
C3D_PRE = dict(type='ActionDataPreprocessor', mean=[104, 117, 128], std=[1, 1, 1], format_shape='NCTHW')
C3D_HEAD = dict(type='I3DHead', num_classes=5, in_channels=32, spatial_type=None, dropout_ratio=0.5,
                init_std=0.01, average_clips='prob')
CONFIGS = {
    'x3d_tiny': dict(
        type='Recognizer3D',
        backbone=dict(type='X3D', gamma_w=0.34, gamma_b=2.25, gamma_d=0.5, num_stages=3,
                      spatial_strides=(1, 2, 2)),
        cls_head=dict(type='X3DHead', in_channels=72, num_classes=5, spatial_type='avg', dropout_ratio=0.5,
                      fc1_bias=False, average_clips='prob'),
        data_preprocessor=X3D_PRE),
    'x3d_tiny_se_all': dict(
        type='Recognizer3D',
        backbone=dict(type='X3D', gamma_w=0.34, gamma_b=1.5, gamma_d=1.0, num_stages=2,
                      spatial_strides=(2, 2), se_style='all', se_ratio=0.25),
        cls_head=dict(type='X3DHead', in_channels=24, num_classes=5, spatial_type='max', dropout_ratio=0.5,
                      fc1_bias=True, average_clips='prob'),
        data_preprocessor=X3D_PRE),
    'c3d_tiny': dict(
        type='Recognizer3D',
        backbone=dict(type=NarrowC3D, pretrained=None, style='pytorch', conv_cfg=dict(type='Conv3d'),
                      norm_cfg=None, act_cfg=dict(type='ReLU'), out_dim=8 * 4 * 4, dropout_ratio=0.5,
                      init_std=0.005),
        cls_head=C3D_HEAD, data_preprocessor=C3D_PRE),
    'c3d_tiny_bn': dict(
        type='Recognizer3D',
        backbone=dict(type=NarrowC3D, norm_cfg=dict(type='BN3d'), out_dim=8 * 4 * 4),
        cls_head=C3D_HEAD, data_preprocessor=C3D_PRE),
}


def assert_close(actual, expected, what: str) -> None:
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f'{what}: shape {actual.shape} != {expected.shape}'
    err = np.abs(actual - expected).max() / np.abs(expected).max()
    assert err < RTOL, f'{what}: max abs diff / max |value| = {err:.2e}'


def count(tree) -> int:
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


class Converted:
    """A fixture model: config, converted variables, golden outputs."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.cfg = dict(model=CONFIGS[name])
        self.pth = os.path.join(HERE, f'{name}.pth')
        self.golden = dict(np.load(os.path.join(HERE, f'{name}.npz')))
        self.variables = mm.convert_checkpoint(self.pth, self.cfg)
        self.model = build_model(self.cfg)

    def outputs(self) -> tuple[np.ndarray, ...]:
        """Backbone features, per-view logits and averaged scores, from one jitted call."""
        def run(variables, imgs):
            def all_three(model, imgs):
                return model.extract_feat(imgs), model.logits(imgs), model(imgs)
            return self.model.apply(variables, imgs, method=all_three)
        return tuple(map(np.asarray, jax.jit(run)(self.variables, self.golden['imgs'])))


@pytest.fixture(scope='module', params=sorted(CONFIGS))
def converted(request) -> Converted:
    return Converted(request.param)


def test_features_logits_and_scores_match_mmaction2(converted):
    features, logits, scores = converted.outputs()
    assert_close(features, converted.golden['features'], f'{converted.name} backbone features')
    assert_close(logits, converted.golden['logits'], f'{converted.name} logits')
    assert_close(scores, converted.golden['scores'], f'{converted.name} scores')


def test_parameter_count_equals_mmaction2(converted):
    assert count(converted.variables['params']) == int(converted.golden['num_params'])
    stats = jax.tree.leaves(converted.variables.get('batch_stats', {}))
    assert all(not np.allclose(s, 0) and not np.allclose(s, 1) for s in stats)  # randomised, converted


def test_reverse_conversion_reproduces_the_checkpoint(converted, tmp_path):
    out = tmp_path / 'converted'
    mm.convert_checkpoint(converted.pth, converted.cfg, out=out)
    back = tmp_path / 'back.pth'
    mm.export_checkpoint(out, converted.cfg, back)
    original = mm.torch_load(converted.pth)['state_dict']
    reverse = torch.load(back, weights_only=True)['state_dict']
    assert list(reverse) == list(original)  # same keys, same order (num_batches_tracked included)
    for key, value in original.items():
        assert reverse[key].dtype == value.dtype and torch.equal(reverse[key], value), key


# ------------------------------------------------------------------ full size: names, shapes, counts

with gzip.open(os.path.join(HERE, 'full_size_keys.json.gz'), 'rt') as f:
    FULL_SIZE = json.load(f)


@pytest.mark.parametrize('name,config', [('x3d_s', 'configs/x3d.py'), ('c3d', 'configs/c3d.py')])
def test_full_size_recipe_has_mmaction2s_keys_shapes_and_parameter_count(name, config):
    cfg = Config.fromfile(os.path.join(REPO, config))
    shapes = mm.variable_shapes(cfg)  # nothing is computed
    ours = mm.variables_to_state_dict(jax.tree.map(lambda s: np.empty(s.shape, np.int8), shapes))
    expected = FULL_SIZE[name]
    assert {k: list(v.shape) for k, v in ours.items()} == dict(map(tuple, expected['keys']))
    assert count(shapes['params']) == expected['num_params']


# ------------------------------------------------------------------ training: jit, freezing, remat

def train_step_grads(model, variables, imgs, labels):
    """Gradients of the cross-entropy of a train-mode forward, and the BatchNorm updates."""
    def loss_fn(params):
        scores, updates = model.apply({**variables, 'params': params}, imgs, train=True,
                                      rngs={'dropout': jax.random.key(0)}, mutable=['batch_stats'])
        labels_per_view = jnp.repeat(labels, scores.shape[0] // labels.shape[0])
        return optax.softmax_cross_entropy_with_integer_labels(scores, labels_per_view).mean(), updates
    return jax.jit(jax.grad(loss_fn, has_aux=True))(variables['params'])


def x3d_variant(**backbone) -> dict:
    base = CONFIGS['x3d_tiny_se_all']
    return dict(model=dict(base, backbone=dict(base['backbone'], **backbone)))


def test_x3d_jit_forward_backward_frozen_stages_and_with_cp():
    fixture = np.load(os.path.join(HERE, 'x3d_tiny_se_all.npz'))
    imgs, labels = jnp.asarray(fixture['imgs']), jnp.array([3])
    variables = mm.convert_checkpoint(os.path.join(HERE, 'x3d_tiny_se_all.pth'), x3d_variant())
    frozen = build_model(x3d_variant(frozen_stages=1))
    assert frozen.frozen_prefixes() == ('backbone.conv1_s.', 'backbone.conv1_t.', 'backbone.layer1.')
    grads, updates = train_step_grads(frozen, variables, imgs, labels)
    assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
    assert np.abs(grads['backbone']['conv1_s']['conv']['kernel']).max() > 0
    # the stem and layer1 keep their BN statistics (eval mode); the rest update theirs
    old, new = variables['batch_stats']['backbone'], updates['batch_stats']['backbone']
    for part in old:
        same = jax.tree.leaves(jax.tree.map(np.array_equal, new[part], old[part]))
        assert all(same) if part in ('conv1_t', 'layer1') else not any(same), part

    # with_cp rematerialises each block in the backward pass: the same gradients
    grads_cp, updates_cp = train_step_grads(build_model(x3d_variant(frozen_stages=1, with_cp=True)),
                                            variables, imgs, labels)
    jax.tree.map(lambda a, b: assert_close(a, b, 'with_cp gradient'), grads_cp, grads)
    jax.tree.map(lambda a, b: assert_close(a, b, 'with_cp BN update'), updates_cp, updates)


def test_x3d_norm_eval_keeps_statistics_and_requires_grad_false_freezes_norms():
    backbone = X3D(gamma_w=0.34, gamma_d=0.5, num_stages=2, spatial_strides=(2, 2), norm_eval=True,
                   norm_cfg=dict(type='BN3d', requires_grad=False))
    x = jnp.ones((1, 2, 16, 16, 3))
    variables = jax.jit(backbone.init)(jax.random.key(0), x)
    _, updates = jax.jit(lambda v: backbone.apply(v, x, train=True, mutable=['batch_stats']))(variables)
    jax.tree.map(np.testing.assert_array_equal, updates['batch_stats'], variables['batch_stats'])
    prefixes = backbone.frozen_prefixes()
    assert prefixes[0] == 'conv1_t.bn.' and prefixes[-1] == 'conv5.bn.'
    assert 'layer1.0.downsample.bn.' in prefixes and 'layer2.0.conv2.bn.' in prefixes


def test_c3d_jit_forward_backward_and_its_fixed_clip_size():
    fixture = np.load(os.path.join(HERE, 'c3d_tiny.npz'))
    cfg = dict(model=CONFIGS['c3d_tiny'])
    variables = mm.convert_checkpoint(os.path.join(HERE, 'c3d_tiny.pth'), cfg)
    grads, _ = train_step_grads(build_model(cfg), variables, jnp.asarray(fixture['imgs']), jnp.array([1]))
    assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
    assert np.abs(grads['backbone']['conv1a']['conv']['kernel']).max() > 0

    small = jnp.zeros((1, 16, 56, 56, 3))  # out_dim follows the clip: 8 x 1 x 2 x 2 here
    assert NarrowC3D(out_dim=32).init_with_output(jax.random.key(0), small)[0].shape == (1, 32)
    with pytest.raises(ValueError, match=r'out_dim is 128.*\(16, 112, 112\)'):
        NarrowC3D(out_dim=128).init(jax.random.key(0), small)


def test_argument_errors_name_the_config_key():
    with pytest.raises(ValueError, match='backbone.se_style'):
        X3D(se_style='quarter')
    with pytest.raises(ValueError, match='backbone.spatial_strides'):
        X3D(num_stages=2)
    with pytest.raises(ValueError, match='backbone.se_ratio'):
        X3D(se_ratio=0)
    with pytest.raises(NotImplementedError, match='backbone.norm_cfg'):
        X3D(norm_cfg=dict(type='GN'))
    with pytest.raises(ValueError, match='cls_head.spatial_type'):
        X3DHead(num_classes=5, in_channels=8, spatial_type=None)
    with pytest.raises(ValueError, match='in_channels is 16'):
        X3DHead(num_classes=5, in_channels=16).init(jax.random.key(0), jnp.zeros((1, 2, 3, 3, 8)))
    with pytest.raises(ValueError, match='backbone.style'):
        C3D(style='tf')
