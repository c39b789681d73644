"""One dtype for the whole model: float32, bfloat16 mixed precision, float64 end to end.

* float64: three SGD steps of a TSM (ResNet-50's first stage, fc_lr5, grad clip 20,
  momentum, weight decay) through actionjax's own engine, from an MMAction2 checkpoint,
  equal MMAction2's own float64 run (tests/fixtures/precision/make_fixtures.py, made with
  MMAction2 1.2.0 after ``model.double()``): losses within 1e-9 relative, parameters and
  BatchNorm running statistics after each step within 1e-9 of the step's update norm.
  It runs in a subprocess: float64 needs ``jax_enable_x64`` before any array exists.
* bfloat16: the tiny TSN trains with finite, falling loss; convolutions run in bfloat16
  while parameters, BatchNorm statistics, optimizer state and losses stay float32.
* The config keys that choose the precision, and the pieces that follow it (schedules,
  BatchNorm, the converter).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from engine_utils import REPO, TINY_CONFIG, cli_env

from actionjax.config import Config, ConfigError
from actionjax.engine import build
from actionjax.engine.state import TrainState
from actionjax.engine.steps import make_eval_step, make_train_step
from actionjax.models import build_model
from actionjax.models.common.norm import BatchNorm
from actionjax.runtime_config import to_runtime_config

PRECISION = os.path.join(REPO, 'tests', 'fixtures', 'precision')
sys.path.insert(0, PRECISION)
import seeded  # noqa: E402 (the float64 check's shared numpy code)

TOLERANCE = 1e-9


# --------------------------------------------------------------------------- float64 vs MMAction2

@pytest.fixture(scope='module')
def float64_run():
    golden_path = os.path.join(PRECISION, 'tsm_r50_tiny.json')
    proc = subprocess.run([sys.executable, os.path.join(PRECISION, 'actionjax_side.py'), golden_path],
                          cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(golden_path) as f:
        golden = json.load(f)
    return golden, json.loads(proc.stdout.strip().splitlines()[-1])


def test_float64_tsm_steps_equal_mmaction2_float64_run(float64_run):
    golden, ours = float64_run
    rows = seeded.compare_steps(golden, ours)
    report = '\n'.join(f'step {i + 1}: loss {r["loss"]:.6f} rel diff {r["loss_rel_diff"]:.1e}, params '
                       f'{r["param_diff"]:.1e}, BN stats {r["buffer_diff"]:.1e} of the update norm'
                       for i, r in enumerate(rows))
    for row in rows:
        assert row['loss_rel_diff'] < TOLERANCE, report
        assert row['param_diff'] < TOLERANCE, report
        assert row['buffer_diff'] < TOLERANCE, report


def test_float64_run_is_float64_everywhere_and_applies_mmaction2_learning_rates(float64_run):
    golden, ours = float64_run
    assert ours['precision'] == 'float64' and ours['model_dtype'] == 'float64'
    assert ours['dtypes']['params'] == ours['dtypes']['batch_stats'] == ['float64']
    assert ours['dtypes']['opt_state'] == ['float64', 'int32']  # the step counters are ints
    # fc_lr5: the TSM constructor's groups, with the lrs of MMAction2's param groups
    assert set(ours['steps'][0]['lr'].values()) == {g['lr'] for g in golden['param_groups']}  # exactly
    # the fixture exercises clipping: steps 1 and 2 clip, step 3 does not
    assert [s['grad_norm'] > golden['max_norm'] for s in golden['steps']] == [True, True, False]


def test_float64_needs_jax_enable_x64_and_says_how():
    cfg = Config.fromfile(os.path.join(PRECISION, 'tsm_r50_tiny.py'))
    assert to_runtime_config(cfg).precision == 'float64'
    model = build_model(cfg)  # building (for conversion, shapes) works anywhere
    assert model.dtype == 'float64'
    imgs, labels = seeded.seeded_batch((1, 4, 32, 32), 5, 0)
    with pytest.raises(RuntimeError, match="jax_enable_x64.*python -m actionjax.train"):
        build.init_variables(model, {'imgs': imgs, 'label': labels}, seed=0)


def test_schedules_give_float64_values_under_x64():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from test_schedules import _curves, _load, _relative_error

    picked = {'lr/step_list/epoch/linear', 'lr/exp_iter/iter/exp', 'lr/poly/iter/linear',
              'lr/cosine_min_lr_ratio/iter/none', 'lr/one_cycle/iter/none', 'momentum/cosine/iter/exp',
              'linear_iter_warmup+multistep', 'coupled_linear+cosine_eta_min_overlap', 'onecycle_iter'}
    checked = 0
    with jax.enable_x64(True):
        for name in ('mmcv_updaters.json', 'mmengine_param_schedulers.json'):
            data = _load(name)
            for case, what, fn, want in _curves({k: v for k, v in data.items() if k in picked}):
                got = jax.vmap(fn)(np.arange(want.shape[0]))
                assert got.dtype == jnp.float64, f'{case} {what}: {got.dtype}'
                err = _relative_error(got, want.reshape(got.shape)).max()
                assert err < 1e-10, f'{case} {what}: relative error {err:.1e}'  # float32 gives ~3e-7
                checked += 1
    assert checked >= len(picked)
    assert build_model  # the float32 path is unchanged: test_schedules checks it at 1e-6


# --------------------------------------------------------------------------- bfloat16 mixed precision

def _brightness_batch(num: int = 8) -> dict[str, np.ndarray]:
    """Clips whose class is their brightness (4 classes, 2 segments of 16x16)."""
    rng = np.random.default_rng(0)
    labels = np.arange(num) % 4
    imgs = rng.integers(0, 40, size=(num, 2, 16, 16, 3)) + 50 * labels[:, None, None, None, None]
    return {'imgs': imgs.astype(np.uint8), 'label': labels.astype(np.int32)}


def _dtypes(tree) -> set[str]:
    return {str(x.dtype) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)}


def test_bfloat16_computes_in_bfloat16_and_keeps_float32_state():
    cfg = Config.fromfile(TINY_CONFIG)
    cfg['dtype'] = 'bfloat16'
    cfg = to_runtime_config(cfg)
    model = build_model(cfg)
    batch = _brightness_batch()
    sample = {k: v[:1] for k, v in batch.items()}
    variables = build.init_variables(model, sample, seed=0)
    tx = build.build_tx(cfg, model, variables, sample, iters_per_epoch=4)
    state = TrainState.create(variables, tx, jax.random.PRNGKey(0))
    train_step = make_train_step(model, tx)

    hlo = train_step.lower(state, batch).as_text()
    # convolutions run as convolutions, or as matmuls (pointwise convs and small maps on CPU)
    convs = re.findall(r'stablehlo\.(?:convolution|dot_general).*', hlo)
    assert convs and all(re.search(r'-> tensor<\S*xbf16>', c) for c in convs)  # forward and backward

    losses = []
    for _ in range(6):
        state, metrics = train_step(state, batch)
        losses.append(float(metrics['loss']))
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    assert metrics['loss'].dtype == jnp.float32
    assert _dtypes(state.params) == _dtypes(state.batch_stats) == _dtypes(state.opt_state) == {'float32'}
    scores = make_eval_step(model)(state.variables, batch)['scores']
    assert scores.dtype == jnp.float32 and np.allclose(scores.sum(-1), 1, atol=1e-3)


def test_batchnorm_reduces_bfloat16_in_float32():
    x = jax.random.normal(jax.random.PRNGKey(0), (64, 8)) * 3 + 100  # a large mean: bf16 sums would drift
    bn = BatchNorm(use_running_average=False)
    variables = bn.init(jax.random.PRNGKey(1), x)
    y32, s32 = bn.apply(variables, x, mutable=['batch_stats'])
    y16, s16 = bn.apply(variables, x.astype(jnp.bfloat16), mutable=['batch_stats'])
    assert y16.dtype == jnp.bfloat16 and _dtypes(s16) == {'float32'}
    np.testing.assert_allclose(s16['batch_stats']['mean'], s32['batch_stats']['mean'], rtol=1e-2)
    np.testing.assert_allclose(np.asarray(y16, np.float32), y32, atol=0.15)  # bf16 input rounding


# --------------------------------------------------------------------------- config keys

def _precision(**keys) -> str:
    base = dict(model=dict(type='Recognizer2D', backbone=dict(type='ResNet', depth=18),
                           cls_head=dict(type='TSNHead', num_classes=4, in_channels=512)))
    return to_runtime_config(dict(base, **keys)).precision


def test_precision_comes_from_the_dtype_key_and_mmaction2_mixed_precision_keys():
    assert _precision() == 'float32'
    assert _precision(dtype='float64') == 'float64'
    assert _precision(dtype='bfloat16') == 'bfloat16'
    assert _precision(fp16=dict(loss_scale=512.0)) == 'bfloat16'  # MMAction2 0.x
    amp = dict(type='AmpOptimWrapper', optimizer=dict(type='SGD', lr=0.01))  # 1.x, float16 autocast
    assert _precision(optim_wrapper=amp) == 'bfloat16'
    assert _precision(optim_wrapper=dict(amp, dtype='bfloat16'), dtype='bfloat16') == 'bfloat16'


@pytest.mark.parametrize('keys, message', [
    (dict(dtype='float16'), "dtype must be one of .* runs as 'bfloat16'"),
    (dict(fp16=dict(), dtype='float64'), 'both fp16 .* and dtype'),
    (dict(fp16=dict(), optim_wrapper=dict(type='AmpOptimWrapper', optimizer=dict(type='SGD', lr=0.1))),
     'both fp16 .*AmpOptimWrapper'),
    (dict(optim_wrapper=dict(type='AmpOptimWrapper', dtype='float64', optimizer=dict(type='SGD', lr=0.1))),
     "optim_wrapper.dtype must be 'float16' or 'bfloat16'"),
])
def test_contradicting_precision_keys_are_errors_naming_them(keys, message):
    with pytest.raises(ConfigError, match=message):
        _precision(**keys)


def test_a_model_without_a_dtype_field_refuses_mixed_precision():
    cfg = dict(model=dict(type='TEM', temporal_dim=16, boundary_ratio=0.1, tem_feat_dim=8, tem_hidden_dim=8,
                          tem_match_threshold=0.5), dtype='bfloat16')
    with pytest.raises(NotImplementedError, match='TEM has no dtype field.*config key dtype'):
        build_model(cfg)
    assert build_model(dict(cfg, dtype='float32')) is not None


def test_the_converter_keeps_a_float64_checkpoint_exact():
    from convert.mmaction2 import state_dict_to_variables

    target = {'params': {'fc': {'kernel': jax.ShapeDtypeStruct((3, 2), jnp.float32)}}}
    weight = np.random.default_rng(0).standard_normal((2, 3))
    exact = state_dict_to_variables({'fc.weight': weight}, target)['params']['fc']['kernel']
    assert exact.dtype == np.float64 and np.array_equal(exact, weight.T)
    half = state_dict_to_variables({'fc.weight': weight.astype(np.float16)}, target)['params']['fc']['kernel']
    assert half.dtype == np.float32  # narrower checkpoints widen to the model's dtype
