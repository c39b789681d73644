"""MMAction2 / torchvision checkpoint conversion against golden outputs of MMAction2 1.2.0.

The fixtures under tests/fixtures/convert/ were made by make_fixtures.py there with
MMAction2's own model code: small TSN and TSM recognizers with random weights and
BatchNorm statistics, their checkpoints, an input batch and MMAction2's backbone
features, per-clip logits and clip-averaged scores.
"""

from __future__ import annotations

import gzip
import json
import os

import jax
import numpy as np
import pytest
import torch

from actionjax.config import Config
from actionjax.models import build_model
from convert import mmaction2 as mm
from convert import torchvision as tv

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures', 'convert')
RTOL = 1e-4  # relative to max |value|, as the issue states parity


def fixture(name: str) -> str:
    return os.path.join(HERE, name)


def assert_close(actual, expected, what: str) -> None:
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f'{what}: shape {actual.shape} != {expected.shape}'
    err = np.abs(actual - expected).max() / np.abs(expected).max()
    assert err < RTOL, f'{what}: max abs diff / max |value| = {err:.2e}'


class Converted:
    """A fixture model: config, converted variables, golden outputs and jitted forwards."""

    def __init__(self, name: str) -> None:
        self.cfg = Config.fromfile(fixture(f'{name}.py'))
        self.pth = fixture(f'{name}.pth')
        self.golden = dict(np.load(fixture(f'{name}.npz')))
        self.variables = mm.convert_checkpoint(self.pth, self.cfg)
        self.model = build_model(self.cfg)

    def apply(self, method: str) -> np.ndarray:
        fn = jax.jit(lambda v, x: self.model.apply(v, x, train=False, method=method))
        return np.asarray(fn(self.variables, self.golden['imgs']))

    def init(self) -> dict:
        """Stand-in initial variables: random arrays of the model's shapes."""
        rng = np.random.default_rng(0)
        return jax.tree.map(lambda s: rng.standard_normal(s.shape).astype(s.dtype),
                            mm.variable_shapes(self.cfg))

    def features(self) -> np.ndarray:
        return self.apply('extract_feat')  # (N * V, h, w, C), normalised inside the model

    def logits(self) -> np.ndarray:
        return self.apply('forward_head')  # (N, clips, num_classes)

    def scores(self) -> np.ndarray:
        return self.apply('__call__')  # (N, num_classes) after average_clips='prob'


@pytest.fixture(scope='module')
def tsn() -> Converted:
    return Converted('tsn_r50_tiny')


@pytest.fixture(scope='module')
def tsm() -> Converted:
    return Converted('tsm_r18_tiny')


def torch_state_dict(path: str) -> dict[str, torch.Tensor]:
    return mm.torch_load(path)['state_dict']


# ------------------------------------------------------------------ parity with MMAction2

@pytest.mark.parametrize('name', ['tsn', 'tsm'])
def test_backbone_features_match_mmaction2(name, request):
    model = request.getfixturevalue(name)
    assert_close(model.features(), model.golden['features'], f'{name} backbone features')


@pytest.mark.parametrize('name', ['tsn', 'tsm'])
def test_logits_match_mmaction2(name, request):
    model = request.getfixturevalue(name)
    assert_close(model.logits(), model.golden['logits'], f'{name} logits')


@pytest.mark.parametrize('name', ['tsn', 'tsm'])
def test_clip_averaged_scores_match_mmaction2(name, request):
    model = request.getfixturevalue(name)
    assert_close(model.scores(), model.golden['scores'], f'{name} scores')


def test_every_variable_is_converted_and_bn_stats_are_not_defaults(tsn):
    shapes = mm.variable_shapes(tsn.cfg)
    assert jax.tree.structure(shapes) == jax.tree.structure(tsn.variables)
    stats = tsn.variables['batch_stats']['backbone']['conv1']['bn']
    assert not np.allclose(stats['mean'], 0) and not np.allclose(stats['var'], 1)
    kernel = tsn.variables['params']['backbone']['conv1']['conv']['kernel']
    weight = torch_state_dict(tsn.pth)['backbone.conv1.conv.weight'].numpy()
    np.testing.assert_array_equal(kernel, weight.transpose(2, 3, 1, 0))  # OIHW -> HWIO
    fc = tsn.variables['params']['cls_head']['fc_cls']['kernel']
    np.testing.assert_array_equal(fc, torch_state_dict(tsn.pth)['cls_head.fc_cls.weight'].numpy().T)


def test_tsm_shift_conv_names_are_mmaction2s(tsm):
    weight = torch_state_dict(tsm.pth)['backbone.layer1.0.conv1.conv.net.weight'].numpy()
    named = {mm.torch_key(s.collection, s.path): s for s in mm.target_slots(tsm.variables).values()}
    slot = named['backbone.layer1.0.conv1.conv.net.weight']
    np.testing.assert_array_equal(mm.get_leaf(tsm.variables['params'], slot.path),
                                  weight.transpose(2, 3, 1, 0))


# ------------------------------------------------------------------ checkpoint formats

def test_0x_checkpoint_with_module_prefix_converts_identically(tsn):
    variables = mm.convert_checkpoint(fixture('tsn_r50_tiny_0x.pth'), tsn.cfg)
    jax.tree.map(np.testing.assert_array_equal, variables, tsn.variables)


def test_bare_state_dict_and_data_preprocessor_keys(tsn, tmp_path):
    state = torch_state_dict(tsn.pth)
    state['data_preprocessor.mean'] = torch.zeros(3, 1, 1)
    torch.save(state, tmp_path / 'bare.pth')
    variables = mm.convert_checkpoint(tmp_path / 'bare.pth', tsn.cfg)
    jax.tree.map(np.testing.assert_array_equal, variables, tsn.variables)


def test_checkpoint_objects_load_without_running_their_code():
    # tsm_r18_tiny.pth pickles mmengine's HistoryBuffer (message_hub), which is not installed.
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in \
        torch.serialization.get_unsafe_globals_in_checkpoint(fixture('tsm_r18_tiny.pth'))
    state, meta = mm.read_checkpoint(fixture('tsm_r18_tiny.pth'))
    assert meta['mmaction_version'] == '1.2.0' and meta['epoch'] == 3
    assert all(isinstance(v, np.ndarray) for v in state.values())


# ------------------------------------------------------------------ round trip and CLI

@pytest.mark.parametrize('name', ['tsn_r50_tiny', 'tsm_r18_tiny'])
def test_cli_round_trip_is_exact(name, tmp_path, capsys):
    cfg, pth = fixture(f'{name}.py'), fixture(f'{name}.pth')
    out, back = tmp_path / 'converted', tmp_path / 'back.pth'
    assert mm.main([pth, '--config', cfg, '--out', str(out)]) == 0
    assert mm.main(['--reverse', str(out), '--config', cfg, '--out', str(back)]) == 0
    original, ckpt = torch_state_dict(pth), torch.load(back, weights_only=True)
    assert set(ckpt) == {'state_dict', 'meta'}
    assert list(ckpt['state_dict']) == list(original)  # same keys, same (torch) order
    for key, value in original.items():
        assert ckpt['state_dict'][key].dtype == value.dtype, key
        assert torch.equal(ckpt['state_dict'][key], value), key
    assert ckpt['meta']['mmaction_version'] == '1.2.0'


def test_reverse_names_follow_the_config_when_the_model_has_no_wrappers(tsm):
    # A state_dict written without TSM's wrapper names still matches, and going back
    # restores MMAction2's names from the config.
    state = {k: v.numpy() for k, v in torch_state_dict(tsm.pth).items()}
    weights, counters = mm.clean_state_dict(state)
    flat = {mm.strip_wrappers(k): v for k, v in weights.items()}
    assert 'backbone.layer1.0.conv1.conv.weight' in flat
    variables = mm.state_dict_to_variables(flat, mm.variable_shapes(tsm.cfg))
    jax.tree.map(np.testing.assert_array_equal, variables, tsm.variables)
    back = mm.variables_to_state_dict(variables, mm.mmaction2_key_fn(tsm.cfg.model), counters)
    assert sorted(back) == sorted(state)


def test_tsm_wrapper_names_of_every_resnet_tsm_variant():
    # State-dict keys of full-size MMAction2 ResNetTSMs: block/blockres shift, temporal
    # pool, non-local, no shift, ResNet-101 (shift on every other block).
    with gzip.open(fixture('tsm_key_names.json.gz'), 'rt') as f:
        cases = json.load(f)
    for case in cases:
        rename = mm.mmaction2_key_fn(dict(backbone=case['backbone']))
        keys = [f'backbone.{k}' for k in case['keys']]
        assert [rename(mm.strip_wrappers(k)) for k in keys] == keys, case['backbone']
        assert [rename(k) for k in keys] == keys, case['backbone']


# ------------------------------------------------------------------ errors

def mangled_state(tsn) -> dict[str, np.ndarray]:
    weights, _ = mm.clean_state_dict({k: v.numpy() for k, v in torch_state_dict(tsn.pth).items()})
    del weights['backbone.layer1.1.conv2.bn.running_var']
    weights['backbone.layer9.0.conv1.conv.weight'] = np.zeros((4, 4, 1, 1), np.float32)
    weights['cls_head.fc_cls.weight'] = np.zeros((400, 256), np.float32)
    return weights


def test_mismatch_lists_missing_unexpected_and_misshaped_keys_at_once(tsn):
    with pytest.raises(mm.CheckpointMismatchError) as info:
        mm.state_dict_to_variables(mangled_state(tsn), mm.variable_shapes(tsn.cfg))
    err = info.value
    assert err.missing == ['backbone.layer1.1.conv2.bn.running_var']
    assert err.unexpected == ['backbone.layer9.0.conv1.conv.weight']
    assert err.mismatched == [('cls_head.fc_cls.weight', (400, 256), (5, 256))]
    message = str(err)
    for text in ('missing', 'unexpected', 'shape mismatch', 'backbone.layer9.0.conv1.conv.weight',
                 'backbone.layer1.1.conv2.bn.running_var', 'checkpoint (400, 256), model (5, 256)'):
        assert text in message


def test_strict_false_only_downgrades_unexpected_keys(tsn, tmp_path, capsys):
    weights = {k: torch.from_numpy(v) for k, v in mangled_state(tsn).items()}
    weights['backbone.layer1.1.conv2.bn.running_var'] = torch_state_dict(tsn.pth)[
        'backbone.layer1.1.conv2.bn.running_var']
    weights['cls_head.fc_cls.weight'] = torch_state_dict(tsn.pth)['cls_head.fc_cls.weight']
    torch.save(dict(state_dict=weights, meta={}), tmp_path / 'extra.pth')
    args = [str(tmp_path / 'extra.pth'), '--config', fixture('tsn_r50_tiny.py'), '--out', str(tmp_path / 'o')]
    assert mm.main(args) == 1
    assert 'backbone.layer9.0.conv1.conv.weight' in capsys.readouterr().err
    with pytest.warns(UserWarning, match='layer9'):
        assert mm.main([*args, '--strict', 'false']) == 0
    # Missing keys stay errors with --strict false.
    del weights['backbone.conv1.bn.bias']
    torch.save(dict(state_dict=weights, meta={}), tmp_path / 'extra.pth')
    assert mm.main([*args[:-1], str(tmp_path / 'o2'), '--strict', 'false']) == 1
    assert 'backbone.conv1.bn.bias' in capsys.readouterr().err


# ------------------------------------------------------------------ torchvision

TV_TO_MM = {
    'conv1.weight': 'conv1.conv.weight',
    'bn1.running_mean': 'conv1.bn.running_mean',
    'layer1.0.conv3.weight': 'layer1.0.conv3.conv.weight',
    'layer1.0.bn3.weight': 'layer1.0.conv3.bn.weight',
    'layer2.1.bn1.running_var': 'layer2.1.conv1.bn.running_var',
    'layer1.0.downsample.0.weight': 'layer1.0.downsample.conv.weight',
    'layer1.0.downsample.1.bias': 'layer1.0.downsample.bn.bias',
    'fc.weight': None,
}


def test_torchvision_names():
    assert {k: tv.mmaction2_name(k) for k in TV_TO_MM} == TV_TO_MM
    with pytest.raises(KeyError):
        tv.mmaction2_name('features.0.weight')


def torchvision_style(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A torchvision ResNet state_dict with the backbone weights of an MMAction2 one.

    Written out by hand (torchvision does not import beside CPU torch here): ConvModule
    ``convN.conv``/``convN.bn`` -> ``convN``/``bnN``, stem ``conv1.bn`` -> ``bn1``,
    ``downsample.conv``/``bn`` -> ``downsample.0``/``1``; plus a 1000-class ``fc``.
    """
    out = {}
    for key, value in state.items():
        if not key.startswith('backbone.'):
            continue
        key = mm.strip_wrappers(key[len('backbone.'):])
        key = key.replace('downsample.conv.', 'downsample.0.').replace('downsample.bn.', 'downsample.1.')
        for n in '123':
            key = key.replace(f'conv{n}.conv.', f'conv{n}.').replace(f'conv{n}.bn.', f'bn{n}.')
        out[key] = value
    channels = state['cls_head.fc_cls.weight'].shape[1]
    out['fc.weight'], out['fc.bias'] = torch.randn(1000, channels), torch.randn(1000)
    return out


@pytest.mark.parametrize('name', ['tsn', 'tsm'])
def test_torchvision_backbone_lands_where_mmaction2_puts_it(name, request, tmp_path, capsys):
    model = request.getfixturevalue(name)
    state = torch_state_dict(model.pth)
    torch.save(torchvision_style(state), tmp_path / 'resnet.pth')
    assert 'layer1.0.bn1.running_var' in torch.load(tmp_path / 'resnet.pth')
    assert tv.main([str(tmp_path / 'resnet.pth'), '--out', str(tmp_path / 'tv')]) == 0
    init = model.init()
    loaded = tv.load_pretrained_backbone(init, tmp_path / 'tv')
    for c in ('params', 'batch_stats'):
        jax.tree.map(np.testing.assert_array_equal, loaded[c]['backbone'], model.variables[c]['backbone'])
    # The head is untouched, and so are the inputs.
    jax.tree.map(np.testing.assert_array_equal, loaded['params']['cls_head'], init['params']['cls_head'])
    assert not np.array_equal(init['params']['backbone']['conv1']['conv']['kernel'],
                              loaded['params']['backbone']['conv1']['conv']['kernel'])


def test_torchvision_shape_mismatch_keeps_init_and_warns(tsn, tmp_path):
    state = torchvision_style(torch_state_dict(tsn.pth))
    state['conv1.weight'] = torch.randn(64, 10, 7, 7)  # e.g. a flow model's 10-channel stem
    torch.save(state, tmp_path / 'resnet.pth')
    init = tsn.init()
    with pytest.warns(UserWarning, match='conv1.conv.weight'):
        loaded = tv.load_pretrained_backbone(init, str(tmp_path / 'resnet.pth'))  # a .pth works too
    np.testing.assert_array_equal(loaded['params']['backbone']['conv1']['conv']['kernel'],
                                  init['params']['backbone']['conv1']['conv']['kernel'])
    np.testing.assert_array_equal(loaded['params']['backbone']['conv1']['bn']['scale'],
                                  tsn.variables['params']['backbone']['conv1']['bn']['scale'])


def test_torchvision_url_and_foreign_files_are_refused(tmp_path):
    with pytest.raises(ValueError, match='convert.torchvision'):
        tv.load_pretrained_backbone({'params': {'backbone': {}}}, 'torchvision://resnet50')
    torch.save({'features.0.weight': torch.zeros(1)}, tmp_path / 'vgg.pth')
    with pytest.raises(ValueError, match='features.0.weight'):
        tv.convert_torchvision(tmp_path / 'vgg.pth')
