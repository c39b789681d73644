"""LR / momentum schedules against golden curves from mmcv 1.7.2 and mmengine 0.10.7.

The golden files hold the lr (and momentum) of both param groups at every iteration of a
7 x 13-iteration run (80 iterations for iteration-based runs), recorded by
tests/fixtures/schedules/make_fixtures.py from the real runners and hooks. Every case is
checked at every iteration, through ``jax.jit`` + ``vmap`` over int32 steps and with plain
Python ints, within 1e-6 relative.
"""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from actionjax.optim.schedule_builder import build_lr_schedule, build_momentum_schedule
from actionjax.optim.schedules import LR_SCHEDULES, ScheduleConfigError, int_power
from actionjax.registry import RegistryError

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures', 'schedules')
RTOL = 1e-6


def _load(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return json.load(f)


def _schedules(case, what):
    """The schedule the case describes, built as the engine would build it."""
    run = case['run']
    lengths = (run['iters_per_epoch'], run['max_epochs'], run['max_iters'])
    if what == 'lr':
        cfg = case.get('param_scheduler', case.get('lr_config'))
        return build_lr_schedule(cfg, case['base_lr'], *lengths)
    return build_momentum_schedule(case.get('param_scheduler', case.get('momentum_config')),
                                   case['base_momentum'], *lengths)


def _curves(data):
    """[(case name, 'lr'|'momentum', schedule, golden (iters, groups))] of a golden file."""
    out = []
    for name, case in data.items():
        for what in ('lr', 'momentum'):
            if what in case:
                out.append((name, what, _schedules(case, what), np.asarray(case[what])))
    return out


def _relative_error(got, want):
    # where the golden value is exactly 0 (poly at its end) ours must be 0 too
    return np.abs(np.asarray(got, np.float64) - want) / np.maximum(np.abs(want), 1e-30)


@pytest.fixture(scope='module', params=['mmcv_updaters.json', 'mmengine_param_schedulers.json'],
                ids=['mmcv', 'mmengine'])
def curves(request):
    return _curves(_load(request.param))


def test_golden_every_iteration_under_jit(curves):
    """All cases in one jitted function, each vmapped over int32 steps."""
    steps = jnp.arange(max(len(want) for *_, want in curves), dtype=jnp.int32)
    everything = jax.jit(lambda s: [jax.vmap(fn)(s) for _, _, fn, _ in curves])(steps)
    failures = []
    for (name, what, _, want), got in zip(curves, everything, strict=True):
        err = _relative_error(got[:len(want)], want)
        if err.max() > RTOL:
            i = int(err.max(axis=1).argmax())
            failures.append(f'{name} {what}: rel err {err.max():.2e} at iter {i}: {got[i]} vs {want[i]}')
    assert not failures, '\n'.join(failures)


def test_golden_every_iteration_python_ints(curves):
    failures = []
    for name, what, fn, want in curves:
        got = np.stack([np.asarray(fn(i)) for i in range(len(want))])
        err = _relative_error(got, want)
        if err.max() > RTOL:
            failures.append(f'{name} {what}: rel err {err.max():.2e}')
    assert not failures, '\n'.join(failures)


# ------------------------------------------------------------------------------------------
# Bad configs name the key that is wrong.

BAD_LR_CONFIGS = [
    (dict(policy='stepp', step=[1]), RegistryError, r"lr_config\.policy.*did you mean 'Step'"),
    (dict(policy='Cosine', min_lr=0), RegistryError, r"lr_config\.policy.*'CosineAnnealing'"),
    (dict(step=[40, 80]), ScheduleConfigError, r"lr_config has no 'policy'"),
    (dict(policy='step'), ScheduleConfigError, r'lr_config\.step is required'),
    (dict(policy='step', step=[40, 0]), ScheduleConfigError, r'lr_config\.step: must be'),
    (dict(policy='step', step=[80, 40]), ScheduleConfigError, r'lr_config\.step: must be increasing'),
    (dict(policy='step', step=[4], gama=0.5), ScheduleConfigError,
     r"lr_config\.gama .*did you mean 'gamma'"),
    (dict(policy='CosineAnnealing', min_lr=0, min_lr_ratio=0.1), ScheduleConfigError,
     r'lr_config\.min_lr: give exactly one of min_lr and min_lr_ratio \(both are set\)'),
    (dict(policy='CosineAnnealing'), ScheduleConfigError, r'lr_config\.min_lr: .*neither is set'),
    (dict(policy='cyclic', by_epoch=True), ScheduleConfigError,
     r"lr_config\.by_epoch=True .*'Cyclic'"),
    (dict(policy='OneCycle', max_lr=0.1, by_epoch=True), ScheduleConfigError, r'lr_config\.by_epoch'),
    (dict(policy='OneCycle', max_lr=0.1, total_steps=10), ScheduleConfigError,
     r'lr_config\.total_steps: is 10 but the run has 91'),
    (dict(policy='OneCycle', max_lr=[0.1, 0.2, 0.3]), ScheduleConfigError,
     r'lr_config\.max_lr: has 3 values'),
    (dict(policy='step', step=[2], warmup='cosine', warmup_iters=5), ScheduleConfigError,
     r'lr_config\.warmup '),
    (dict(policy='step', step=[2], warmup='linear'), ScheduleConfigError, r'lr_config\.warmup_iters'),
    (dict(policy='step', step=[2], warmup='linear', warmup_iters=5, warmup_ratio=0), ScheduleConfigError,
     r'lr_config\.warmup_ratio'),
    (dict(policy='CosineRestart', periods=[3, 3], restart_weights=[1, 1], min_lr=0), ScheduleConfigError,
     r'lr_config\.periods: sum to 6 but the run is 7'),
    (dict(policy='FlatCosineAnnealing', start_percent=1, min_lr=0), ScheduleConfigError,
     r'lr_config\.start_percent'),
]


@pytest.mark.parametrize('cfg, error, match', BAD_LR_CONFIGS, ids=[str(c) for c, *_ in BAD_LR_CONFIGS])
def test_bad_lr_config_names_the_key(cfg, error, match):
    with pytest.raises(error, match=match):
        build_lr_schedule(cfg, 0.1, 13, max_epochs=7)


def test_run_length_errors():
    with pytest.raises(ScheduleConfigError, match=r"lr_config\.policy='Poly' .*pass max_epochs"):
        build_lr_schedule(dict(policy='poly'), 0.1, 13)
    with pytest.raises(ScheduleConfigError, match=r'pass max_iters'):
        build_lr_schedule(dict(policy='poly', by_epoch=False), 0.1, None)
    with pytest.raises(ScheduleConfigError,
                       match=r'lr_config\.by_epoch: by_epoch=True needs an epoch-based run'):
        build_lr_schedule(dict(policy='step', step=[2]), 0.1, 13, max_iters=100)
    with pytest.raises(ScheduleConfigError, match=r'needs iters_per_epoch'):
        build_lr_schedule(dict(policy='step', step=[2]), 0.1, None, max_epochs=7)
    with pytest.raises(ScheduleConfigError, match=r'max_iters=90 but max_epochs \* iters_per_epoch'):
        build_lr_schedule(dict(policy='fixed'), 0.1, 13, max_epochs=7, max_iters=90)
    # a policy that does not need the run length does not ask for it
    assert float(build_lr_schedule(dict(policy='step', step=[2]), 0.1, 13)(26)) == pytest.approx(0.01)


def test_bad_momentum_config_names_the_key():
    with pytest.raises(ScheduleConfigError, match=r'momentum_config\.min_momentum: give exactly one'):
        build_momentum_schedule(dict(policy='CosineAnnealing'), 0.9, 13, max_epochs=7)
    with pytest.raises(ScheduleConfigError, match=r'momentum_config\.warmup_by_epoch is not an argument'):
        build_momentum_schedule(dict(policy='step', step=[2], warmup='linear', warmup_iters=3,
                                     warmup_by_epoch=True), 0.9, 13, max_epochs=7)
    with pytest.raises(RegistryError, match=r'momentum_config\.policy'):
        build_momentum_schedule(dict(policy='poly'), 0.9, 13, max_epochs=7)


BAD_PARAM_SCHEDULERS = [
    ([dict(type='LinearLR', end=5), dict(type='MultiStepLr', milestones=[3])], RegistryError,
     r"param_scheduler\[1\]\.type.*did you mean 'MultiStepLR'"),
    ([dict(type='MultiStepLR', begin=5, end=5, milestones=[3])], ScheduleConfigError,
     r'param_scheduler\[0\]\.end: must be larger than begin'),
    ([dict(type='LinearLR', by_epoch=False, end=5, convert_to_iter_based=True)], ScheduleConfigError,
     r'param_scheduler\[0\]\.convert_to_iter_based needs by_epoch=True'),
    ([dict(type='LinearLR', start_factor=2.0, end=5)], ScheduleConfigError,
     r'param_scheduler\[0\]\.start_factor'),
    ([dict(type='CosineRestartLR', periods=[3])], ScheduleConfigError, r'param_scheduler\[0\]\.eta_min'),
    ([dict(type='ReduceOnPlateauLR', monitor='loss')], ScheduleConfigError, r'follows validation metrics'),
    ([dict(type='OneCycleLR', eta_max=0.1, total_steps=20, by_epoch=False)], ScheduleConfigError,
     r'param_scheduler\[0\]\.total_steps: is 20 but the scheduler steps 91 times'),
    ([dict(type='StepLR', step_size=0)], ScheduleConfigError, r'param_scheduler\[0\]\.step_size'),
    ([dict(type='MultiStepLR', milestone=[3])], ScheduleConfigError, r"param_scheduler\[0\] \(MultiStepLR\)"),
]


@pytest.mark.parametrize('cfg, error, match', BAD_PARAM_SCHEDULERS,
                         ids=[c[-1]['type'] for c, *_ in BAD_PARAM_SCHEDULERS])
def test_bad_param_scheduler_names_the_key(cfg, error, match):
    with pytest.raises(error, match=match):
        build_lr_schedule(cfg, 0.1, 13, max_epochs=7)


def test_iteration_based_run_rejects_by_epoch_schedulers():
    with pytest.raises(ScheduleConfigError, match=r'param_scheduler\[0\]\.by_epoch'):
        build_lr_schedule([dict(type='MultiStepLR', milestones=[3])], 0.1, 13, max_iters=100)


# ------------------------------------------------------------------------------------------
# The API around the golden curves.


def test_user_policy_relative_step():
    """MMAction2's custom-updater example as a registered pure function (as in the docs)."""
    from actionjax.optim.schedules import count_passed

    @LR_SCHEDULES.register_module('RelativeStepForTest', force=True)
    def relative_step(progress, base_lr, max_progress, *, steps, lrs):
        return jnp.asarray(lrs)[jnp.minimum(count_passed(steps, progress), len(lrs) - 1)]

    fn = build_lr_schedule(dict(policy='RelativeStepForTest', steps=[2, 4, 6], lrs=[0.1, 0.01, 0.001],
                                warmup='linear', warmup_iters=5), 0.5, iters_per_epoch=3, max_epochs=7)
    lrs = jax.jit(jax.vmap(fn))(jnp.arange(21))
    want = [0.1 * (0.1 + 0.9 * i / 5) for i in range(5)] + [0.1] + [0.01] * 6 + [0.001] * 9
    np.testing.assert_allclose(lrs, want, rtol=1e-6)
    with pytest.raises(ScheduleConfigError, match=r'lr_config\.lrs is required'):
        build_lr_schedule(dict(policy='RelativeStepForTest', steps=[2]), 0.5, 3)


def test_scalar_base_is_group_zero_and_arrays_broadcast():
    cfg = dict(policy='CosineAnnealing', min_lr_ratio=0.01, warmup='exp', warmup_iters=9, warmup_ratio=0.01)
    scalar = build_lr_schedule(cfg, 0.1, 13, max_epochs=7)
    groups = build_lr_schedule(cfg, [0.1, 0.5], 13, max_epochs=7)
    steps = jnp.arange(91)
    assert scalar(0).shape == () and groups(0).shape == (2,)
    assert scalar(steps).shape == (91,) and groups(steps).shape == (91, 2)
    np.testing.assert_array_equal(scalar(steps), groups(steps)[:, 0])
    np.testing.assert_allclose(groups(steps)[:, 1], 5 * groups(steps)[:, 0], rtol=1e-6)


def test_no_config():
    assert float(build_lr_schedule(None, 0.02, 13)(12345)) == pytest.approx(0.02)
    assert build_momentum_schedule(None, 0.9, 13) is None
    only_lr = [dict(type='MultiStepLR', milestones=[3])]
    assert build_momentum_schedule(only_lr, 0.9, 13, max_epochs=7) is None
    only_momentum = build_lr_schedule([dict(type='CosineAnnealingMomentum')], 0.1, 13, max_epochs=7)
    assert float(only_momentum(50)) == pytest.approx(0.1)


def test_int_power_stays_exact_for_large_exponents():
    n = np.array([0, 1, 5, 63, 64, 1000, 4095, 4096, 90_000, 1_000_000])
    got = np.asarray(int_power(0.99999, jnp.asarray(n)), np.float64)
    np.testing.assert_allclose(got, 0.99999 ** n.astype(np.float64), rtol=4e-7)
    # float32 exp(n log x) loses ~n * 6e-8 relative; the tables do not
    naive = np.asarray(jnp.exp(jnp.asarray(n, jnp.float32) * jnp.log(jnp.float32(0.99999))), np.float64)
    assert np.abs(naive / 0.99999 ** n - 1).max() > 10 * np.abs(got / 0.99999 ** n - 1).max()


def test_recipe_configs():
    from actionjax.config import Config

    schedules = os.path.join(os.path.dirname(FIXTURES), '..', '..', 'configs', '_base_', 'schedules')
    cfg = Config.fromfile(os.path.join(schedules, 'sgd_100e.py'))
    fn = build_lr_schedule(cfg.lr_config, cfg.optimizer.lr, 500, max_epochs=cfg.total_epochs)
    lr = jax.vmap(fn)(jnp.array([0, 40 * 500 - 1, 40 * 500, 80 * 500 - 1, 80 * 500, 100 * 500 - 1]))
    np.testing.assert_allclose(lr, [0.01, 0.01, 0.001, 0.001, 1e-4, 1e-4], rtol=1e-6)
    tsm = Config.fromfile(os.path.join(schedules, 'sgd_tsm_50e.py'))
    assert (tsm.total_epochs, tsm.lr_config.step) == (50, [20, 40])
    assert tsm.optimizer.paramwise_cfg == {'fc_lr5': True}
    assert tsm.optimizer.constructor == 'TSMOptimizerConstructor'
    assert tsm.optimizer_config.grad_clip.max_norm == 20


# ------------------------------------------------------------------------------------------
# python -m actionjax.tools.plot_lr


def test_plot_lr_draws_lr_and_momentum(tmp_path):
    import matplotlib.image

    from actionjax.tools import plot_lr

    ann = tmp_path / 'train_list.txt'
    ann.write_text(''.join(f'video_{i}.mp4 {i % 3}\n' for i in range(100)))
    config = tmp_path / 'cyclic.py'
    config.write_text(
        "optimizer = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4)\n"
        "lr_config = dict(policy='cyclic', target_ratio=(10, 1e-4), cyclic_times=1, step_ratio_up=0.4,\n"
        "                 warmup='linear', warmup_iters=20, warmup_ratio=0.1)\n"
        "momentum_config = dict(policy='cyclic', target_ratio=(0.85 / 0.95, 1), cyclic_times=1,\n"
        "                       step_ratio_up=0.4)\n"
        "total_epochs = 6\n"
        f"data = dict(videos_per_gpu=4,\n"
        f"            train=dict(type='VideoDataset', ann_file={str(ann)!r}, pipeline=[]))\n")
    out = tmp_path / 'lr.png'
    curves = plot_lr.main(['--config', str(config), '--out', str(out)])
    assert curves['max_iters'] == 6 * 25  # 100 videos, 4 per batch, one device: as actionjax.train runs it
    np.testing.assert_allclose(curves['epochs'][[0, 25, -1]], [0, 1, 149 / 25])
    lr, momentum = np.asarray(curves['lr']['default']), np.asarray(curves['momentum']['default'])
    assert lr[0] == pytest.approx(0.001) and lr.max() == pytest.approx(0.1, rel=1e-3)
    assert momentum.min() == pytest.approx(0.9 * 0.85 / 0.95, rel=1e-3)
    image = matplotlib.image.imread(out)
    assert image.ndim == 3 and image.shape[0] > 400 and image.shape[1] > 600


def test_plot_lr_reads_mmengine_configs(tmp_path):
    from actionjax.tools import plot_lr

    config = tmp_path / 'mvit_like.py'
    config.write_text(
        "optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999)))\n"
        "train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10)\n"
        "param_scheduler = [\n"
        "    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=2,\n"
        "         convert_to_iter_based=True),\n"
        "    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=2, end=10)]\n")
    curves = plot_lr.main(['--config', str(config), '--out', str(tmp_path / 'lr.png'),
                           '--iters-per-epoch', '5'])
    lr = np.asarray(curves['lr']['default'])
    assert curves['momentum'] == {} and curves['max_iters'] == 50
    assert lr[0] == pytest.approx(1e-4) and lr[10] == pytest.approx(1e-3)
    assert lr[-1] == pytest.approx(1e-5 + (1e-3 - 1e-5) * (1 + np.cos(np.pi * 7 / 8)) / 2, rel=1e-5)
    assert plot_lr._pick_scale(lr) == 'linear'
    assert plot_lr._pick_scale(np.repeat([0.1, 0.01, 0.001], 1000)) == 'log'


def test_benchmark_runs():
    import argparse

    from actionjax.benchmarks import schedule as bench

    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    results = bench.run(parser.parse_args(['--params', 'tiny', '--repeats', '3', '--warmup', '1',
                                           '--iters-per-epoch', '20']))
    assert set(results['median_ms']) == {'constant', 'lr_config', 'param_scheduler'}
    assert results['ratio_to_constant']['constant'] == 1.0
    assert all(np.isfinite(r) and r > 0 for r in results['ratio_to_constant'].values())
    assert all(us > 0 for us in results['schedule_call_us'].values())
