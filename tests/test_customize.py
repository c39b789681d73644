"""MMAction2's customize tutorial, done as a user: the project of docs/customize.md.

The page's blocks that start with ``# my_project/...`` are the user's files. They are
written into a temporary package, named from one config through ``custom_imports`` and
trained for an epoch on tiny synthetic videos; the user's ``MyOptimizerConstructor`` with
the tutorial's exact optimizer config must give TSM-R50 the lr / weight decay multipliers
MMAction2 1.2.0's ``TSMOptimWrapperConstructor`` gives (golden from
tests/fixtures/optim/make_fixtures_mmengine.py, variant ``tsm1x_tutorial``).
"""

from __future__ import annotations

import importlib
import json
import math
import os
import re
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from engine_utils import REPO, TINY_CONFIG, json_records, tiny_workspace

import actionjax.registry
from actionjax.registry import Registry

DOC = os.path.join(REPO, 'docs', 'customize.md')
BLOCK = re.compile(r'^```python\n(# (my_project/\S+\.py)\n.*?)^```', re.DOTALL | re.MULTILINE)
PROJECT_CONFIG = 'my_project/configs/tsn_my_project.py'
TUTORIAL_OPTIMIZER = dict(type='SGD', constructor='MyOptimizerConstructor', paramwise_cfg=dict(fc_lr5=True),
                          lr=0.02, momentum=0.9, weight_decay=0.0001)


def project_files() -> dict[str, str]:
    """``{relative path: source}`` of every user file the page shows."""
    with open(DOC, encoding='utf-8') as f:
        return {path: source for source, path in BLOCK.findall(f.read())}


@pytest.fixture
def fresh_registries(monkeypatch):
    """Registries holding only actionjax's own entries, as in a fresh process, restored afterwards."""
    for registry in vars(actionjax.registry).values():
        if isinstance(registry, Registry):
            builtin = {k: v for k, v in registry.entries.items()
                       if getattr(v, '__module__', '').startswith('actionjax')}
            monkeypatch.setattr(registry, '_entries', builtin)


@pytest.fixture
def my_project(tmp_path, monkeypatch, fresh_registries):
    """The page's project under ``tmp_path``: importable, and the working directory."""
    files = project_files()
    for path, source in files.items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source)
    (tmp_path / 'my_project' / '__init__.py').write_text('')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for name in [m for m in sys.modules if m == 'my_project' or m.startswith('my_project.')]:
        del sys.modules[name]


def test_the_page_shows_every_file_of_the_project():
    assert sorted(project_files()) == [
        PROJECT_CONFIG, 'my_project/my_head.py', 'my_project/my_loss.py', 'my_project/my_lr_updater.py',
        'my_project/my_optimizer.py', 'my_project/my_optimizer_constructor.py', 'my_project/my_resnet.py']


def test_tutorial_constructor_gives_mmaction2s_tsm_multipliers(my_project):
    from actionjax.models import build_model
    from actionjax.optim import build_constructor, describe_model

    importlib.import_module('my_project.my_optimizer_constructor')
    with open(os.path.join(REPO, 'tests', 'fixtures', 'optim', 'golden_param_groups_mmengine.json')) as f:
        golden = json.load(f)['tsm1x_tutorial']
    assert {k: v for k, v in golden['optimizer'].items() if k != 'constructor'} == {
        k: v for k, v in TUTORIAL_OPTIMIZER.items() if k != 'constructor'}
    model = build_model(dict(model=golden['model_cfg']))
    tree = describe_model(model, None, jax.ShapeDtypeStruct((1, 8, 32, 32, 3), jnp.uint8))
    assignments = build_constructor(TUTORIAL_OPTIMIZER).assign(tree)
    assert [a.info.name for a in assignments] == [row[0] for row in golden['params']]
    for a, row in zip(assignments, golden['params'], strict=True):
        name, shape, lr_mult, decay_mult, _, in_optimizer = row
        assert in_optimizer and math.prod(a.info.shape) == math.prod(shape), name
        assert a.lr_mult == pytest.approx(lr_mult, rel=1e-12), name
        assert a.decay_mult == pytest.approx(decay_mult, rel=1e-12, abs=1e-15), name
    assert {a.group for a in assignments} == {'default', 'lr1_decay0', 'lr5_decay1', 'lr10_decay0'}
    with pytest.raises(KeyError, match="'fc_lr6' \\(did you mean 'fc_lr5'\\?\\)"):
        build_constructor(dict(TUTORIAL_OPTIMIZER, paramwise_cfg=dict(fc_lr5=True, fc_lr6=True))).assign(tree)


def test_one_config_names_every_component_and_trains(my_project):
    """The page's config, on the tiny videos: MySGD + MyOptimizerConstructor + MyResNet with
    its own pretrained loading + MyTSNHead + MyLoss + RelativeStep, one epoch."""
    from actionjax import train
    from actionjax.engine import build
    from actionjax.models import build_model
    from actionjax.runtime_config import load_config

    tiny_workspace(str(my_project))
    config = my_project / PROJECT_CONFIG
    source = config.read_text()
    assert "_base_ = ['../../configs/tsn_demo.py']" in source
    config.write_text(source.replace("'../../configs/tsn_demo.py'", repr(TINY_CONFIG)))  # tiny data, 2 epochs

    # The backbone's own init_weights runs where training initialises the model.
    cfg = load_config(str(config), {'model.backbone.pretrained': 'my_resnet_stem.npz'})
    model = build_model(cfg)
    sample = {'imgs': np.zeros((1, 2, 16, 16, 3), np.uint8), 'label': np.zeros(1, np.int64)}
    variables = build.init_variables(model, sample, seed=0)
    stem = variables['params']['backbone']['conv1']['conv']['kernel']
    np.savez('my_resnet_stem.npz', **{'params/conv1/conv/kernel': np.full(stem.shape, 0.25, np.float32)})
    loaded = build.load_pretrained(variables, cfg)
    assert np.all(loaded['params']['backbone']['conv1']['conv']['kernel'] == 0.25)
    np.testing.assert_array_equal(loaded['params']['cls_head']['fc_cls']['kernel'],
                                  variables['params']['cls_head']['fc_cls']['kernel'])

    result = train.main(['--config', str(config), '--work-dir', 'work', '--cfg-options', 'total_epochs=1',
                         'model.backbone.pretrained=my_resnet_stem.npz'])
    assert int(result['state'].step) == 4  # 16 videos, batches of 4
    records = json_records('work')
    assert records and all(np.isfinite(r['loss']) for r in records)
    last = records[-1]
    for group in ('lr', 'lr/lr1_decay0', 'lr/lr5_decay1', 'lr/lr10_decay0'):
        assert last[group] == pytest.approx(0.1)  # RelativeStep's first lr, in every param group
    assert 0 <= last['loss_cls'] <= 1  # MyLoss: a mean absolute error of probabilities
    assert result['eval'] is not None and 'top1_acc' in result['eval']


def test_the_optimizer_without_lr_trains_and_the_config_lr_is_an_error(my_project):
    from actionjax import train

    tiny_workspace(str(my_project))
    config = my_project / 'my_optimizer_tiny.py'
    config.write_text(
        f'_base_ = [{TINY_CONFIG!r}]\n'
        "custom_imports = dict(imports=['my_project.my_optimizer'], allow_failed_imports=False)\n"
        "optimizer = dict(_delete_=True, type='MyOptimizer', a=0.01, b=0.9, c=1.0)\n"
        'lr_config = None\n')
    result = train.main(['--config', str(config), '--work-dir', 'work', '--no-validate',
                         '--cfg-options', 'total_epochs=1'])
    assert int(result['state'].step) == 4
    assert all('lr' not in r and np.isfinite(r['loss']) for r in json_records('work'))
    with pytest.raises(TypeError, match="optimizer.lr=0.02, but MyOptimizer\\(a, b, c\\) takes no lr"):
        train.main(['--config', str(config), '--work-dir', 'work2', '--no-validate',
                    '--cfg-options', 'total_epochs=1', 'optimizer.lr=0.02'])


def test_loss_classes_are_called_through_forward(fresh_registries):
    from actionjax.models import build_loss
    from actionjax.models.losses import BaseWeightedLoss
    from actionjax.registry import LOSSES

    @LOSSES.register_module()
    class TorchStyleL1:  # the tutorial's form: __init__ and forward, no __call__
        def forward(self, pred, target):
            return jnp.abs(pred - target).mean()

    @LOSSES.register_module()
    class WeightedL1(BaseWeightedLoss):  # MMAction2's BaseWeightedLoss form: _forward, loss_weight
        def _forward(self, pred, target):
            return jnp.abs(pred - target).mean()

    @LOSSES.register_module()
    class NotALoss:
        pass

    pred, target = jnp.array([1.0, 2.0]), jnp.array([0.0, 4.0])
    assert float(build_loss(dict(type='TorchStyleL1'))(pred, target)) == 1.5
    weighted = build_loss(dict(type='WeightedL1', loss_weight=2.0))
    assert float(weighted(pred, target)) == float(weighted.forward(pred, target)) == 3.0
    with pytest.raises(TypeError, match="model.loss_bbox: LOSSES\\['NotALoss'\\] built a NotALoss, which is "
                                        'neither callable nor has a forward method'):
        build_loss(dict(type='NotALoss'), 'model.loss_bbox')


def test_backbone_init_weights_must_keep_names_and_shapes(fresh_registries):
    import flax.linen as nn

    from actionjax.models.pretrained import init_backbone_weights
    from actionjax.registry import BACKBONES

    @BACKBONES.register_module()
    class TwoLayers(nn.Module):
        pretrained: str | None = None

        @nn.compact
        def __call__(self, x, train=False):
            return nn.Dense(3, name='fc2')(nn.Dense(4, name='fc1')(x))

        def init_weights(self, variables, pretrained=None):
            if pretrained == 'ones':
                return jax.tree.map(jnp.ones_like, variables)
            return {'params': {'fc1': variables['params']['fc1']}}  # forgets fc2

    params = TwoLayers().init(jax.random.key(0), jnp.zeros((1, 2)))['params']
    variables = {'params': {'backbone': params, 'cls_head': {'w': np.zeros(2)}}, 'batch_stats': {}}
    loaded = init_backbone_weights(variables, dict(backbone=dict(type='TwoLayers', pretrained='ones')))
    assert all(np.all(leaf == 1) for leaf in jax.tree.leaves(loaded['params']['backbone']))
    assert loaded['params']['cls_head']['w'] is variables['params']['cls_head']['w']
    with pytest.raises(ValueError, match=r'TwoLayers.init_weights\(variables, pretrained=None\) must return.*'
                                         'params/fc2/kernel is missing'):
        init_backbone_weights(variables, dict(backbone=dict(type='TwoLayers')))
