"""``cached_jit``: jit whose traced program is kept on disk, so that a second launch skips
tracing as well as compiling.

The compilation cache (``compile_cache``) skips XLA's compile, but to look a program up
there jax must first trace the step in Python and lower it: 2 to 3 s for a ResNet-50 train
step on two CPU cores, the largest part of a second launch's wait once compiling is gone.
``jax.export`` turns a traced and lowered step into bytes. ``cached_jit`` keeps them in the
compilation cache's folder (``traced/``) and, in a later process, calls the stored program
instead of tracing the step again. Both launches run the stored program, so the second
finds the first's compiled code in the compilation cache.

A stored program is used only when nothing it was traced from can have changed. Its name
hashes the caller's key (the run's config and anything else the step closes over), the
arguments' tree, shapes, dtypes and shardings, jax's settings, ``XLA_FLAGS``, the devices,
the Python, jax, jaxlib, flax, optax and numpy versions, and the size and modification time
of every source file of actionjax, of every loaded module from outside the Python
installation and of every module that registered a backbone, head, optimizer or other
registry entry (a user's own code, installed or not). A step that cannot be exported (one
with a host callback, say) runs as plain jit; ``ACTIONJAX_CACHE_DIR=off`` turns both caches
off.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import os
import pickle
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

logger = logging.getLogger('actionjax')


def cached_jit(fun: Callable, key: str | None, *, donate_argnums: int | Sequence[int] = (),
               folder: str | None = None, **jit_kwargs: Any) -> Callable:
    """``jax.jit(fun, donate_argnums=..., **jit_kwargs)`` whose traced program is kept on disk.

    ``key`` must name everything ``fun`` closes over that can change its program (for a train
    step: the config and the schedule's length); the rest of the key is found here. Programs
    go to ``folder``, by default ``traced/`` in the compilation cache's folder. Without a key,
    or without a compilation cache (``enable_compilation_cache``), this is plain ``jax.jit``.
    """
    jitted = jax.jit(fun, donate_argnums=donate_argnums, **jit_kwargs)
    cache = jax.config.jax_compilation_cache_dir
    folder = folder or (os.path.join(cache, 'traced') if cache else None)
    if key is None or not folder:
        return jitted
    donated = {donate_argnums} if isinstance(donate_argnums, int) else set(donate_argnums)
    programs: dict[tuple, tuple[Callable, Any] | None] = {}  # by argument tree, shapes and dtypes

    @functools.wraps(fun)
    def call(*args: Any) -> Any:
        leaves, in_tree = jax.tree.flatten(args)
        # cheap to build every step; the full program name is hashed once per signature
        signature = (in_tree, *((getattr(x, 'shape', None), getattr(x, 'dtype', type(x)),
                                 getattr(x, 'weak_type', False)) for x in leaves))
        if signature not in programs:
            name = _program_name(f'{fun.__module__}.{fun.__qualname__}\n{key}', in_tree, leaves)
            path = os.path.join(folder, name)
            programs[signature] = _stored_program(jitted, args, donated, path)
        if programs[signature] is None:
            return jitted(*args)
        run, out_tree = programs[signature]
        return jax.tree.unflatten(out_tree, run(*leaves))

    return call


def trace_key(cfg: Mapping[str, Any]) -> str | None:
    """The key a run's init and steps are stored under: the runtime config they are built from
    (with any change a command made to it), all of it but the work dir and seed, which no
    traced step reads (seeds reach them as arguments), so that a launch elsewhere or with
    another seed loads them. None for a config that is not a ``Config``."""
    from actionjax.config import Config

    if not isinstance(cfg, Config):
        return None
    return Config({k: v for k, v in cfg.items() if k not in ('work_dir', 'seed')}).pretty_text


def _stored_program(jitted: Callable, args: tuple, donated: set[int], path: str
                    ) -> tuple[Callable, Any] | None:
    """The program stored at ``path`` (exported and stored first when there is none) as a
    jitted function of the arguments' leaves, with the tree its output leaves form; None when
    ``jitted`` cannot be exported."""
    starts = [0, *itertools.accumulate(len(jax.tree.leaves(a)) for a in args)]
    donate = tuple(i for a in sorted(donated) for i in range(starts[a], starts[a + 1]))
    try:
        with open(path, 'rb') as f:
            serialized, out_tree = pickle.load(f)
        exported = jax.export.deserialize(bytearray(serialized))
    except Exception:  # noqa: BLE001 (none stored yet, or a damaged file: export anew)
        try:
            serialized, out_tree = _export(jitted, args, donate)
        except Exception as e:  # noqa: BLE001 (plain jit then; it raises any error of the step itself)
            logger.info(f'the step runs without a stored trace: jax.export cannot take it ({e})')
            return None
        try:
            _write_atomically(path, pickle.dumps((serialized, out_tree)))
        except OSError as e:  # a read-only or full disk costs the next launch its trace, no more
            logger.warning(f'could not store the traced step in {os.path.dirname(path)}: {e}')
        # this launch runs the program as deserialized too, so the next one compiles the same
        exported = jax.export.deserialize(bytearray(serialized))
    return jax.jit(exported.call, donate_argnums=donate), out_tree


def _export(jitted: Callable, args: tuple, donate: tuple[int, ...]) -> tuple[bytes, Any]:
    """``jitted`` traced at ``args`` and serialized, as a function of their leaves returning a
    list of leaves (``jax.export`` serializes lists, not the classes of a train state), with
    the tree those output leaves form."""
    leaves, in_tree = jax.tree.flatten(args)
    out_tree = None

    def on_leaves(*leaves: Any) -> list:
        nonlocal out_tree
        out_leaves, out_tree = jax.tree.flatten(jitted(*jax.tree.unflatten(in_tree, leaves)))
        return out_leaves

    exported = jax.export.export(jax.jit(on_leaves, donate_argnums=donate))(*leaves)
    return bytes(exported.serialize()), out_tree


def _write_atomically(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, so that a concurrent launch reads
    a whole program or none."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:  # a full disk: leave no partial file behind either
        os.unlink(tmp)
        raise


def _program_name(key: str, in_tree: Any, leaves: list) -> str:
    """A hash of everything the traced program depends on (the module docstring's list)."""
    h = hashlib.sha256()
    for part in (key, repr(in_tree), _environment(),
                 *(f'{jax.typeof(x)} {getattr(x, "sharding", None)!r}' for x in leaves)):
        h.update(part.encode())
        h.update(b'\0')
    return h.hexdigest()


@functools.cache
def _environment() -> str:
    """Versions, settings, devices and source files: the same for every step of a process."""
    import flax
    import jaxlib
    import optax

    settings = sorted((k, repr(v)) for k, v in jax.config.values.items())
    devices = [(d.platform, d.device_kind) for d in jax.devices()]
    return repr((sys.version, jax.__version__, jaxlib.__version__, flax.__version__, optax.__version__,
                 np.__version__, os.environ.get('XLA_FLAGS', ''), settings, devices, _source_files()))


def _source_files() -> list[tuple[str, int, int]]:
    """(path, mtime, size) of the code a step can be traced from, short of the libraries whose
    versions the key holds: actionjax's source files, the loaded modules from outside the
    Python installation, and the modules of every registry entry (a user's own backbone or
    optimizer, installed or not)."""
    import actionjax
    from actionjax import registry

    package = os.path.dirname(os.path.abspath(actionjax.__file__))
    paths = {os.path.join(root, f) for root, _, files in os.walk(package) for f in files if f.endswith('.py')}
    installed = tuple(os.path.abspath(p) + os.sep for p in {sysconfig.get_path(n) for n in
                                                             ('stdlib', 'platstdlib', 'purelib', 'platlib')})
    registered = {getattr(entry, '__module__', None) for table in vars(registry).values()
                  if isinstance(table, registry.Registry) for entry in table.entries.values()}
    for name, module in list(sys.modules.items()):
        path = os.path.abspath(getattr(module, '__file__', None) or '')
        if path.endswith('.py') and (name in registered or not path.startswith(installed)):
            paths.add(path)
    stats = []
    for path in sorted(paths):
        try:
            st = os.stat(path)
        except OSError:
            continue
        stats.append((path, st.st_mtime_ns, st.st_size))
    return stats
