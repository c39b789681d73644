"""The model and loop benchmarks run end to end on the tiny config (what they measure is
checked by running them, not by timed tests)."""

import os
import sys

import pytest
from engine_utils import REPO, TINY_CONFIG

from actionjax import benchmark


def test_model_benchmark_reports_compile_times_medians_and_memory(tmp_path):
    out = benchmark.main(['--what', 'model', '--config', TINY_CONFIG, '--batch', '2',
                          '--input-shape', '2,16,16', '--repeats', '1', '--steps', '1',
                          '--json', str(tmp_path / 'model.json')])
    assert set(out['compile_s']) == {'train', 'inference'} and out['batch'] == [2, 2, 16, 16, 3]
    assert set(out['seconds']) == {'train/actionjax', 'inference/actionjax'}
    assert out['seconds']['train/actionjax']['median'] > 0 and out['peak_host_mb'] > 0
    assert (tmp_path / 'model.json').exists()


# Stands in for MMAction2's interpreter: run as ``PY -c SERVER``, it ignores the server and
# speaks its protocol, a step taking 2 ms in float32 and 1 ms under amp.
FAKE_REFERENCE = """#!{python}
import json, sys
spec = json.loads(sys.stdin.readline())
wrapper = 'AmpOptimWrapper' if spec['amp'] else 'OptimWrapper'
assert spec['batch'] == 2 and spec['optim_wrapper']['type'] == wrapper, spec
print('BENCH ' + json.dumps({{'ready': True, 'device': 'cpu'}}), flush=True)
for line in sys.stdin:
    print('BENCH ' + json.dumps({{'seconds': 0.001 if spec['amp'] else 0.002}}), flush=True)
"""


def test_model_benchmark_times_each_reference_precision_against_one_compile(tmp_path):
    fake = tmp_path / 'python'
    fake.write_text(FAKE_REFERENCE.format(python=sys.executable))
    fake.chmod(0o755)
    out = benchmark.main(['--what', 'model', '--config', TINY_CONFIG, '--batch', '2',
                          '--input-shape', '2,16,16', '--repeats', '2', '--steps', '1', '--against-mmaction2',
                          '--ref-python', str(fake), '--ref-precision', 'float32', 'amp'])
    assert out['mmaction2']['amp'] is False and out['mmaction2-amp']['amp'] is True
    for what in ('train', 'inference'):
        ours = out['seconds'][f'{what}/actionjax']['median']
        assert out['seconds'][f'{what}/mmaction2']['median'] == 0.002
        assert out['seconds'][f'{what}/ratio-mmaction2']['median'] == pytest.approx(ours / 0.002)
        assert out['seconds'][f'{what}/ratio-mmaction2-amp']['median'] == pytest.approx(ours / 0.001)
        # 2 clips x 2 segments a step
        assert out['frames_per_s'][f'{what}/mmaction2-amp'] == pytest.approx(4 / 0.001)
        assert out['frames_per_s'][f'{what}/actionjax'] == pytest.approx(4 / ours)


def test_model_benchmark_times_a_localizer_on_its_training_sample(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # bmn_demo writes its synthetic features under ./data
    config = os.path.join(REPO, 'configs', 'bmn_demo.py')
    out = benchmark.main(['--what', 'model', '--config', config, '--batch', '2',
                          '--repeats', '1', '--steps', '1'])
    assert out['batch'] == {'raw_feature': [2, 32, 32], 'gt_bbox': [2, 64, 2], 'num_instances': [2]}
    assert all(out['seconds'][f'{what}/actionjax']['median'] > 0 for what in ('train', 'inference'))
    with pytest.raises(SystemExit, match='times recognizers.*BMN'):
        benchmark.main(['--what', 'model', '--config', config, '--against-mmaction2'])


def test_loop_benchmark_compares_the_loop_with_its_bare_step():
    out = benchmark.main(['--what', 'loop', '--config', TINY_CONFIG, '--batch', '2',
                          '--input-shape', '2,16,16', '--iters', '3', '--epochs', '1', '--repeats', '1'])
    assert len(out['loop_s']) == len(out['bare_step_s']) == 1 and out['loop_over_bare'] > 0


def test_optim_and_train_benchmarks_read_the_config_as_training_does():
    optim = benchmark.main(['--what', 'optim', '--config', TINY_CONFIG, '--repeats', '2', '--warmup', '1'])
    assert set(optim['median_ms']) == {'actionjax', 'optax_chain', 'optax_sgd'} and optim['params'] > 0
    train = benchmark.main(['--what', 'train', '--config', TINY_CONFIG, '--input-shape', '2', '16', '16',
                            '--steps', '1', '--repeats', '1', '--warmup', '0'])
    assert train['full_over_plain_sgd'] > 0


def test_model_benchmark_times_a_test_only_recipe_with_no_train():
    config = os.path.join(REPO, 'configs', 'x3d.py')  # X3D has no optimizer: MMAction2 only tests it
    with pytest.raises(SystemExit, match='no optimizer.*--no-train'):
        benchmark.main(['--what', 'model', '--config', config])
