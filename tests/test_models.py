"""Models: MMAction2 names and sizes, torch-equivalent layers, temporal shift, freezing, views.

Full-size R50 models are only traced (``jax.eval_shape``); anything that runs uses
ResNet-18 cut to one or two stages on 32 px inputs.
"""

import functools
import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from actionjax.config import Config
from actionjax.models import Recognizer2D, build_model
from actionjax.models.backbones.resnet import ResNet
from actionjax.models.backbones.resnet_tsm import ResNetTSM, TemporalShift, temporal_shift
from actionjax.models.common import BatchNorm, ConvModule, max_pool
from actionjax.models.common.param_names import torch_name
from actionjax.models.heads import TSMHead, TSNHead, average_clip
from actionjax.registry import BACKBONES, HEADS, LOSSES, RECOGNIZERS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(REPO, 'tests', 'fixtures', 'models', 'mmaction2_keys.json')) as f:
    MM_KEYS = json.load(f)  # made by tests/fixtures/models/make_fixtures.py with MMAction2 1.2.0

# Golden sizes of MMAction2 1.2.0's TSN-R50 / TSM-R50 (400 classes): sum of numel over
# model.parameters() and over the BN running_mean/var buffers, from
# $MMACTION2_PYTHON with MODELS.build(configs/_base_/models/tsn_r50.py's model).
R50_400_PARAMS = 24_327_632
R50_BN_STATS = 53_120

KEY = jax.random.key(0)
MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


def flat_variables(variables):
    """``{mmaction2 key: shape}`` of Flax variables, torch layouts (OIHW, (out, in))."""
    out = {}
    for collection in ('params', 'batch_stats'):
        for key_path, leaf in jax.tree_util.tree_flatten_with_path(variables.get(collection, {}))[0]:
            name = torch_name(tuple(str(k.key) for k in key_path), collection)
            shape = tuple(leaf.shape)
            if len(shape) == 4:  # HWIO -> OIHW
                shape = (shape[3], shape[2], shape[0], shape[1])
            out[name] = list(shape[::-1] if len(shape) == 2 else shape)
    return out


def init_shapes(model, imgs):
    return jax.eval_shape(lambda: model.init({'params': KEY, 'dropout': KEY}, imgs, train=False))


def num_elements(tree):
    return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(tree))


# --------------------------------------------------------------------------- names and sizes


@pytest.mark.parametrize('name', sorted(MM_KEYS))
def test_variable_names_and_shapes_equal_mmaction2(name):
    ref = MM_KEYS[name]
    cfg = ref['config']
    model = build_model(dict(model=cfg))
    views = getattr(model.cls_head, 'num_segments', 3)
    shapes = init_shapes(model, jnp.zeros((1, views, 32, 32, 3), jnp.uint8))
    assert flat_variables(shapes) == ref['keys']
    assert num_elements(shapes['params']) == ref['num_params']
    assert num_elements(shapes['batch_stats']) == ref['num_buffers']


@pytest.mark.parametrize('path', ['configs/_base_/models/tsn_r50.py', 'configs/_base_/models/tsm_r50.py'])
def test_model_configs_have_mmaction2_sizes(path):
    cfg = Config.fromfile(os.path.join(REPO, path))
    model = build_model(cfg)
    assert isinstance(model, Recognizer2D)
    assert cfg.model.backbone.pretrained is None
    shapes = init_shapes(model, jnp.zeros((1, 8, 32, 32, 3), jnp.uint8))
    assert num_elements(shapes['params']) == R50_400_PARAMS
    assert num_elements(shapes['batch_stats']) == R50_BN_STATS


@pytest.mark.parametrize('path,views,clip', [('configs/tsn.py', 3, 3), ('configs/tsm.py', 8, 8)])
def test_recipes_build_with_normalisation_from_the_pipeline(path, views, clip):
    cfg = Config.fromfile(os.path.join(REPO, path))
    sample_frames = dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips=clip)
    assert cfg.data.train.pipeline[1] == sample_frames
    model = build_model(cfg)
    assert tuple(model.data_preprocessor['mean']) == tuple(MEAN)
    assert tuple(model.data_preprocessor['std']) == tuple(STD)
    imgs = jnp.zeros((2, views, 224, 224, 3), jnp.uint8)
    assert jax.eval_shape(model.apply, init_shapes(model, imgs), imgs).shape == (2, 400)


def test_registered_under_mmaction2_names():
    for reg, names in ((BACKBONES, ['ResNet', 'ResNetTSM']), (HEADS, ['TSNHead', 'TSMHead']),
                       (RECOGNIZERS, ['Recognizer2D']),
                       (LOSSES, ['CrossEntropyLoss', 'BCELossWithLogits', 'NLLLoss'])):
        for name in names:
            assert name in reg


# --------------------------------------------------------------------------- torch-equivalent layers


@pytest.mark.parametrize('size', [31, 32])
@pytest.mark.parametrize('kernel,stride,padding', [(7, 2, 3), (3, 2, 1), (1, 2, 0)])
def test_conv_padding_matches_torch(size, kernel, stride, padding):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, size, size, 3)).astype(np.float32)
    kernel_hwio = rng.standard_normal((kernel, kernel, 3, 4)).astype(np.float32)
    conv = ConvModule(4, kernel, stride, padding, with_norm=False, with_act=False)
    ours = conv.apply({'params': {'conv': {'kernel': kernel_hwio}}}, x)
    ref = F.conv2d(torch.tensor(x).permute(0, 3, 1, 2), torch.tensor(kernel_hwio.transpose(3, 2, 0, 1)),
                   stride=stride, padding=padding).permute(0, 2, 3, 1).numpy()
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('size', [15, 16])
def test_stem_max_pool_matches_torch(size):
    x = -np.abs(np.random.default_rng(1).standard_normal((2, size, size, 4))).astype(np.float32)
    ref = F.max_pool2d(torch.tensor(x).permute(0, 3, 1, 2), 3, 2, 1).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(max_pool(x, 3, 2, 1), ref)  # negative inputs: padding must be -inf


@pytest.mark.parametrize('shape,kernel,stride,padding', [
    ((2, 15, 15, 4), (3, 3), (2, 2), (1, 1)),        # ResNet's stem pool, odd size
    ((2, 4, 9, 8, 3), (1, 3, 3), (1, 2, 2), (0, 1, 1)),  # I3D's pool1
    ((1, 5, 6, 6, 2), (3, 1, 1), (2, 1, 1), (1, 0, 0)),  # TSM's temporal pool
])
def test_max_pool_gradient_matches_torch_with_ties(shape, kernel, stride, padding):
    from actionjax.models.common.pooling import max_pool as max_pool_nd

    rng = np.random.default_rng(3)
    # few distinct values: most windows hold their maximum more than once (ReLU's zeros do too)
    x = np.maximum(rng.integers(-2, 3, size=shape), 0).astype(np.float32)
    cotangent = rng.standard_normal(1000).astype(np.float32)

    def ours(x):
        y = max_pool_nd(x, kernel, stride, [(p, p) for p in padding])
        return (y * cotangent[:y.size].reshape(y.shape)).sum()

    channels_first = (0, x.ndim - 1, *range(1, x.ndim - 1))
    xt = torch.tensor(x.transpose(channels_first), requires_grad=True)
    pool = F.max_pool2d if len(kernel) == 2 else F.max_pool3d
    yt = pool(xt, kernel, stride, padding).permute(0, *range(2, x.ndim), 1)
    (yt * torch.tensor(cotangent[:yt.numel()]).reshape(yt.shape)).sum().backward()
    ref = xt.grad.permute(0, *range(2, x.ndim), 1).numpy()
    grad = np.asarray(jax.grad(ours)(jnp.asarray(x)))
    np.testing.assert_array_equal(grad != 0, ref != 0)  # each window's first maximum takes it
    np.testing.assert_allclose(grad, ref, rtol=1e-6, atol=1e-7)  # overlapping windows: sum order


@pytest.mark.parametrize('shape,kernel,stride,padding', [
    ((4, 15, 15, 3), (7, 7, 3, 5), 2, 3),   # an RGB stem
    ((6, 9, 9, 4), (3, 3, 4, 5), 1, 1),     # more output pixels than a chunk
    ((5, 9, 8, 4), (3, 3, 4, 5), 2, 1),     # strided, a prime number of frames
])
def test_weight_gradient_over_row_patches_equals_xla(monkeypatch, shape, kernel, stride, padding):
    from actionjax.models.common import conv_weight_grad

    monkeypatch.setattr(conv_weight_grad, 'ROWS_PER_CHUNK', 40)  # several chunks at this size
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal(shape), rng.standard_normal(kernel)
    cotangent = rng.standard_normal(4000)

    def loss(conv):
        def f(x, w):
            y = conv(x, w, (stride, stride), ((padding, padding),) * 2)
            return (y * cotangent[:y.size].reshape(y.shape)).sum()
        return f

    def xla(x, w, strides, pads):
        return jax.lax.conv_general_dilated(x, w, strides, pads, dimension_numbers=('NHWC', 'HWIO', 'NHWC'))

    x, w = jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32)
    ours = jax.grad(loss(conv_weight_grad.conv2d), argnums=(0, 1))(x, w)
    ref = jax.grad(loss(xla), argnums=(0, 1))(x, w)
    np.testing.assert_allclose(ours[0], ref[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours[1], ref[1], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize('shape,kernel,stride', [
    ((2, 5, 9, 9, 6), (3, 3, 3), (1, 1, 1)),   # X3D / CSN / MViT's poolings
    ((2, 5, 9, 8, 6), (3, 3, 3), (1, 2, 2)),   # strided, as MViT's key and value poolings
    ((3, 9, 9, 4), (3, 3), (2, 2)),            # 2D
])
def test_depthwise_conv_equals_xla_grouped_conv(shape, kernel, stride):
    from actionjax.models.common.conv_module import conv_general_dilated

    rng = np.random.default_rng(5)
    channels = shape[-1]
    x = jnp.asarray(rng.standard_normal(shape), jnp.float32)
    w = jnp.asarray(rng.standard_normal((*kernel, 1, channels)), jnp.float32)
    pads = tuple((k // 2, k // 2) for k in kernel)
    spec = ('NTHWC', 'THWIO', 'NTHWC') if len(kernel) == 3 else ('NHWC', 'HWIO', 'NHWC')
    numbers = jax.lax.conv_dimension_numbers(x.shape, w.shape, spec)

    def loss(conv):
        return lambda x, w: (conv(x, w, stride, pads, dimension_numbers=numbers, feature_group_count=channels)
                             ** 2).sum()

    ours = jax.value_and_grad(loss(conv_general_dilated), argnums=(0, 1))(x, w)
    ref = jax.value_and_grad(loss(jax.lax.conv_general_dilated), argnums=(0, 1))(x, w)
    np.testing.assert_allclose(ours[0], ref[0], rtol=1e-5)
    for a, b in zip(ours[1], ref[1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


def test_batchnorm_matches_torch_in_train_and_eval():
    x = np.random.default_rng(2).standard_normal((4, 5, 5, 3)).astype(np.float32) * 3 + 1
    bn = BatchNorm()
    variables = bn.init(KEY, x, use_running_average=False)
    y, updates = bn.apply(variables, x, use_running_average=False, mutable=['batch_stats'])
    ref_bn = torch.nn.BatchNorm2d(3)  # eps 1e-5, momentum 0.1
    ref_y = ref_bn(torch.tensor(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).detach().numpy()
    np.testing.assert_allclose(y, ref_y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(updates['batch_stats']['mean'], ref_bn.running_mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(updates['batch_stats']['var'], ref_bn.running_var.numpy(), rtol=1e-6)
    ref_bn.eval()
    eval_y = bn.apply({**variables, **updates}, x, use_running_average=True)
    ref_eval = ref_bn(torch.tensor(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).detach().numpy()
    np.testing.assert_allclose(eval_y, ref_eval, rtol=1e-5, atol=1e-5)
    assert isinstance(bn, nn.BatchNorm)


# --------------------------------------------------------------------------- temporal shift


def shift_reference(x, num_segments, shift_div):
    """TSM as MMAction2 describes it, frame by frame: with fold = C // shift_div, channels
    [0, fold) of frame t come from frame t + 1, channels [fold, 2 fold) from frame t - 1,
    zeros where that frame does not exist; the other channels stay."""
    n = x.shape[0] // num_segments
    clips = x.reshape((n, num_segments) + x.shape[1:])
    out = np.zeros_like(clips)
    fold = x.shape[-1] // shift_div
    for t in range(num_segments):
        if t + 1 < num_segments:
            out[:, t, ..., :fold] = clips[:, t + 1, ..., :fold]
        if t > 0:
            out[:, t, ..., fold:2 * fold] = clips[:, t - 1, ..., fold:2 * fold]
        out[:, t, ..., 2 * fold:] = clips[:, t, ..., 2 * fold:]
    return out.reshape(x.shape)


@pytest.mark.parametrize('num_segments,channels,shift_div', [(8, 16, 8), (3, 10, 3), (4, 7, 2)])
def test_temporal_shift_matches_reference(num_segments, channels, shift_div):
    x = np.random.default_rng(3).standard_normal((2 * num_segments, 3, 2, channels)).astype(np.float32)
    np.testing.assert_array_equal(temporal_shift(jnp.asarray(x), num_segments, shift_div),
                                  shift_reference(x, num_segments, shift_div))


def test_shifted_conv_sees_shifted_input():
    """blockres wraps a block's conv1.conv as TemporalShift(net=conv): the conv sees the shifted input."""
    wrapper = functools.partial(TemporalShift, num_segments=4, shift_div=4)
    conv = ConvModule(6, 3, 1, 1, with_norm=False, with_act=False, conv_wrapper=wrapper)
    x = np.random.default_rng(4).standard_normal((8, 6, 6, 8)).astype(np.float32)
    kernel = np.random.default_rng(5).standard_normal((3, 3, 8, 6)).astype(np.float32)
    variables = {'params': {'conv': {'net': {'kernel': kernel}}}}  # MMAction2: conv1.conv.net.weight
    assert jax.tree_util.tree_structure(jax.eval_shape(conv.init, KEY, x)) == jax.tree_util.tree_structure(
        variables)
    expected = F.conv2d(torch.tensor(shift_reference(x, 4, 4)).permute(0, 3, 1, 2),
                        torch.tensor(kernel.transpose(3, 2, 0, 1)), padding=1).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(jax.jit(conv.apply)(variables, x), expected, rtol=1e-4, atol=1e-4)


def test_temporal_pool_halves_frames():
    backbone = ResNetTSM(depth=18, num_stages=2, out_indices=(1,), strides=(1, 2), dilations=(1, 1),
                         num_segments=4, temporal_pool=True)
    x = jnp.zeros((8, 32, 32, 3))
    shapes = jax.eval_shape(lambda: backbone.init(KEY, x))
    assert 'net' in shapes['params']['layer2']  # MMAction2: layer2.net.0...
    assert jax.eval_shape(backbone.apply, shapes, x).shape == (4, 4, 4, 128)
    with pytest.raises(ValueError, match='num_segments must be even'):
        ResNetTSM(depth=18, num_segments=3, temporal_pool=True)


def test_non_local_is_rejected_clearly():
    with pytest.raises(NotImplementedError, match='non-local'):
        ResNetTSM(depth=50, non_local=((0, 0, 0), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 0, 0)),
                  non_local_cfg=dict(sub_sample=True, use_scale=False))


# --------------------------------------------------------------------------- freezing


SMALL = dict(depth=18, num_stages=2, out_indices=(1,), strides=(1, 2), dilations=(1, 1))


@pytest.fixture(scope='module')
def small():
    """A 2-stage ResNet-18, its variables (stats moved off their init) and a batch."""
    x = np.random.default_rng(5).standard_normal((4, 32, 32, 3)).astype(np.float32)
    variables = jax.jit(ResNet(**SMALL).init)(KEY, x)
    variables['batch_stats'] = jax.tree_util.tree_map(lambda v: v + 0.5, variables['batch_stats'])
    return variables, x


def changed_stats(backbone, small):
    """Dotted names of the BN layers whose running stats move in one training step."""
    variables, x = small
    _, updates = jax.jit(functools.partial(backbone.apply, train=True, mutable=['batch_stats']))(variables, x)
    old = dict(jax.tree_util.tree_flatten_with_path(variables['batch_stats'])[0])
    return {'.'.join(str(k.key) for k in key_path[:-1])
            for key_path, new in jax.tree_util.tree_flatten_with_path(updates['batch_stats'])[0]
            if not np.array_equal(old[key_path], new)}


def test_frozen_stages(small):
    backbone = ResNet(**SMALL, frozen_stages=1)
    assert backbone.frozen_prefixes() == ('conv1.', 'layer1.')
    changed = changed_stats(backbone, small)
    assert changed and all(name.startswith('layer2.') for name in changed)
    assert ResNet(**SMALL).frozen_prefixes() == ()


def test_norm_eval_uses_running_stats_in_training(small):
    backbone = ResNet(**SMALL, norm_eval=True)
    assert changed_stats(backbone, small) == set()
    assert backbone.frozen_prefixes() == ()  # affine parameters still train


def test_partial_bn_trains_only_the_first_norm(small):
    backbone = ResNet(**SMALL, partial_bn=True)
    assert changed_stats(backbone, small) == {'conv1.bn'}
    prefixes = backbone.frozen_prefixes()
    params = small[0]['params']
    names = ['.'.join(str(k.key) for k in kp) for kp, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    frozen = {n for n in names if n.startswith(prefixes)}
    assert frozen == {n for n in names if '.bn.' in n and not n.startswith('conv1.')}


def test_recognizer_frozen_prefixes_and_requires_grad():
    model = build_model(dict(model=dict(type='Recognizer2D',
                                        backbone=dict(type='ResNet', depth=50, frozen_stages=2),
                                        cls_head=dict(type='TSNHead', num_classes=4, in_channels=2048))))
    assert model.frozen_prefixes() == ('backbone.conv1.', 'backbone.layer1.', 'backbone.layer2.')
    no_grad = ResNet(depth=18, norm_cfg=dict(type='BN2d', requires_grad=False)).frozen_prefixes()
    assert no_grad[0] == 'conv1.bn.' and len(no_grad) == 1 + 4 * 2 * 2 + 3  # stem, 16 convs, 3 downsamples


# --------------------------------------------------------------------------- recognizer


def tiny_tsm_cfg(**head):
    one_stage = dict(depth=18, num_stages=1, out_indices=(0,), strides=(1,), dilations=(1,))
    return dict(
        model=dict(type='Recognizer2D',
                   backbone=dict(type='ResNetTSM', **one_stage, num_segments=2),
                   cls_head=dict(type='TSMHead', num_classes=5, in_channels=64, num_segments=2, **head),
                   test_cfg=dict(average_clips='prob')),
        data=dict(train=dict(pipeline=[dict(type='Normalize', mean=MEAN, std=STD, to_bgr=False)])))


@pytest.fixture(scope='module')
def tiny_tsm():
    """A 1-stage TSM-R18 on 2 samples x 2 clips x 2 segments, and its head output compiled once."""
    model = build_model(tiny_tsm_cfg(dropout_ratio=0.5))
    imgs = np.random.default_rng(6).integers(0, 256, (2, 4, 32, 32, 3), dtype=np.uint8)
    variables = jax.jit(functools.partial(model.init, train=False))({'params': KEY, 'dropout': KEY}, imgs)
    forward_head = jax.jit(functools.partial(model.apply, method='forward_head'), static_argnames='normalize')
    return model, variables, imgs, forward_head


def test_normalisation_on_device_and_bypass(tiny_tsm):
    model, variables, imgs, forward_head = tiny_tsm
    assert tuple(model.data_preprocessor['mean']) == tuple(MEAN)
    normalised = (imgs.astype(np.float32) - np.float32(MEAN)) / np.float32(STD)
    np.testing.assert_allclose(model.apply(variables, imgs, method='preprocess'), normalised, rtol=1e-6)
    np.testing.assert_allclose(forward_head(variables, imgs),
                               forward_head(variables, normalised, normalize=False), rtol=1e-5, atol=1e-5)
    rgb = build_model(dict(model=dict(tiny_tsm_cfg()['model'], data_preprocessor=dict(
        type='ActionDataPreprocessor', mean=MEAN, std=STD, to_rgb=True))))
    flipped = (imgs[..., ::-1].astype(np.float32) - np.float32(MEAN)) / np.float32(STD)
    np.testing.assert_allclose(rgb.apply(variables, imgs, method='preprocess'), flipped, rtol=1e-6)


def test_test_views_are_averaged_as_mmaction2(tiny_tsm):
    model, variables, imgs, forward_head = tiny_tsm  # 4 views = 2 clips of num_segments=2
    raw = np.asarray(forward_head(variables, imgs))
    assert raw.shape == (2, 2, 5)
    prob = np.exp(raw) / np.exp(raw).sum(-1, keepdims=True)
    np.testing.assert_allclose(model.apply(variables, raw, method='average'), prob.mean(1), rtol=1e-5)
    np.testing.assert_allclose(average_clip(raw, 'score'), raw.mean(1), rtol=1e-6)
    np.testing.assert_array_equal(average_clip(raw, None), raw)  # 1.x layout: (N, K, C)
    np.testing.assert_array_equal(average_clip(raw[:, :1], None), raw[:, 0])
    assert jax.eval_shape(functools.partial(model.apply, method='logits'), variables, imgs).shape == (2, 2, 5)
    with pytest.raises(ValueError, match='average_clips'):
        average_clip(raw, 'max')


def test_average_clips_from_head_or_test_cfg():
    from actionjax.config import ConfigError

    head = dict(type='TSNHead', num_classes=3, in_channels=512, average_clips='score')
    backbone = dict(type='ResNet', depth=18)
    assert Recognizer2D(backbone=backbone, cls_head=head).average_clips == 'score'
    # a 0.x test_cfg.average_clips reaches the head through the runtime config
    model = dict(type='Recognizer2D', backbone=backbone, cls_head=dict(head, average_clips=None),
                 test_cfg=dict(average_clips='prob'))
    assert build_model(model).average_clips == 'prob'
    with pytest.raises(ConfigError, match='disagree'):
        build_model(dict(model, cls_head=head))
    with pytest.raises(ValueError, match='average_clips'):
        Recognizer2D(backbone=backbone, cls_head=dict(head, average_clips='mean'))


def test_max_testing_views_gives_the_same_scores(tiny_tsm):
    model, variables, imgs, forward_head = tiny_tsm
    chunked = build_model(dict(model=dict(tiny_tsm_cfg(dropout_ratio=0.5)['model'],
                                          test_cfg=dict(average_clips='score', max_testing_views=2)),
                               data=tiny_tsm_cfg()['data']))
    np.testing.assert_allclose(jax.jit(chunked.apply)(variables, imgs), forward_head(variables, imgs).mean(1),
                               rtol=1e-5, atol=1e-6)


def test_tsn_head_consensus_and_tsm_head_segments():
    feats = np.random.default_rng(7).standard_normal((6, 2, 2, 8)).astype(np.float32)
    head = TSNHead(num_classes=3, in_channels=8, dropout_ratio=0)
    variables = head.init(KEY, feats, 3)
    fc = variables['params']['fc_cls']
    expected = feats.mean(axis=(1, 2)).reshape(2, 3, 8).mean(1) @ fc['kernel'] + fc['bias']
    np.testing.assert_allclose(head.apply(variables, feats, 3), expected, rtol=1e-5, atol=1e-6)
    assert float(np.std(fc['kernel'])) == pytest.approx(0.01, rel=0.5)  # init_std
    tsm = TSMHead(num_classes=3, in_channels=8, num_segments=3, dropout_ratio=0)
    tsm_vars = tsm.init(KEY, feats)
    fc = tsm_vars['params']['fc_cls']
    expected = (feats.mean(axis=(1, 2)) @ fc['kernel'] + fc['bias']).reshape(2, 3, 3).mean(1)
    np.testing.assert_allclose(tsm.apply(tsm_vars, feats), expected, rtol=1e-5, atol=1e-6)
    pooled = TSMHead(num_classes=3, in_channels=8, num_segments=6, temporal_pool=True, dropout_ratio=0)
    assert pooled.apply(tsm_vars, feats).shape == (2, 3)  # 6 segments pooled to 3 per clip
    with pytest.raises(ValueError, match='multiple of 4'):
        TSMHead(num_classes=3, in_channels=8, num_segments=4).apply(tsm_vars, feats)


def test_jit_forward_backward_on_cpu(tiny_tsm):
    model, variables, imgs, _ = tiny_tsm
    labels = np.array([0, 4])
    clip = imgs[:, :2]

    @jax.jit
    def step(params, batch_stats, key):
        def loss_fn(p):
            losses, updates = model.apply({'params': p, 'batch_stats': batch_stats},
                                          {'imgs': clip, 'label': labels}, rngs={'dropout': key},
                                          mutable=['batch_stats'], method='loss')
            return sum(v for k, v in losses.items() if 'loss' in k), updates
        (loss, updates), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        params = jax.tree_util.tree_map(lambda p, g: p - 0.05 * g, params, grads)
        return params, updates['batch_stats'], loss, grads

    # dropout draws from the 'dropout' rng: two keys, two losses
    assert float(step(variables['params'], variables['batch_stats'], jax.random.key(1))[2]) != float(
        step(variables['params'], variables['batch_stats'], jax.random.key(2))[2])
    params, stats = variables['params'], variables['batch_stats']
    losses = []
    for i in range(4):
        params, stats, loss, grads = step(params, stats, jax.random.key(i))
        losses.append(float(loss))
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    metrics, _ = model.apply({'params': params, 'batch_stats': stats}, {'imgs': clip, 'label': labels},
                             rngs={'dropout': jax.random.key(9)}, mutable=['batch_stats'], method='loss')
    assert set(metrics) == {'top1_acc', 'top5_acc', 'loss_cls'} and float(metrics['top5_acc']) == 1.0
    scores = model.apply({'params': params, 'batch_stats': stats}, {'imgs': clip}, method='predict')
    assert scores['scores'].shape == (2, 5)
    assert float(jnp.abs(grads['backbone']['conv1']['conv']['kernel']).sum()) > 0
    assert float(jnp.abs(grads['backbone']['layer1']['0']['conv1']['conv']['net']['kernel']).sum()) > 0


def test_full_size_tsm_views():
    cfg = Config.fromfile(os.path.join(REPO, 'configs/_base_/models/tsm_r50.py'))
    model = build_model(cfg)
    imgs = jnp.zeros((1, 16, 112, 112, 3), jnp.uint8)  # 2 clips of 8 segments
    variables = init_shapes(model, imgs[:, :8])
    assert jax.eval_shape(model.apply, variables, imgs).shape == (1, 400)
    logits = jax.eval_shape(functools.partial(model.apply, method='logits'), variables, imgs)
    assert logits.shape == (1, 2, 400)
    feats = jax.eval_shape(functools.partial(model.apply, method='extract_feat'), variables, imgs)
    assert feats.shape == (16, 4, 4, 2048)


def test_errors_name_the_config_key():
    with pytest.raises(KeyError, match='backbone.depth'):
        ResNet(depth=42)
    with pytest.raises(KeyError, match='model.backbone.type'):
        build_model(dict(model=dict(type='Recognizer2D', backbone=dict(type='ResNet3000'),
                                    cls_head=dict(type='TSNHead', num_classes=2, in_channels=8))))
    with pytest.raises(ValueError, match='cls_head.consensus.type'):
        TSNHead(num_classes=2, in_channels=8, consensus=dict(type='MaxConsensus')).init(
            KEY, jnp.zeros((2, 1, 1, 8)), 2)
    with pytest.raises(ValueError, match=r'\(N, V, H, W, C\)'):
        build_model(tiny_tsm_cfg()).init(KEY, jnp.zeros((2, 32, 32, 3)))
    with pytest.raises(KeyError, match='"model"'):
        build_model(dict(optimizer=dict(type='SGD')))
