"""``python -m actionjax.benchmark --what model --config C``: one model's train step and inference.

Times the step ``actionjax.train`` runs (the config's model, optimizer with its param-wise
rules and schedules, grad clipping; uint8 frames normalised on the device) and the test
forward (``predict``) on a fixed random batch of ``--batch`` samples of ``--input-shape``
(for a localizer: its training set's first sample, ``--batch`` times):

* compile time of the train step (``lower`` + ``compile``) and of inference;
* train-step and inference seconds: medians over ``--repeats`` rounds of ``--steps``
  steps (each round after one untimed step), with the spread (min and max of the rounds),
  samples/s and frames/s (a clip's V x T frames per sample), for each side;
* peak host memory (RSS) and, where the backend reports it, peak device memory.

With ``--against-mmaction2`` the same model config and batch run in MMAction2 1.2.0 in a
subprocess of ``--ref-python`` (or ``$MMACTION2_PYTHON``): its ``train_step`` (data
preprocessor, forward, loss, backward, the optim wrapper's clip and SGD update) and
``test_step``, on the GPU when its torch sees one, in float32 and/or (``--ref-precision``)
float16 mixed precision (``AmpOptimWrapper``, autocast inference), each in its own process.
Rounds alternate between the sides so that all see the same machine load, and the ratios
(ours / theirs) are medians of per-round ratios. The reference venv:
``python -m venv ref && ref/bin/pip install torch==2.13.0 mmengine==0.10.7 mmcv-lite==2.1.0
mmaction2==1.2.0 importlib_metadata`` (the 1.2.0 wheel lacks ``models/localizers/drn``:
wrap that import in ``mmaction/models/localizers/__init__.py`` in try/except).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np

# MMAction2's precisions, each timed in its own process under the name its results carry
REF_PRECISIONS = {'float32': 'mmaction2', 'amp': 'mmaction2-amp'}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--config', default='configs/tsn.py',
                        help='an MMAction2-style config (default: TSN-R50)')
    parser.add_argument('--batch', type=int, default=2, help='samples (videos) per step')
    parser.add_argument('--input-shape', type=lambda s: tuple(int(v) for v in s.split(',')),
                        help='one sample, channels last without C: V,H,W (2D) or V,T,H,W (3D); '
                             "default: the config's sampling at 112x112, or at the backbone's img_size / "
                             'input_resolution')
    parser.add_argument('--num-classes', type=int, help='override the head\'s num_classes')
    parser.add_argument('--dtype', choices=('float32', 'bfloat16'), default='float32',
                        help="actionjax's compute dtype, whatever the config's fp16 / AmpOptimWrapper "
                             'say (MMAction2 runs in float32)')
    parser.add_argument('--steps', type=int, default=3, help='steps per timed round')
    parser.add_argument('--repeats', type=int, default=3, help='timed rounds per side')
    parser.add_argument('--no-train', action='store_true', help='time inference only')
    parser.add_argument('--against-mmaction2', action='store_true',
                        help='time MMAction2 1.2.0 too, in alternating rounds (needs --ref-python)')
    parser.add_argument('--ref-precision', nargs='+', choices=REF_PRECISIONS, default=['float32'],
                        help="MMAction2's side: float32, and/or amp (float16 mixed precision: "
                             'AmpOptimWrapper, autocast inference; GPU only); naming both times both '
                             'against one compile of ours')
    parser.add_argument('--ref-python', default=os.environ.get('MMACTION2_PYTHON'),
                        help='Python of a venv with MMAction2 1.2.0 (default: $MMACTION2_PYTHON)')


def _sample_shape(cfg: Any, shape: tuple[int, ...] | None) -> tuple[int, ...]:
    if shape:
        return (*shape, 3)
    from actionjax.runtime_config import sample_shape

    backbone = cfg['model'].get('backbone') or {}
    # a transformer with position embeddings for one size (TimeSformer, ViT, UniFormerV2) takes that size
    size = backbone.get('img_size') or backbone.get('input_resolution') or 112
    return tuple(sample_shape(cfg, size=size)[1:])


def _fixed_batch(cfg: Any, args: argparse.Namespace) -> dict[str, np.ndarray]:
    """A recognizer's batch: random uint8 clips of ``--input-shape`` and labels. A localizer's
    (a model without ``cls_head``): the first readable sample of the config's training set,
    ``--batch`` times (its features and ground truth have no shape to choose)."""
    rng = np.random.default_rng(0)
    if 'cls_head' not in cfg['model']:
        from actionjax.data import build_dataset
        from actionjax.engine.build import sample_batch

        sample = sample_batch(build_dataset(cfg, 'data.train'))
        return {key: np.repeat(value, args.batch, axis=0) for key, value in sample.items()}
    shape = _sample_shape(cfg, args.input_shape)
    num_classes = cfg['model']['cls_head']['num_classes']
    return {'imgs': rng.integers(0, 256, size=(args.batch, *shape), dtype=np.uint8),
            'label': rng.integers(0, num_classes, size=args.batch).astype(np.int32)}


class Ours:
    """The config's model under actionjax: the jitted train and eval steps on one batch."""

    def __init__(self, cfg: Any, batch: dict[str, np.ndarray], train: bool, dtype: str) -> None:
        import jax

        from actionjax.engine import build
        from actionjax.engine.sharding import batch_sharded, make_mesh, replicated, to_device
        from actionjax.engine.state import TrainState
        from actionjax.engine.steps import make_eval_step, make_train_step
        from actionjax.models import build_model

        # --dtype, not the config's mixed precision keys: MMAction2's side runs a float32
        # OptimWrapper (its AmpOptimWrapper needs a GPU), so both sides compute alike
        cfg['precision'] = dtype
        mesh = make_mesh()
        self.batch = to_device(batch, batch_sharded(mesh))
        model = build_model(cfg)
        sample = {k: v[:1] for k, v in batch.items()}
        variables = build.init_variables(model, sample, seed=0)
        self.compile_s: dict[str, float] = {}
        eval_step = make_eval_step(model, replicated(mesh), batch_sharded(mesh))
        # its own device copy: the train step donates (deletes) the state's buffers
        self.variables = jax.device_put(variables, replicated(mesh))
        self.eval_step = self._compile('inference', eval_step, self.variables, self.batch)
        self.state = None
        if train:
            tx = build.build_tx(cfg, model, variables, sample, iters_per_epoch=100)
            state = jax.device_put(TrainState.create(variables, tx, jax.random.PRNGKey(0)), replicated(mesh))
            step = make_train_step(model, tx, replicated(mesh), batch_sharded(mesh))
            self.train_step = self._compile('train', step, state, self.batch)
            self.state = state

    def _compile(self, name: str, fn: Any, *args: Any) -> Any:
        start = time.perf_counter()
        compiled = fn.lower(*args).compile()
        self.compile_s[name] = time.perf_counter() - start
        return compiled

    def time_train(self, steps: int) -> float:
        import jax

        start = time.perf_counter()
        for _ in range(steps):
            self.state, metrics = self.train_step(self.state, self.batch)
        jax.block_until_ready((self.state, metrics))
        return (time.perf_counter() - start) / steps

    def time_inference(self, steps: int) -> float:
        import jax

        start = time.perf_counter()
        for _ in range(steps):
            out = self.eval_step(self.variables, self.batch)
        jax.block_until_ready(out)
        return (time.perf_counter() - start) / steps


# The reference side: a small server the ref interpreter runs. It reads a JSON spec, builds
# MMAction2's model and optim wrapper, answers each "train N" / "test N" line with seconds per
# step. Kept as text so that nothing of actionjax is imported into the reference venv.
_REFERENCE_SERVER = r'''
import inspect, json, sys, time
import numpy as np
import torch
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from mmaction.utils import register_all_modules
from mmengine.optim import build_optim_wrapper

register_all_modules()
spec = json.loads(sys.stdin.readline())
torch.manual_seed(0)
backbone = spec['model'].get('backbone') or {}
backbone_cls = MODELS.get(backbone.get('type', ''))
inflates = backbone_cls and 'pretrained2d' in inspect.signature(backbone_cls).parameters
if inflates and not backbone.get('pretrained'):
    backbone['pretrained2d'] = False  # no 2D checkpoint to inflate (Swin's default would load None)
model = MODELS.build(spec['model'])
model.init_weights()
device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
model.to(device)  # its data preprocessor moves each batch to the model's device
if spec['amp'] and device.type != 'cuda':
    raise SystemExit('--ref-precision amp needs a GPU: MMAction2 AmpOptimWrapper runs on CUDA only')


def finished():
    if device.type == 'cuda':
        torch.cuda.synchronize()  # kernels run asynchronously: the clock waits for them
rng = np.random.default_rng(0)
imgs = spec['imgs']
inputs = [torch.from_numpy(np.ascontiguousarray(np.load(imgs)[i])) for i in range(spec['batch'])]
labels = np.load(spec['labels'])
samples = [ActionDataSample().set_gt_label(int(l)) for l in labels]
data = dict(inputs=inputs, data_samples=samples)
wrapper = build_optim_wrapper(model, spec['optim_wrapper']) if spec['optim_wrapper'] else None
print('BENCH ' + json.dumps({'ready': True, 'threads': torch.get_num_threads(), 'device': str(device)}),
      flush=True)
for line in sys.stdin:
    what, n = line.split()
    n = int(n)
    if what == 'train':
        model.train()
        start = time.perf_counter()
        for _ in range(n):
            model.train_step(data, wrapper)
        finished()
        seconds = (time.perf_counter() - start) / n
    else:
        model.eval()
        with torch.no_grad(), torch.autocast(device.type, enabled=spec['amp']):
            start = time.perf_counter()
            for _ in range(n):
                model.test_step(data)
            finished()
            seconds = (time.perf_counter() - start) / n
    print('BENCH ' + json.dumps({'seconds': seconds}), flush=True)
'''


class Theirs:
    """MMAction2 1.2.0 in a subprocess, driven round by round."""

    def __init__(self, ref_python: str, cfg: Any, batch: dict[str, np.ndarray], workdir: str,
                 amp: bool = False) -> None:
        imgs_path, labels_path = os.path.join(workdir, 'imgs.npy'), os.path.join(workdir, 'labels.npy')
        # MMAction2 takes (V, C, H, W) or (V, C, T, H, W) per sample: channels first
        imgs = batch['imgs']
        order = (0, 1, imgs.ndim - 1, *range(2, imgs.ndim - 1))
        np.save(imgs_path, np.ascontiguousarray(imgs.transpose(order)))
        np.save(labels_path, batch['label'])
        model = _reference_model(cfg)
        wrapper = _reference_optim_wrapper(cfg, amp) if cfg['optimizer'] is not None else None
        self.amp = amp
        spec = dict(model=model, optim_wrapper=wrapper, imgs=imgs_path,
                    labels=labels_path, batch=int(imgs.shape[0]), amp=amp)
        self.proc = subprocess.Popen([ref_python, '-c', _REFERENCE_SERVER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.proc.stdin.write(json.dumps(spec) + '\n')
        self.proc.stdin.flush()
        self.info = self._read()

    def _read(self) -> dict:
        while True:  # MMAction2 may print its own lines; ours start with 'BENCH '
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f'the MMAction2 reference process failed:\n{self.proc.stderr.read()}')
            if line.startswith('BENCH '):
                return json.loads(line[len('BENCH '):])

    def time(self, what: str, steps: int) -> float:
        self.proc.stdin.write(f'{what} {steps}\n')
        self.proc.stdin.flush()
        return float(self._read()['seconds'])

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _reference_model(cfg: Any) -> dict:
    """The runtime model dict in MMAction2 1.x form (its data preprocessor, format_shape)."""
    model = json.loads(json.dumps(cfg['model']))
    pre = model.setdefault('data_preprocessor', {'type': 'ActionDataPreprocessor'})
    pre.setdefault('type', 'ActionDataPreprocessor')
    pre.setdefault('format_shape', 'NCTHW' if model['type'] == 'Recognizer3D' else 'NCHW')
    backbone = model.get('backbone') or {}
    if isinstance(backbone.get('pretrained'), str):
        backbone['pretrained'] = None  # no downloads: random weights on both sides
    # MMAction2 asserts a batch of 1 under max_testing_views, which only bounds memory
    (model.get('test_cfg') or {}).pop('max_testing_views', None)
    return model


def _reference_optim_wrapper(cfg: Any, amp: bool) -> dict:
    optimizer = dict(cfg['optimizer'])
    wrapper: dict[str, Any] = dict(type='AmpOptimWrapper' if amp else 'OptimWrapper')
    for key in ('constructor', 'paramwise_cfg'):
        if key in optimizer:
            wrapper[key] = optimizer.pop(key)
    if wrapper.get('constructor', '').endswith('OptimizerConstructor'):
        wrapper['constructor'] = wrapper['constructor'].replace('OptimizerConstructor',
                                                                'OptimWrapperConstructor')
    wrapper['optimizer'] = optimizer
    if cfg.get('grad_clip'):
        wrapper['clip_grad'] = dict(cfg['grad_clip'])
    return wrapper


def _peak_host_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_device_mb() -> float | None:
    import jax

    stats = jax.local_devices()[0].memory_stats() or {}
    peak = stats.get('peak_bytes_in_use')
    return None if peak is None else peak / 2**20


def _spread(values: list[float]) -> dict[str, float]:
    return {'median': statistics.median(values), 'min': min(values), 'max': max(values)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import tempfile

    import jax

    from actionjax.runtime_config import load_config

    if args.against_mmaction2:
        # both sides share one GPU: JAX must not take 75% of its memory before torch starts
        os.environ.setdefault('XLA_PYTHON_CLIENT_PREALLOCATE', 'false')
    cfg = load_config(args.config)
    if args.num_classes:
        cfg['model']['cls_head']['num_classes'] = args.num_classes
    batch = _fixed_batch(cfg, args)
    if args.against_mmaction2 and 'imgs' not in batch:
        raise SystemExit(f'error: --against-mmaction2 times recognizers; {args.config} holds a '
                         f'localizer ({cfg["model"]["type"]}): run it without --against-mmaction2')
    train = not args.no_train
    if train and cfg['optimizer'] is None:
        raise SystemExit(f'error: {args.config} has no optimizer (a test-only recipe): time its inference '
                         'with --no-train')
    if args.against_mmaction2 and not args.ref_python:
        raise SystemExit('error: --against-mmaction2 needs --ref-python PY or $MMACTION2_PYTHON '
                         '(a venv with MMAction2 1.2.0; see python -m actionjax.benchmark --help)')
    ours = Ours(cfg, batch, train, args.dtype)
    theirs: dict[str, Theirs] = {}
    if args.against_mmaction2:
        for precision in dict.fromkeys(args.ref_precision):
            theirs[REF_PRECISIONS[precision]] = Theirs(
                args.ref_python, cfg, batch, tempfile.mkdtemp(prefix='actionjax_bench_'),
                amp=precision == 'amp')

    times: dict[str, list[float]] = {}
    whats = (['train'] if train else []) + ['inference']
    for _ in range(args.repeats):
        for what in whats:
            # each round starts with an untimed step: the first step after the other side's
            # round runs up to 1.5x slower (I3D-R50: its memory traffic evicts this side's pages)
            ours_step = ours.time_train if what == 'train' else ours.time_inference
            ours_step(1)
            ours_s = ours_step(args.steps)
            times.setdefault(f'{what}/actionjax', []).append(ours_s)
            their_what = 'train' if what == 'train' else 'test'
            for name, reference in theirs.items():
                reference.time(their_what, 1)
                theirs_s = reference.time(their_what, args.steps)
                times.setdefault(f'{what}/{name}', []).append(theirs_s)
                times.setdefault(f'{what}/ratio-{name}', []).append(ours_s / theirs_s)
    for reference in theirs.values():
        reference.close()

    # frames per step: a recognizer's imgs are (N, V, [T,] H, W, C); a localizer's sample counts as one
    frames = int(np.prod(batch['imgs'].shape[:-3])) if 'imgs' in batch else args.batch
    medians = {k: statistics.median(v) for k, v in times.items() if '/ratio' not in k}
    results: dict[str, Any] = {
        'config': args.config, 'batch': list(batch['imgs'].shape) if 'imgs' in batch else
        {key: list(value.shape) for key, value in batch.items()}, 'dtype': args.dtype,
        'device': f'{jax.device_count()} x {jax.devices()[0].device_kind}',
        'compile_s': ours.compile_s, 'seconds': {k: _spread(v) for k, v in times.items()},
        'samples_per_s': {k: args.batch / median for k, median in medians.items()},
        'frames_per_s': {k: frames / median for k, median in medians.items()},
        'peak_host_mb': _peak_host_mb(), 'peak_device_mb': _peak_device_mb(),
    }
    for name, reference in theirs.items():
        results[name] = dict(reference.info, amp=reference.amp)
    print(f'{args.config}: batch {results["batch"]} {args.dtype} on {results["device"]}; '
          f'medians of {args.repeats} rounds x {args.steps} steps')
    for name, seconds in ours.compile_s.items():
        print(f'  compile {name:<10} {seconds:8.2f} s')
    for key, spread in results['seconds'].items():
        unit = '' if '/ratio' in key else ' s'
        print(f'  {key:<30} {spread["median"]:8.4f}{unit}  '
              f'(min {spread["min"]:.4f}, max {spread["max"]:.4f})')
    for key, fps in results['frames_per_s'].items():
        print(f'  {key:<30} {fps:8.1f} frames/s')
    print(f'  peak host memory {results["peak_host_mb"]:.0f} MB'
          + (f', device {results["peak_device_mb"]:.0f} MB' if results['peak_device_mb'] else ''))
    sys.stdout.flush()
    return results
