"""Param-wise rules: DefaultOptimizerConstructor and TSMOptimizerConstructor.

Golden files (tests/fixtures/optim/golden_param_groups.json, made by make_fixtures.py
with mmcv 1.7.2 and MMAction2 0.24.1) hold every parameter's lr_mult / decay_mult as
torch's param groups have them and whether it requires grad after ``model.train()``.
``python -m actionjax.tools.param_groups --json`` must reproduce them on the real
TSN-R50 / TSM-R50; the tiny model (tests/fixtures/optim/tiny_net.py) covers depthwise
convs, GroupNorm and LayerNorm, which ResNets lack.
"""

from __future__ import annotations

import importlib.util
import json
import math
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from actionjax.optim import (
    DefaultOptimizerConstructor,
    ParamRule,
    ScheduleConfig,
    build_lr_schedule,
    build_optimizer,
    current_lrs,
    describe_params,
)
from actionjax.optim.constructors import build_constructor
from actionjax.optim.param_info import describe_model
from actionjax.registry import OPTIMIZER_BUILDERS, OPTIMIZERS, RegistryError
from actionjax.runtime_config import sample_shape
from actionjax.tools import param_groups

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURES = ROOT / 'tests' / 'fixtures' / 'optim'
GOLDEN = json.loads((FIXTURES / 'golden_param_groups.json').read_text())  # mmcv 1.7.2, MMAction2 0.24.1
GOLDEN.update(json.loads((FIXTURES / 'golden_param_groups_mmengine.json').read_text()))  # mmengine, 1.2.0
_spec = importlib.util.spec_from_file_location('optim_tiny_net', FIXTURES / 'tiny_net.py')
tiny_net = sys.modules.setdefault('optim_tiny_net', importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(tiny_net)

SGD = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4)
TINY_IMGS = jax.ShapeDtypeStruct((1, 2, 8, 8, 3), jnp.uint8)


def assert_matches_golden(records: list[dict], golden: dict) -> None:
    ours = {r['name']: r for r in records}
    assert [r['name'] for r in records] == [row[0] for row in golden['params']]  # same names, model order
    for name, shape, lr_mult, decay_mult, requires_grad, in_optimizer in golden['params']:
        r = ours[name]
        assert in_optimizer
        assert math.prod(r['shape']) == math.prod(shape), name
        assert r['lr_mult'] == pytest.approx(lr_mult, rel=1e-12), name
        if decay_mult is not None:  # None: no weight_decay configured, nothing to multiply
            assert r['decay_mult'] == pytest.approx(decay_mult, rel=1e-12, abs=1e-15), name
        assert r['frozen'] == (not requires_grad), name
        assert (r['group'] == 'frozen') == (r['frozen'] or r['lr_mult'] == 0), name


REAL_VARIANTS = sorted(k for k, v in GOLDEN.items() if not k.startswith('_') and v['model'] != 'tiny')
TINY_VARIANTS = sorted(k for k, v in GOLDEN.items() if not k.startswith('_') and v['model'] == 'tiny')


@pytest.mark.parametrize('variant', REAL_VARIANTS)
def test_param_groups_json_matches_mmcv(variant, tmp_path, capsys):
    golden = GOLDEN[variant]
    config = tmp_path / f'{variant}.py'
    config.write_text(f'model = {golden["model_cfg"]!r}\noptimizer = {golden["optimizer"]!r}\n')
    records = param_groups.main(['--config', str(config), '--json'])
    assert json.loads(capsys.readouterr().out) == records
    assert_matches_golden(records, golden)


@pytest.fixture(scope='module')
def tiny_params():
    return describe_params(tiny_net.TinyNet(), None, TINY_IMGS)


@pytest.mark.parametrize('variant', TINY_VARIANTS)
def test_tiny_model_matches_mmcv(variant, tiny_params):
    assignments = build_constructor(GOLDEN[variant]['optimizer']).assign(tiny_params)
    assert_matches_golden(param_groups.as_records(assignments), GOLDEN[variant])


def rules(optimizer_cfg, params) -> dict[str, tuple[float, float]]:
    return {a.info.name: (a.lr_mult, a.decay_mult) for a in build_constructor(optimizer_cfg).assign(params)}


def test_module_kinds_come_from_the_trace(tiny_params):
    kinds = {p.name: (p.is_norm, p.is_dwconv, p.is_conv, p.is_linear) for p in tiny_params}
    assert kinds['backbone.stem.bn.weight'] == (True, False, False, False)
    assert kinds['backbone.gn.bias'][0] and kinds['backbone.ln.weight'][0]
    assert kinds['backbone.dw.conv.weight'] == (False, True, True, False)
    assert kinds['backbone.dw3d.weight'] == (False, False, True, False)  # mmcv 1.x: Conv2d only
    assert kinds['cls_head.fc_cls.weight'] == (False, False, False, True)
    assert [p.name for p in tiny_params][:3] == [  # torch's order, not alphabetical
        'backbone.stem.conv.weight', 'backbone.stem.bn.weight', 'backbone.stem.bn.bias']


def test_custom_keys_longest_then_alphabetical_and_skip_other_rules(tiny_params):
    cfg = dict(SGD, paramwise_cfg=dict(
        bias_lr_mult=2.0, norm_decay_mult=0.0,
        custom_keys={'kbone.d': dict(lr_mult=3.0), 'dw.conv': dict(lr_mult=4.0),  # same length
                     'backbone.dw.conv': dict(decay_mult=0.5),                     # longer than both
                     'stem': dict(lr_mult=5.0)}))
    got = rules(cfg, tiny_params)
    assert got['backbone.dw.conv.bias'] == (1.0, 0.5)  # longest key; no bias_lr_mult, lr_mult defaults to 1
    assert got['backbone.dw.bn.weight'] == (3.0, 1.0)  # 'kbone.d' (7) matches, 'dw.conv' does not
    assert got['backbone.stem.bn.bias'] == (5.0, 1.0)  # custom key replaces norm_decay_mult
    assert got['backbone.pw.bias'] == (2.0, 1.0)


def test_bias_norm_dwconv_rules(tiny_params):
    cfg = dict(SGD, paramwise_cfg=dict(bias_lr_mult=2.0, bias_decay_mult=0.3, norm_decay_mult=0.0,
                                       dwconv_decay_mult=0.5))
    got = rules(cfg, tiny_params)
    assert got['backbone.stem.bn.bias'] == (1.0, 0.0)     # bias_lr_mult skips norm biases
    assert got['backbone.ln.weight'] == (1.0, 0.0)        # norm_decay_mult on weights too
    assert got['backbone.dw.conv.weight'] == (1.0, 0.5)
    assert got['backbone.dw.conv.bias'] == (2.0, 0.5)     # dwconv decay, not bias decay
    assert got['backbone.dw3d.bias'] == (2.0, 0.3)        # 3D depthwise: an ordinary conv for mmcv 1.x
    assert got['backbone.pw.weight'] == (1.0, 1.0)
    assert got['cls_head.fc_cls.bias'] == (2.0, 0.3)
    # No paramwise_cfg: one group; bypass_duplicate has nothing to bypass in a pytree.
    assert set(rules(SGD, tiny_params).values()) == {(1.0, 1.0)}
    bypass = dict(SGD, paramwise_cfg=dict(bypass_duplicate=True))
    assert set(rules(bypass, tiny_params).values()) == {(1.0, 1.0)}


@pytest.mark.parametrize('optimizer_cfg, error, message', [
    (dict(type='SGD', lr=0.1, paramwise_cfg=dict(norm_decay_mult=0.0)), ValueError, 'norm_decay_mult needs'),
    (dict(type='SGD', lr=0.1, paramwise_cfg=dict(bias_decay_mult=0.0)), ValueError, 'bias_decay_mult needs'),
    (dict(type='SGD', lr=0.1, paramwise_cfg=dict(dwconv_decay_mult=0.0)), ValueError, 'dwconv_decay_mult'),
    (dict(type='SGD', lr=0.1, paramwise_cfg=dict(custom_keys={'fc': dict(decay_mult=0.0)})), ValueError,
     'no weight_decay'),
    (dict(SGD, paramwise_cfg=dict(custom_keys=[('fc', 1)])), TypeError, 'custom_keys must be a dict'),
    (dict(SGD, paramwise_cfg=dict(custom_keys={'fc': 10})), ValueError, r'custom_keys\[\'fc\'\]'),
    (dict(SGD, paramwise_cfg=dict(custom_keys={'fc': dict(lr=10)})), ValueError, 'lr_mult'),
    (dict(SGD, paramwise_cfg=[1]), TypeError, 'paramwise_cfg must be None or a dict'),
    (dict(SGD, constructor='TSMOptimizerConstructor'), KeyError, 'fc_lr5'),
    (dict(SGD, constructor='TSMOptimiserConstructor'), RegistryError, 'optimizer.constructor'),
    (dict(lr=0.1), KeyError, 'type'),
])
def test_config_errors(optimizer_cfg, error, message):
    with pytest.raises(error, match=message):
        build_constructor(optimizer_cfg)


@pytest.mark.parametrize('paramwise_cfg, message', [
    (dict(bias_lr_mul=2), "'bias_lr_mul' \\(did you mean 'bias_lr_mult'\\?\\)"),
    (dict(norm_decay_mult=0.0, fc_lr5=True), "'fc_lr5'.*DefaultOptimizerConstructor never reads"),
])
def test_unknown_paramwise_keys_are_reported_after_the_rules_ran(tiny_params, paramwise_cfg, message):
    constructor = build_constructor(dict(SGD, paramwise_cfg=paramwise_cfg))  # keys are known only later
    with pytest.raises(KeyError, match=message):
        constructor.assign(tiny_params)


def test_errors_when_building(tiny_params):
    tsm = build_constructor(dict(SGD, constructor='TSMOptimizerConstructor', paramwise_cfg=dict(fc_lr5=True)))
    with pytest.raises(ValueError, match='new atomic module type LayerNorm'):
        tsm.assign(tiny_params)
    with pytest.raises(RegistryError, match="'SDG' is not registered in OPTIMIZERS.*optimizer.type"):
        build_constructor(dict(type='SDG', lr=0.1))(tiny_params)
    with pytest.raises(ValueError, match='needs optimizer.lr'):
        build_constructor(dict(type='SGD', paramwise_cfg=dict(bias_lr_mult=2.0)))(tiny_params)
    with pytest.raises(TypeError, match="building optimizer 'SGD'.*betas"):
        build_constructor(dict(type='SGD', lr=0.1, betas=(0.9, 0.99)))(tiny_params)
    with pytest.raises(ValueError, match='a momentum schedule needs an optimizer with momentum or betas'):
        build_constructor(dict(type='Adagrad', lr=0.1))(tiny_params, momentum_schedule=lambda s: 0.9)


# ------------------------------------------------------------------- TSM on the real model


@pytest.fixture(scope='module')
def tsm_params():
    from actionjax.models import build_model

    golden = GOLDEN['tsm_fc_lr5']
    return describe_params(build_model(dict(model=golden['model_cfg'])), None,
                           jax.ShapeDtypeStruct((1, 8, 64, 64, 3), jnp.uint8))


def test_tsm_groups(tsm_params):
    cfg = dict(SGD, constructor='TSMOptimizerConstructor', paramwise_cfg=dict(fc_lr5=True))
    got = rules(cfg, tsm_params)
    assert got['backbone.conv1.conv.weight'] == (1.0, 1.0)
    assert got['backbone.layer1.0.conv1.conv.net.weight'] == (1.0, 1.0)
    assert got['backbone.layer3.5.conv2.bn.bias'] == (1.0, 0.0)
    assert got['cls_head.fc_cls.weight'] == (5.0, 1.0)
    assert got['cls_head.fc_cls.bias'] == (10.0, 0.0)
    got = rules(dict(cfg, paramwise_cfg=dict(fc_lr5=False)), tsm_params)
    assert got['cls_head.fc_cls.weight'] == (1.0, 1.0) and got['cls_head.fc_cls.bias'] == (2.0, 0.0)
    names = [p.name for p in tsm_params]
    with pytest.raises(ValueError, match='last fc layer'):  # no conv/fc bias anywhere: MMAction2 pops nothing
        build_constructor(cfg).assign([p for p in tsm_params if p.name != 'cls_head.fc_cls.bias'])
    with pytest.raises(KeyError, match="'bias_lr_mult'.*TSMOptimizerConstructor never reads"):
        build_constructor(dict(cfg, paramwise_cfg=dict(fc_lr5=True, bias_lr_mult=2))).assign(tsm_params)
    assert names.index('backbone.conv1.conv.weight') == 0


# ------------------------------------------------------------------- the transformation


def test_frozen_and_zero_lr_params_have_no_state_and_no_update():
    model = tiny_net.TinyNet(frozen=('backbone.stem.',))
    params = jax.tree.map(lambda s: jnp.ones(s.shape, s.dtype),
                          jax.eval_shape(lambda x: model.init(jax.random.key(0), x), TINY_IMGS)['params'])
    cfg = dict(SGD, paramwise_cfg=dict(custom_keys={'cls_head': dict(lr_mult=0.0)}))
    tx = build_optimizer(cfg, model, {'params': params}, TINY_IMGS, grad_clip=dict(max_norm=1.0))
    state = tx.init(params)
    n_trainable = sum(math.prod(p.shape) for p in describe_params(model, None, TINY_IMGS)
                      if not p.frozen and not p.name.startswith('cls_head'))
    state_size = sum(x.size for x in jax.tree.leaves(state) if x.ndim > 0)
    assert state_size == n_trainable  # one momentum buffer per trainable element, nothing else
    updates, _ = jax.jit(tx.update)(jax.tree.map(jnp.ones_like, params), state, params)
    new = optax.apply_updates(params, updates)
    np.testing.assert_array_equal(new['backbone']['stem']['conv']['kernel'], 1.0)
    np.testing.assert_array_equal(new['cls_head']['fc_cls']['kernel'], 1.0)
    assert not np.array_equal(new['backbone']['pw']['kernel'], 1.0)


def test_current_lrs_order_and_values(tiny_params):
    params = jax.eval_shape(lambda x: tiny_net.TinyNet().init(jax.random.key(0), x), TINY_IMGS)['params']
    params = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), params)
    tx = build_constructor(dict(SGD, paramwise_cfg=dict(bias_lr_mult=2.0, norm_decay_mult=0.0)))(
        tiny_params, lr_schedule=lambda step: 0.1 * (step + 1))
    state = tx.init(params)
    lrs = current_lrs(state)
    assert list(lrs)[0] == 'default'
    assert {k: float(v) for k, v in lrs.items()} == pytest.approx(
        {'default': 0.1, 'lr2_decay1': 0.2, 'lr1_decay0': 0.1})
    _, state = jax.jit(tx.update)(params, state, params)
    _, state = jax.jit(tx.update)(params, state, params)
    assert float(jax.jit(current_lrs)(state)['lr2_decay1']) == pytest.approx(0.4)  # lr of the 2nd update


def test_group_lr_follows_its_own_base_like_mmcv(tiny_params):
    """mmcv anneals each group from its own initial lr to the absolute min_lr: the floor of a
    bias_lr_mult=2 group is min_lr, not 2 * min_lr."""
    params = jax.eval_shape(lambda x: tiny_net.TinyNet().init(jax.random.key(0), x), TINY_IMGS)['params']
    params = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), params)
    lr_config = dict(policy='CosineAnnealing', min_lr=0.001, by_epoch=False)
    lr_fn = build_lr_schedule(lr_config, 0.01, iters_per_epoch=2, max_epochs=2)
    schedule = ScheduleConfig(lr_config, 'lr', iters_per_epoch=2, max_epochs=2)  # what training passes
    tx = build_constructor(dict(SGD, paramwise_cfg=dict(bias_lr_mult=2.0)))(tiny_params, lr_schedule=schedule)
    state = tx.init(params)
    update = jax.jit(tx.update)
    for step in range(4):
        lrs = {k: float(v) for k, v in current_lrs(state).items()}
        if step:  # current_lrs reports the lr of the last update, which used step - 1
            expected_bias = float(build_lr_schedule(lr_config, 0.02, 2, max_epochs=2)(step - 1))
            assert lrs['default'] == pytest.approx(float(lr_fn(step - 1)), rel=1e-6)
            assert lrs['lr2_decay1'] == pytest.approx(expected_bias, rel=1e-6)
        _, state = update(params, state, params)
    assert lrs['lr2_decay1'] != pytest.approx(2 * lrs['default'], rel=1e-3)  # the floor is not doubled


# ------------------------------------------------------------------- extension points


def test_user_optimizer_and_constructor(tiny_params):
    @OPTIMIZERS.register_module(force=True)
    def ScaledSign(learning_rate, scale=1.0):
        """A user optimizer naming its lr ``learning_rate``, optax style."""
        return optax.chain(optax.scale_by_sign(), optax.scale(scale),
                           optax.scale_by_learning_rate(learning_rate))

    @OPTIMIZER_BUILDERS.register_module(force=True)
    class HeadTenTimes(DefaultOptimizerConstructor):
        def param_rule(self, param):
            if param.name.startswith('cls_head.'):
                return ParamRule(self.paramwise_cfg['head_mult'], 0.0)
            return super().param_rule(param)

    cfg = dict(type='ScaledSign', lr=0.5, scale=2.0, constructor='HeadTenTimes',
               paramwise_cfg=dict(head_mult=10.0))
    constructor = build_constructor(cfg)
    got = {a.info.name: (a.lr_mult, a.group) for a in constructor.assign(tiny_params)}
    assert got['cls_head.fc_cls.weight'] == (10.0, 'lr10_decay0')
    assert got['backbone.pw.weight'] == (1.0, 'default')
    params = {'w': jnp.ones(2)}
    tx = constructor.group_optimizer(ParamRule(10.0, 0.0))
    updates, _ = tx.update({'w': jnp.array([-3.0, 2.0])}, tx.init(params), params)
    np.testing.assert_allclose(updates['w'], [10.0, -10.0])  # sign * scale 2 * lr 0.5 * lr_mult 10


def test_add_params_takes_torch_param_groups(tiny_params):
    """mmcv's add_params(params, module): walk the modules, append torch-style groups."""
    import flax.linen as nn

    @OPTIMIZER_BUILDERS.register_module(force=True)
    class NormsAndHead(DefaultOptimizerConstructor):
        def add_params(self, params, module):
            norms, head, rest = [], [], []
            for m in module.modules():
                own = m.parameters(recurse=False)
                if issubclass(m.type, (nn.BatchNorm, nn.GroupNorm, nn.LayerNorm)):
                    norms += own
                elif m.name.startswith('cls_head'):
                    head += own
                else:
                    rest += own
            params.append({'params': norms, 'weight_decay': 0.0})
            params.append({'params': head, 'lr': self.base_lr * self.paramwise_cfg['head_lr_mult'],
                           'weight_decay': self.base_wd})
            params.append({'params': [p.name for p in rest]})  # names work too

    tree = describe_model(tiny_net.TinyNet(), None, TINY_IMGS)
    assert [m.name for m in tree.children()] == ['backbone', 'cls_head']
    assert tree.parameters() == tiny_params
    got = rules(dict(SGD, lr=0.02, constructor='NormsAndHead', paramwise_cfg=dict(head_lr_mult=5)), tree)
    assert got['backbone.gn.bias'] == (1.0, 0.0) and got['backbone.ln.weight'] == (1.0, 0.0)
    assert got['cls_head.fc_cls.bias'] == (5.0, 1.0)  # 0.02 * 5 / 0.02 rounds to exactly 5
    assert got['backbone.pw.weight'] == (1.0, 1.0)


@pytest.mark.parametrize('body, error, message', [
    ("params.append({'params': module.parameters()}); params.append({'params': module.parameters()[:1]})",
     ValueError, 'in more than one param group'),
    ("params.append({'params': module.parameters()[1:]})", ValueError,
     r'put 1 parameter\(s\) in no param group'),
    ("params.append({'params': module.parameters(), 'momentum': 0.5})", ValueError, 'per-group momentum'),
    ("params.append({'params': module.parameters(), 'lr': 0.1, 'lr_mult': 2})", ValueError,
     'both lr and lr_mult'),
    ("return {p.name: (1.0, 1.0) for p in module.parameters()}", TypeError, 'returns None'),
])
def test_add_params_errors(tiny_params, body, error, message):
    namespace = {}
    exec(f'def add_params(self, params, module):\n    {body}\n', namespace)
    constructor = type('Broken', (DefaultOptimizerConstructor,), {'add_params': namespace['add_params']})(SGD)
    with pytest.raises(error, match=message):
        constructor.assign(tiny_params)


def test_old_add_params_signature_says_what_to_write(tiny_params):
    class OneArgument(DefaultOptimizerConstructor):
        def add_params(self, params):
            return {p.name: ParamRule() for p in params}

    with pytest.raises(TypeError, match=r'must take \(params, module\)'):
        OneArgument(SGD).assign(tiny_params)


def test_optimizer_without_lr(tiny_params):
    """The tutorial's MyOptimizer(a, b, c) form: built as written; nothing may ask it for an lr."""
    @OPTIMIZERS.register_module(force=True)
    def RmsStep(a, b, c):
        return optax.chain(optax.scale_by_rms(decay=b, eps=c), optax.scale(-a))

    tiny = tiny_net.TinyNet()
    params = jax.tree.map(lambda s: jnp.ones(s.shape, s.dtype),
                          jax.eval_shape(lambda x: tiny.init(jax.random.key(0), x), TINY_IMGS)['params'])
    cfg = dict(type='RmsStep', a=0.01, b=0.9, c=1e-8)
    tx = build_optimizer(cfg, tiny, {'params': params}, TINY_IMGS,
                         lr_schedule=ScheduleConfig(None, 'lr', iters_per_epoch=2, max_epochs=1))
    updates, state = jax.jit(tx.update)(jax.tree.map(jnp.ones_like, params), tx.init(params), params)
    assert current_lrs(state) == {}  # no lr anywhere: nothing to log
    np.testing.assert_allclose(updates['cls_head']['fc_cls']['bias'], -0.01 / np.sqrt(0.1), rtol=1e-5)
    with pytest.raises(TypeError, match=r'optimizer.lr=0.1, but RmsStep\(a, b, c\) takes no lr'):
        build_constructor(dict(cfg, lr=0.1))(tiny_params)
    with pytest.raises(TypeError, match='schedules the lr.*remove the schedule'):
        step = ScheduleConfig(dict(policy='step', step=[1]), 'lr', iters_per_epoch=2, max_epochs=2)
        build_constructor(cfg)(tiny_params, lr_schedule=step)
    with pytest.raises(ValueError, match='lr_mult=2, but RmsStep'):
        build_constructor(dict(cfg, paramwise_cfg=dict(bias_lr_mult=2.0)))(tiny_params)


def test_a_torch_optimizer_class_is_a_clear_error(tiny_params):
    @OPTIMIZERS.register_module(force=True)
    class TorchStyle:
        def __init__(self, lr):
            self.lr = lr

    with pytest.raises(TypeError, match='returned TorchStyle.*optax.GradientTransformation'):
        build_constructor(dict(type='TorchStyle', lr=0.1))(tiny_params)


def test_sample_shape_and_table(tmp_path):
    from actionjax.config import Config

    config = tmp_path / 'tsm_sgd.py'
    config.write_text(
        f"_base_ = [{str(ROOT / 'configs' / '_base_' / 'models' / 'tsm_r50.py')!r}]\n"
        "optimizer = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4,\n"
        "                 constructor='TSMOptimizerConstructor', paramwise_cfg=dict(fc_lr5=True))\n"
        "train_pipeline = [dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips=8)]\n")
    cfg = Config.fromfile(str(config))
    assert sample_shape(cfg) == (1, 8, 224, 224, 3)
    assert sample_shape(dict(model=dict(type='Recognizer3D'))) == (1, 1, 1, 224, 224, 3)
    assignments = param_groups.param_groups(cfg, shape=(1, 8, 32, 32, 3))
    table = param_groups.format_table(assignments, cfg.optimizer)
    assert 'cls_head.fc_cls.weight' in table and 'lr5_decay1' in table and 'lr10_decay0' in table
