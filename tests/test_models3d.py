"""3D CNN recognizers (ResNet3d family) against golden outputs of MMAction2 1.2.0.

The fixtures under tests/fixtures/models3d/ were made by make_fixtures.py there with
MMAction2's own model code: shrunk I3D, SlowOnly, SlowFast, R(2+1)D and CSN recognizers
with random weights and BatchNorm statistics, their checkpoints, a uint8 batch of two
samples x two clips, MMAction2's backbone features, per-clip logits, clip-averaged
scores and parameter count; and the 2D -> 3D inflation of a random 2D ResNet.
"""

from __future__ import annotations

import functools
import gzip
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from actionjax.config import Config
from actionjax.models import build_model
from convert import mmaction2 as mm
from convert import torchvision as tv

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures', 'models3d')
RTOL = 1e-4  # relative to max |value|, the parity bound
NAMES = ['i3d_r50_tiny', 'i3d_r18_tiny', 'slowonly_r50_tiny', 'slowfast_r50_tiny', 'r2plus1d_r34_tiny',
         'ipcsn_r50_tiny', 'ircsn_r50_tiny']


def fixture(name: str) -> str:
    return os.path.join(HERE, name)


def assert_close(actual, expected, what: str) -> None:
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f'{what}: shape {actual.shape} != {expected.shape}'
    err = np.abs(actual - expected).max() / np.abs(expected).max()
    assert err < RTOL, f'{what}: max abs diff / max |value| = {err:.2e}'


class Golden:
    """A fixture model: config, converted variables and MMAction2's outputs."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.cfg = Config.fromfile(fixture(f'{name}.py'))
        self.pth = fixture(f'{name}.pth')
        self.golden = dict(np.load(fixture(f'{name}.npz')))
        self.variables = mm.convert_checkpoint(self.pth, self.cfg)
        self.model = build_model(self.cfg)

    @functools.cached_property
    def outputs(self) -> tuple:
        """(backbone features, per-clip logits) in one compiled forward."""
        def forward(module, imgs):
            feats = module.extract_feat(imgs)
            return feats, module.cls_head(feats).reshape(imgs.shape[0], imgs.shape[1], -1)

        fn = jax.jit(lambda v, x: self.model.apply(v, x, method=forward))
        return jax.device_get(fn(self.variables, self.golden['imgs']))


@functools.cache
def golden(name: str) -> Golden:
    return Golden(name)


# ------------------------------------------------------------------ parity with MMAction2

@pytest.mark.parametrize('name', NAMES)
def test_features_and_logits_match_mmaction2(name):
    model = golden(name)
    feats, logits = model.outputs
    if isinstance(feats, tuple):  # SlowFast: (slow, fast)
        assert_close(feats[0], model.golden['features_slow'], f'{name} slow pathway features')
        assert_close(feats[1], model.golden['features_fast'], f'{name} fast pathway features')
    else:
        assert_close(feats, model.golden['features'], f'{name} backbone features')
    assert_close(logits, model.golden['logits'], f'{name} logits')


def test_clip_averaged_scores_and_logits_layout():
    model = golden('i3d_r18_tiny')
    imgs = model.golden['imgs']
    scores = jax.jit(lambda v, x: model.model.apply(v, x))(model.variables, imgs)
    assert_close(scores, model.golden['scores'], 'i3d_r18_tiny scores (average_clips=prob)')
    logits = model.model.apply(model.variables, imgs, method='logits')
    assert logits.shape == imgs.shape[:2] + (5,)  # (N, V, classes): one row per clip
    assert_close(logits, model.golden['logits'], 'i3d_r18_tiny logits method')


@pytest.mark.parametrize('name', NAMES)
def test_parameter_count_equals_mmaction2(name):
    model = golden(name)
    count = sum(np.size(leaf) for leaf in jax.tree.leaves(model.variables['params']))
    assert count == int(model.golden['num_params'])


# ------------------------------------------------------------------ conversion both ways

@pytest.mark.parametrize('name', NAMES)
def test_reverse_conversion_reproduces_the_checkpoint(name, tmp_path):
    model = golden(name)
    mm.convert_checkpoint(model.pth, model.cfg, out=tmp_path / 'jax')
    exported = mm.export_checkpoint(tmp_path / 'jax', model.cfg, out=tmp_path / 'back.pth')['state_dict']
    original = mm.torch_load(model.pth)['state_dict']
    assert list(exported) == list(original)
    for key, value in original.items():
        assert exported[key].shape == value.shape, key
        assert exported[key].dtype == value.dtype, key
        assert bool((exported[key] == value).all()), key
    assert list(mm.torch_load(tmp_path / 'back.pth')['state_dict']) == list(original)


# ------------------------------------------------------------------ 2D -> 3D inflation

@pytest.mark.parametrize('name', ['i3d_r50_inflate', 'slowonly_r50_inflate'])
def test_pretrained2d_inflation_matches_mmaction2(name):
    backbone = dict(Config.fromfile(fixture(f'{name}.py'))['backbone'], pretrained=None)
    recognizer = build_model(dict(type='Recognizer3D', backbone=backbone,
                                  cls_head=dict(type='I3DHead', num_classes=3, in_channels=64)))
    imgs = np.zeros((1, 1, 8, 32, 32, 3), np.uint8)
    variables = jax.device_get(recognizer.init(jax.random.key(0), imgs))
    loaded = tv.load_pretrained_backbone(variables, fixture(f'{name}_2d.pth'))
    expected = np.load(fixture(f'{name}_inflated.npz'))
    slots = {mm.torch_key(s.collection, s.path): s for s in mm.target_slots(loaded).values()}
    inflated = [key for key in expected['inflated'] if not key.endswith('num_batches_tracked')]
    for key in inflated:
        slot = slots[f'backbone.{key}']
        value = mm.to_torch_layout(slot.path[-1], np.asarray(mm.get_leaf(loaded[slot.collection], slot.path)))
        np.testing.assert_array_equal(value, expected[key], err_msg=key)
    untouched = [k for k in slots if k.startswith('backbone.') and k[len('backbone.'):] not in inflated]
    assert untouched == [k for k in slots if '.non_local_block.' in k]
    for key in untouched:  # non-local blocks keep their initial values
        slot = slots[key]
        np.testing.assert_array_equal(mm.get_leaf(loaded[slot.collection], slot.path),
                                      mm.get_leaf(variables[slot.collection], slot.path))


# ------------------------------------------------------------------ training

def train_loss_fn(model, variables, imgs, labels):
    def loss_fn(params):
        scores, updates = model.apply({**variables, 'params': params}, imgs, train=True,
                                      rngs={'dropout': jax.random.key(1)}, mutable=['batch_stats'])
        labels_per_view = jnp.repeat(labels, imgs.shape[1])
        return optax.softmax_cross_entropy_with_integer_labels(scores, labels_per_view).mean(), updates
    return jax.jit(jax.value_and_grad(loss_fn, has_aux=True))


@pytest.mark.parametrize('name', ['i3d_r50_tiny', 'slowfast_r50_tiny'])
def test_jit_forward_and_backward(name):
    model = golden(name)
    imgs = model.golden['imgs'][:1]
    (loss, updates), grads = train_loss_fn(model.model, model.variables, imgs, jnp.array([3]))(
        model.variables['params'])
    assert np.isfinite(float(loss))
    norms = [float(jnp.abs(g).max()) for g in jax.tree.leaves(grads)]
    assert all(np.isfinite(norms)) and sum(n > 0 for n in norms) > 0.9 * len(norms)
    stats_before = jax.tree.leaves(model.variables['batch_stats'])
    stats_after = jax.tree.leaves(updates['batch_stats'])
    assert all(not np.allclose(a, b) for a, b in zip(stats_before, stats_after, strict=True))


# ------------------------------------------------------------------ frozen stages and norms

with gzip.open(fixture('freezing.json.gz'), 'rt') as f:
    FREEZING = json.load(f)


def merged(base: dict, overrides: dict) -> dict:
    out = dict(base)
    for key, value in overrides.items():
        out[key] = merged(base[key], value) if isinstance(value, dict) and key in base else value
    return out


@pytest.mark.parametrize('case', sorted(FREEZING))
def test_frozen_parameters_and_eval_norms_match_mmaction2(case):
    """frozen_stages / norm_eval / bn_frozen / requires_grad=False as MMAction2's ``train()``."""
    spec = FREEZING[case]
    base = golden(spec['base'])
    cfg = dict(base.cfg['model'])
    cfg['backbone'] = merged(cfg['backbone'], spec['overrides'])
    model = build_model(cfg)
    names = [key for key, slot in mm.target_slots(base.variables).items() if slot.collection == 'params']
    prefixes = model.frozen_prefixes()
    assert sorted(n for n in names if n.startswith(prefixes)) == sorted(spec['frozen'])

    imgs = base.golden['imgs'][:1, :1]
    _, updates = jax.jit(lambda v, x: model.apply(v, x, train=True, rngs={'dropout': jax.random.key(0)},
                                                  mutable=['batch_stats']))(base.variables, imgs)
    before = mm.variables_to_state_dict(base.variables)
    after = mm.variables_to_state_dict({**base.variables, **updates})
    unchanged = sorted(k[:-len('.running_mean')] for k in before
                       if k.endswith('.running_mean') and np.array_equal(before[k], after[k]))
    assert unchanged == sorted(spec['eval_norms'])


def test_with_cp_rematerialises_with_the_same_loss_and_gradients():
    base = golden('i3d_r18_tiny')
    imgs, labels = base.golden['imgs'][:1], jnp.array([1])
    results = []
    for with_cp in (False, True):
        cfg = dict(base.cfg['model'])
        cfg['backbone'] = dict(cfg['backbone'], with_cp=with_cp)
        model = build_model(cfg)
        results.append(train_loss_fn(model, base.variables, imgs, labels)(base.variables['params']))
    (loss, updates), grads = results[0]
    (loss_cp, updates_cp), grads_cp = results[1]
    np.testing.assert_allclose(loss_cp, loss, rtol=1e-6)
    for a, b in zip(jax.tree.leaves((grads, updates)), jax.tree.leaves((grads_cp, updates_cp)), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
