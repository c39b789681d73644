"""Video transformers against golden outputs of MMAction2 1.2.0.

The fixtures under tests/fixtures/transformers/ were made by make_fixtures.py there with
MMAction2's own code: small recognizers (Swin with I3DHead, TimeSformer in its three
attention types and VideoMAE's ViT with TimeSformerHead) with every parameter random,
their checkpoints, a uint8 batch and MMAction2's backbone features, per-view logits and
clip-averaged scores; the lr / weight-decay multipliers MMAction2's optimizer
constructors give every parameter; the parameter counts of the full-size recipes.
"""

from __future__ import annotations

import functools
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
from actionjax.optim import build_constructor, describe_params
from convert import mmaction2 as mm

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures', 'transformers')
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RTOL = 1e-4  # relative to max |value|, the parity bound
MODELS = ['swin_tiny', 'timesformer_divst', 'timesformer_jointst', 'timesformer_spaceonly', 'videomae_vit',
          'videomae_vit_options', 'mvit_small', 'mvit_options', 'uniformerv2', 'uniformerv2_options']


def fixture(name: str) -> str:
    return os.path.join(HERE, name)


def assert_close(actual, expected, what: str) -> None:
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f'{what}: shape {actual.shape} != {expected.shape}'
    err = np.abs(actual - expected).max() / np.abs(expected).max()
    assert err < RTOL, f'{what}: max abs diff / max |value| = {err:.2e}'


def fixture_config(name: str, **backbone: object) -> Config:
    cfg = Config.fromfile(fixture(f'{name}.py'))
    cfg['model']['backbone'].update(backbone)
    return cfg


class Golden:
    """A fixture model: config, converted variables, MMAction2's outputs."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.cfg = fixture_config(name)
        self.pth = fixture(f'{name}.pth')
        self.golden = dict(np.load(fixture(f'{name}.npz')))
        self.variables = mm.convert_checkpoint(self.pth, self.cfg)
        self.model = build_model(self.cfg)

    @functools.cached_property
    def outputs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Backbone features, per-view logits and averaged scores, from one compiled forward."""
        def forward(model, imgs):
            feats = model.extract_feat(imgs)
            logits = model.cls_head(feats, imgs.shape[1]).reshape(imgs.shape[0], imgs.shape[1], -1)
            return feats, logits, model.average(logits)

        fn = jax.jit(lambda v, x: self.model.apply(v, x, method=forward))
        return jax.tree.map(np.asarray, fn(self.variables, self.golden['imgs']))


@pytest.fixture(scope='module', params=MODELS)
def golden(request) -> Golden:
    return Golden(request.param)


# ------------------------------------------------------------------ parity with MMAction2

def last_output(features):
    """MViT's output is a tuple of stages, each ``(patch_tokens, cls_token)`` or patch tokens;
    the goldens hold the last stage's."""
    if isinstance(features, tuple):
        features = features[-1]
    return features if isinstance(features, tuple) else (features,)


def test_features_logits_and_scores_match_mmaction2(golden):
    features, logits, scores = golden.outputs
    features = last_output(features)
    assert_close(features[0], golden.golden['features'], f'{golden.name} backbone features')
    if 'cls_features' in golden.golden:
        assert_close(features[1], golden.golden['cls_features'], f'{golden.name} class token')
    assert_close(logits, golden.golden['logits'], f'{golden.name} logits')
    assert_close(scores, golden.golden['scores'], f'{golden.name} scores')


def test_parameter_count_equals_mmaction2(golden):
    count = sum(np.size(leaf) for leaf in jax.tree.leaves(golden.variables['params']))
    assert count == int(golden.golden['num_params'])


def test_full_size_recipes_have_mmaction2s_parameter_counts():
    with open(fixture('recipe_params.json')) as f:
        expected = json.load(f)
    for config, count in expected.items():
        if not os.path.exists(os.path.join(REPO, config)):
            continue
        shapes = mm.variable_shapes(Config.fromfile(os.path.join(REPO, config)))  # abstract: no FLOPs
        assert sum(np.prod(s.shape) for s in jax.tree.leaves(shapes['params'])) == count, config


# ------------------------------------------------------------------ conversion

@pytest.mark.parametrize('name', MODELS)
def test_cli_round_trip_is_exact(name, tmp_path):
    cfg, pth = fixture(f'{name}.py'), fixture(f'{name}.pth')
    out, back = tmp_path / 'converted', tmp_path / 'back.pth'
    assert mm.main([pth, '--config', cfg, '--out', str(out)]) == 0
    assert mm.main(['--reverse', str(out), '--config', cfg, '--out', str(back)]) == 0
    original = torch.load(pth, weights_only=True)['state_dict']
    restored = torch.load(back, weights_only=True)['state_dict']
    assert list(restored) == list(original)  # same keys (buffers included), same order
    for key, value in original.items():
        assert restored[key].dtype == value.dtype and torch.equal(restored[key], value), key


def test_swin_layouts_convert_as_mmaction2_keeps_them():
    state = mm.torch_load(fixture('swin_tiny.pth'))['state_dict']
    variables = mm.convert_checkpoint(fixture('swin_tiny.pth'), fixture_config('swin_tiny'))
    attn = variables['params']['backbone']['layers']['1']['blocks']['1']['attn']
    prefix = 'backbone.layers.1.blocks.1.attn.'
    np.testing.assert_array_equal(attn['relative_position_bias_table'],
                                  state[prefix + 'relative_position_bias_table'].numpy())
    np.testing.assert_array_equal(attn['qkv']['kernel'], state[prefix + 'qkv.weight'].numpy().T)
    proj = variables['params']['backbone']['patch_embed']['proj']['kernel']  # (t, h, w, in, out)
    weight = state['backbone.patch_embed.proj.weight'].numpy()  # (out, in, t, h, w)
    np.testing.assert_array_equal(proj, weight.transpose(2, 3, 4, 1, 0))
    assert 'batch_stats' not in variables


def test_timesformer_fused_projection_and_tokens_keep_torch_layout():
    state = mm.torch_load(fixture('timesformer_divst.pth'))['state_dict']
    variables = mm.convert_checkpoint(fixture('timesformer_divst.pth'), fixture_config('timesformer_divst'))
    backbone = variables['params']['backbone']
    attn = backbone['transformer_layers']['layers']['0']['attentions']['0']['attn']
    key = 'backbone.transformer_layers.layers.0.attentions.0.attn.in_proj_weight'
    np.testing.assert_array_equal(attn['in_proj_weight'], state[key].numpy())
    for name in ('cls_token', 'pos_embed', 'time_embed'):
        np.testing.assert_array_equal(backbone[name], state[f'backbone.{name}'].numpy())


def test_buffers_must_match_the_config(tmp_path):
    ckpt = mm.torch_load(fixture('swin_tiny.pth'))
    key = 'backbone.layers.0.blocks.1.attn.relative_position_index'
    ckpt['state_dict'][key] = ckpt['state_dict'][key].flip(0)
    torch.save(ckpt, tmp_path / 'bad.pth')
    with pytest.raises(ValueError, match=key):
        mm.convert_checkpoint(tmp_path / 'bad.pth', fixture_config('swin_tiny'))
    # A checkpoint without the buffers converts: they are derived from the config.
    state = {k: v for k, v in ckpt['state_dict'].items() if 'relative_position_index' not in k}
    torch.save(state, tmp_path / 'no_buffers.pth')
    variables = mm.convert_checkpoint(tmp_path / 'no_buffers.pth', fixture_config('swin_tiny'))
    reference = mm.convert_checkpoint(fixture('swin_tiny.pth'), fixture_config('swin_tiny'))
    jax.tree.map(np.testing.assert_array_equal, variables, reference)


# ------------------------------------------------------------------ training

def loss_and_grads(cfg: Config, variables: dict, imgs: np.ndarray, seeds: tuple[int, ...] = tuple(range(8))):
    """Training-mode loss and gradients for each dropout seed, from one compiled function."""
    model = build_model(cfg)
    labels = jnp.arange(imgs.shape[0] * imgs.shape[1]) % cfg['model']['cls_head']['num_classes']

    def loss_fn(params, rng):
        scores, _ = model.apply({**variables, 'params': params}, imgs, train=True, rngs={'dropout': rng},
                                mutable=['batch_stats'])
        return optax.softmax_cross_entropy_with_integer_labels(scores, labels).mean()

    step = jax.jit(jax.value_and_grad(loss_fn))
    return [step(variables['params'], jax.random.key(seed)) for seed in seeds]


@pytest.mark.parametrize('name', ['swin_tiny', 'timesformer_divst', 'videomae_vit_options', 'mvit_options',
                                  'uniformerv2_options'])
def test_jit_forward_and_backward_in_training_mode(name):
    """Training mode differentiates with stochastic depth on (the 'dropout' rng: another
    key drops other paths) and every parameter gets a gradient; Swin runs with ``with_cp``."""
    golden = Golden(name)
    cfg = fixture_config(name, with_cp=True) if name == 'swin_tiny' else golden.cfg
    runs = loss_and_grads(cfg, golden.variables, golden.golden['imgs'][:1])
    losses = [float(loss) for loss, _ in runs]
    assert np.isfinite(losses).all() and len(set(losses)) > 1, losses
    assert all(np.isfinite(g).all() for _, grads in runs for g in jax.tree.leaves(grads))
    live = jax.tree.map(lambda *gs: any(np.any(g) for g in gs), *[grads for _, grads in runs])
    dead = [jax.tree_util.keystr(p) for p, alive in jax.tree_util.tree_leaves_with_path(live) if not alive]
    assert not dead, f'parameters without gradient: {dead}'


def test_with_cp_rematerialises_every_swin_block():
    """``with_cp`` wraps each block in ``jax.checkpoint`` (its activations are recomputed in the
    backward pass); without it nothing is. Traced only, nothing compiles."""
    golden = Golden('swin_tiny')
    imgs = golden.golden['imgs'][:1, :1]

    def checkpoints(with_cp: bool) -> int:
        model = build_model(fixture_config('swin_tiny', with_cp=with_cp))
        loss = lambda p: model.apply({'params': p}, imgs, train=False).sum()  # noqa: E731
        jaxpr = jax.make_jaxpr(jax.grad(loss))(golden.variables['params']).jaxpr
        return sum(eqn.primitive.name.startswith(('remat', 'checkpoint')) for eqn in jaxpr.eqns)

    assert checkpoints(False) == 0
    assert checkpoints(True) == sum(golden.cfg['model']['backbone']['arch']['depths'])


# ------------------------------------------------------------------ optimizer constructors

with open(fixture('optim_groups.json')) as _f:
    OPTIM_GOLDEN = json.load(_f)
OPTIM_CASES = [(model, case) for model, cases in OPTIM_GOLDEN.items() for case in cases
               if model.split('_frozen')[0] in MODELS]


def optim_config(model: str) -> Config:
    if model == 'swin_tiny_frozen':  # make_fixtures: the Swin fixture with frozen_stages=1
        return fixture_config('swin_tiny', frozen_stages=1)
    return fixture_config(model)


@pytest.mark.parametrize('model,case', OPTIM_CASES)
def test_param_groups_equal_mmaction2s_constructors(model, case):
    """Every parameter's lr and weight-decay multipliers are those MMAction2's constructor
    gives it. Without a ``constructor`` key MMAction2 1.x uses mmengine's
    DefaultOptimWrapperConstructor; a 1.x config resolved here without one reaches mmcv's
    rules (DefaultOptimizerConstructor): both must agree with the golden."""
    golden = OPTIM_GOLDEN[model][case]
    wrapper = golden['optim_wrapper']
    names = [wrapper['constructor']] if 'constructor' in wrapper else \
        ['DefaultOptimWrapperConstructor', 'DefaultOptimizerConstructor']
    net = build_model(optim_config(model))
    imgs = np.zeros((1, 1) + np.load(fixture(f'{model.split("_frozen")[0]}.npz'))['imgs'].shape[2:], np.uint8)
    params = describe_params(net, None, imgs)
    for name in names:
        optimizer = dict(wrapper['optimizer'], paramwise_cfg=wrapper.get('paramwise_cfg'), constructor=name)
        assignments = build_constructor(optimizer).assign(params)
        ours = {a.info.name: None if a.group == 'frozen' else [a.lr_mult, a.decay_mult] for a in assignments}
        assert set(ours) == set(golden['groups'])
        for param, expected in golden['groups'].items():
            if expected is None:
                assert ours[param] is None, f'{name}: {param} should be frozen'
            else:
                assert ours[param] is not None and np.allclose(ours[param], expected, rtol=1e-9), \
                    f'{name}: {param}: ours {ours[param]}, MMAction2 {expected}'


def test_layer_decay_supports_what_mmaction2_supports():
    vit = build_model(fixture_config('videomae_vit'))
    swin = build_model(fixture_config('swin_tiny'))
    decay = dict(type='AdamW', lr=1e-3, weight_decay=0.05,
                 constructor='LearningRateDecayOptimizerConstructor')
    with pytest.raises(NotImplementedError, match='layer_wise'):
        build_constructor(dict(decay, paramwise_cfg=dict(decay_rate=0.75, decay_type='stage_wise',
                                                         num_layers=2)))
    with pytest.raises(KeyError, match='num_layers'):
        build_constructor(dict(decay, paramwise_cfg=dict(decay_rate=0.75)))
    constructor = build_constructor(dict(decay, paramwise_cfg=dict(decay_rate=0.75, num_layers=2)))
    with pytest.raises(NotImplementedError, match='backbone.blocks'):
        constructor.assign(describe_params(swin, None, np.zeros((1, 1, 8, 40, 34, 3), np.uint8)))
    assert constructor.assign(describe_params(vit, None, np.zeros((1, 1, 4, 32, 32, 3), np.uint8)))
