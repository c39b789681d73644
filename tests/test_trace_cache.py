"""``cached_jit``: a later launch runs the stored program without tracing, with the same
results; anything that can change the program (key, shapes) traces anew."""

import logging
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from actionjax.engine import trace_cache
from actionjax.engine.trace_cache import cached_jit, trace_key

TRACES: list[str] = []  # one entry each time a step's Python body runs, i.e. is traced


def make_step():
    """A new function object each call, as a new process has (jax caches traces per object),
    with the same name, as a new process's step has."""

    def sgd_step(state: dict, batch: dict) -> tuple[dict, dict]:
        TRACES.append('sgd_step')
        grad = jnp.mean(batch['x'], axis=0) * state['w']
        new = {'w': state['w'] - 0.1 * grad, 'step': state['step'] + 1}
        return new, {'loss': jnp.sum(new['w'] ** 2)}

    return sgd_step


def step_with_callback(state: dict, batch: dict) -> tuple[dict, dict]:
    jax.debug.callback(lambda x: None, batch['x'])  # jax.export cannot serialize this
    return make_step()(state, batch)


def plain(state: dict, batch: dict) -> tuple[dict, dict]:
    """What plain jit makes of the step (traced without counting)."""
    out = jax.jit(make_step())(state, batch)
    TRACES.pop()
    return out


def state(width: int = 3) -> dict:
    return {'w': jnp.arange(1.0, width + 1), 'step': jnp.zeros((), jnp.int32)}


def batch(width: int = 3) -> dict:
    return {'x': jnp.ones((2, width))}


def equal(a, b) -> bool:
    return jax.tree.structure(a) == jax.tree.structure(b) and all(
        np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


@pytest.fixture(autouse=True)
def no_traces():
    TRACES.clear()


def test_a_later_launch_runs_the_stored_program_without_tracing(tmp_path):
    expected = plain(state(), batch())
    first = cached_jit(make_step(), 'config A', donate_argnums=0, folder=str(tmp_path))
    assert equal(first(state(), batch()), expected)
    assert TRACES == ['sgd_step'] and len(os.listdir(tmp_path)) == 1

    # what a second process does: a new wrapper, nothing in memory, the program on disk
    later = cached_jit(make_step(), 'config A', donate_argnums=0, folder=str(tmp_path))
    donated = state()
    out = later(donated, batch())
    assert TRACES == ['sgd_step'], 'the later launch traced the step again'
    assert equal(out, expected)
    assert donated['w'].is_deleted(), 'the state is no longer donated'
    second = plain(expected[0], batch())  # before the donating call below consumes expected[0]
    assert equal(later(expected[0], batch()), second)


def test_a_new_key_or_new_shapes_trace_anew(tmp_path):
    folder = str(tmp_path)
    cached_jit(make_step(), 'config A', folder=folder)(state(), batch())
    cached_jit(make_step(), 'config B', folder=folder)(state(), batch())
    out = cached_jit(make_step(), 'config A', folder=folder)(state(5), batch(5))
    assert len(TRACES) == 3 and len(os.listdir(folder)) == 3
    assert equal(out, plain(state(5), batch(5)))


def test_a_damaged_program_is_exported_again(tmp_path):
    cached_jit(make_step(), 'config A', folder=str(tmp_path))(state(), batch())
    (path,) = tmp_path.iterdir()
    path.write_bytes(b'not a program')
    out = cached_jit(make_step(), 'config A', folder=str(tmp_path))(state(), batch())
    assert len(TRACES) == 2 and equal(out, plain(state(), batch()))


def test_a_folder_it_cannot_write_costs_only_the_stored_trace(tmp_path, caplog):
    not_a_folder = tmp_path / 'a_file'
    not_a_folder.write_text('')
    out = cached_jit(make_step(), 'config A', folder=str(not_a_folder))(state(), batch())
    assert equal(out, plain(state(), batch()))
    assert 'could not store the traced step' in caplog.text


def test_a_failed_write_leaves_no_partial_file(tmp_path, monkeypatch, caplog):
    def disk_full(src, dst):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(trace_cache.os, 'replace', disk_full)
    out = cached_jit(make_step(), 'config A', folder=str(tmp_path))(state(), batch())
    assert equal(out, plain(state(), batch()))
    assert 'No space left' in caplog.text and not os.listdir(tmp_path)


def test_a_step_export_cannot_take_runs_as_plain_jit(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger='actionjax'):
        out = cached_jit(step_with_callback, 'config A', folder=str(tmp_path))(state(), batch())
    assert equal(out, plain(state(), batch()))
    assert 'host_callbacks' in caplog.text and not os.listdir(tmp_path)


def test_without_a_key_or_a_compilation_cache_it_is_plain_jit(tmp_path):
    assert hasattr(cached_jit(make_step(), None, folder=str(tmp_path)), 'lower')
    cache = jax.config.jax_compilation_cache_dir  # an in-process command may have set one
    jax.config.update('jax_compilation_cache_dir', None)
    try:
        assert hasattr(cached_jit(make_step(), 'config A'), 'lower')
    finally:
        jax.config.update('jax_compilation_cache_dir', cache)


def test_the_key_covers_user_modules_and_registered_installed_ones(tmp_path, monkeypatch):
    import sysconfig

    from actionjax.registry import HEADS

    module = tmp_path / 'my_registered_head.py'
    module.write_text('SCALE = 1\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    __import__('my_registered_head')
    # a head registered from an installed package (here, a stand-in module from site-packages)
    installed = next(m for m in sys.modules.values() if getattr(m, '__file__', '') and
                     m.__file__.startswith(sysconfig.get_path('purelib')) and m.__file__.endswith('.py'))
    head = type('InstalledHead', (), {'__module__': installed.__name__})
    monkeypatch.setitem(HEADS.entries, 'InstalledHead', head)
    try:
        files = [path for path, _, _ in trace_cache._source_files()]
        assert str(module) in files
        assert os.path.abspath(installed.__file__) in files
        assert os.path.abspath(trace_cache.__file__) in files
        assert os.path.abspath(os.__file__) not in files and os.path.abspath(logging.__file__) not in files
    finally:
        del sys.modules['my_registered_head']


def test_a_runs_key_is_its_runtime_config_less_work_dir_and_seed():
    from engine_utils import TINY_CONFIG

    from actionjax.runtime_config import load_config

    cfg = load_config(TINY_CONFIG)
    key = trace_key(cfg)
    cfg.work_dir, cfg.seed = 'elsewhere', 7  # a launch in another work dir, with another seed
    assert trace_key(cfg) == key
    # a command's change to the runtime config (actionjax.test --average-clips) changes the programs
    cfg['model']['cls_head']['average_clips'] = 'score'
    assert trace_key(cfg) != key
    assert trace_key(dict(cfg)) is None
