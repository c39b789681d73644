"""``python -m actionjax.benchmark --what data``: clips/s of the TSN train pipeline, ours vs MMAction2's.

Both sides decode and augment the same Kinetics-like files (340x256, 10 s at 25 fps,
``--codec`` MPEG-4 part 2 or H.264, generated once under ``--videos``) with the same
pipeline (the ``data.train.pipeline`` of ``--config``, default the Kinetics-400 TSN
recipe) and ``--num-workers`` worker processes:

* ours, twice: ``actionjax.data`` (grain workers, uint8 channels-last batches) with the
  pipeline's decoder set to ``DecordInit``/``DecordDecode`` and to
  ``PyAVInit``/``PyAVDecode``. Before timing, both decoders read the same frames of
  the benchmark files and the table says whether they were identical;
* theirs: MMAction2 1.2.0's ``VideoDataset`` and transforms on torch's ``DataLoader``
  with mmengine's ``pseudo_collate`` and the process settings mmengine's runner applies
  (fork, OpenCV threads off), run by ``--ref-python`` (default ``$MMACTION2_PYTHON``) in a
  subprocess. The pipeline is
  the same list decoded with decord, as MMAction2's recipes do (its own ``PyAVDecode``
  decodes every frame from the start of the video), with the 0.x-only steps
  (``Normalize``, ``Collect``, ``ToTensor``) replaced by ``PackActionInputs``, as
  MMAction2 1.x writes it.

Each run times ``--batches`` batches after ``--warmup`` batches (worker start-up is
not counted); runs alternate between the two sides ``--repeats`` times and the table
shows medians. Without the reference Python only our figures are reported.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

DEFAULT_CONFIG = 'configs/_base_/datasets/kinetics400_tsn_video.py'
_NOT_IN_1X = ('Normalize', 'Collect', 'ToTensor', 'ImageToTensor')
_DECODERS = {'decord': ('DecordInit', 'DecordDecode'), 'pyav': ('PyAVInit', 'PyAVDecode')}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help='config whose data.train.pipeline is timed (default: Kinetics-400 TSN recipe)')
    parser.add_argument('--videos', default=osp.join(tempfile.gettempdir(), 'actionjax_bench_videos'),
                        help='folder for the generated benchmark videos (made once, then reused)')
    parser.add_argument('--num-videos', type=int, default=24)
    parser.add_argument('--codec', choices=['mpeg4', 'h264'], default='mpeg4',
                        help="the files' codec: 'mpeg4' (MPEG-4 part 2, key frame every 12, no B-frames) "
                             "or 'h264' (x264's defaults, as ffmpeg re-encodes Kinetics: B-frames, key "
                             'frame every 250)')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--num-workers', type=int, default=2)
    parser.add_argument('--warmup', type=int, default=2, help='batches read before timing starts')
    parser.add_argument('--batches', type=int, default=12, help='batches timed per run')
    parser.add_argument('--repeats', type=int, default=3, help='runs per side, alternating')
    parser.add_argument('--ref-python', default=os.environ.get('MMACTION2_PYTHON'),
                        help='Python of a venv with MMAction2 1.2.0 and torch (default: $MMACTION2_PYTHON; '
                             'without one only actionjax is timed); docs/reference_venvs.md sets one up')


# -- benchmark videos ----------------------------------------------------------------------


def render_kinetics_like(rng: np.random.Generator, height: int = 256, width: int = 340,
                         num_frames: int = 250) -> np.ndarray:
    """A clip with motion everywhere, as in real footage: a panning textured scene,
    a moving object and sensor noise, so that the encoder writes real inter frames."""
    import cv2

    from actionjax.data.synthetic import _textured_patch

    scene_h, scene_w = height + num_frames, width + num_frames  # room for a pan of 1 px/frame
    coarse = rng.uniform(20, 235, size=(12, 16, 3)).astype(np.float32)
    scene = cv2.resize(coarse, (scene_w, scene_h), interpolation=cv2.INTER_CUBIC)
    scene = np.clip(scene + rng.normal(0, 10, size=scene.shape).astype(np.float32), 0, 255).astype(np.uint8)
    patch = _textured_patch(rng, 64).astype(np.uint8)
    pan = rng.uniform(-1, 1, size=2)
    y0, x0 = rng.integers(0, num_frames // 2, size=2)
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):
        dy, dx = (np.array([y0, x0]) + pan * t).astype(int) % num_frames
        frame = frames[t]
        frame[...] = scene[dy:dy + height, dx:dx + width]
        oy, ox = int((t * 2) % (height - 64)), int((t * 3) % (width - 64))
        frame[oy:oy + 64, ox:ox + 64] = patch
        noise = rng.integers(-6, 7, size=(height, width, 1), dtype=np.int16)
        frame[...] = np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return frames


def write_h264(path: str, frames: np.ndarray, fps: int = 25) -> None:
    """``frames`` (T, H, W, 3) RGB as H.264 with x264's default settings (PyAV's encoder)."""
    import av

    with av.open(path, 'w', format='mp4') as container:
        stream = container.add_stream('libx264', rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], 'yuv420p'
        stream.options = {'x264-params': 'log-level=none'}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')))
        container.mux(stream.encode())


def make_benchmark_videos(folder: str, num_videos: int, repeat_to: int,
                          codec: str = 'mpeg4') -> tuple[str, str]:
    """Write ``num_videos`` Kinetics-like mp4 files (once) and an annotation list of
    ``repeat_to`` lines cycling through them; returns the list's path and the videos' folder."""
    from actionjax.data.synthetic import write_video

    videos = osp.join(folder, 'videos' if codec == 'mpeg4' else f'videos_{codec}')
    os.makedirs(videos, exist_ok=True)
    names = [f'{i:04d}.mp4' for i in range(num_videos)]
    for i, name in enumerate(names):
        path = osp.join(videos, name)
        if not osp.isfile(path):
            tmp = path + '.tmp.mp4'
            write = write_video if codec == 'mpeg4' else write_h264
            write(tmp, render_kinetics_like(np.random.default_rng([7, i])), fps=25)
            os.replace(tmp, path)
    ann_file = osp.join(folder, f'list_{num_videos}x{repeat_to}.txt')
    with open(ann_file, 'w') as f:
        f.writelines(f'{names[i % num_videos]} {i % 4}\n' for i in range(repeat_to))
    return ann_file, videos


# -- the pipelines ---------------------------------------------------------------------------


def with_decoder(pipeline: list, decoder: str) -> list:
    """``pipeline`` with its video decoder steps switched to ``decoder`` ('decord' or 'pyav');
    only the decoding ``mode`` carries over (the other arguments are backend-specific)."""
    init, decode = _DECODERS[decoder]
    inits, decodes = zip(*_DECODERS.values(), strict=True)
    steps = []
    for step in pipeline:
        if step['type'] in inits:
            step = dict(type=init)
        elif step['type'] in decodes:
            step = dict(type=decode, **({'mode': step['mode']} if 'mode' in step else {}))
        steps.append(dict(step))
    return steps


def decoders_agree(pipeline: list, ann_file: str, data_prefix: str, num_videos: int) -> bool:
    """Whether decord and PyAV decode identical frames for the pipeline's sampling of the
    first ``num_videos`` benchmark videos (the same draws on both sides)."""
    from actionjax.data import VideoDataset

    decoded = []
    for decoder in _DECODERS:
        steps = with_decoder(pipeline, decoder)
        last = [step['type'] for step in steps].index(_DECODERS[decoder][1])
        dataset = VideoDataset(ann_file, steps[:last + 1], data_prefix=data_prefix)
        decoded.append([dataset.prepare(i, np.random.default_rng([0, i]))['imgs'] for i in range(num_videos)])
    return all(np.array_equal(a, b) for a, b in zip(*decoded, strict=True))


# -- the sides -------------------------------------------------------------------------------


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) used so far by this process and by ``pids`` (Linux /proc)."""
    total = time.process_time()
    tick = os.sysconf('SC_CLK_TCK')
    for pid in pids:
        with open(f'/proc/{pid}/stat') as f:
            fields = f.read().rsplit(')', 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def time_ours(pipeline: list, ann_file: str, data_prefix: str, args: argparse.Namespace,
              seed: int) -> tuple[float, float]:
    """(clips/s, CPU seconds per clip) of actionjax's loader over ``args.batches`` batches after warm-up."""
    from actionjax.data import VideoDataset, build_dataloader

    dataset = VideoDataset(ann_file, pipeline, data_prefix=data_prefix)
    with build_dataloader(dataset, batch_size=args.batch_size, num_workers=args.num_workers, shuffle=True,
                          seed=seed, drop_last=True, shard_index=0, shard_count=1) as loader:
        batches = iter(loader)
        for _ in range(args.warmup):
            next(batches)
        workers = [p.pid for p in multiprocessing.active_children() if p.name.startswith('grain')]
        cpu0, start = cpu_seconds(workers), time.perf_counter()
        for _ in range(args.batches):
            batch = next(batches)
        elapsed, cpu = time.perf_counter() - start, cpu_seconds(workers) - cpu0
        assert batch['imgs'].dtype == np.uint8
    clips = args.batches * args.batch_size
    return clips / elapsed, cpu / clips


_REFERENCE_SCRIPT = r'''
import ast, json, os, sys, time
spec = ast.literal_eval(sys.argv[1])  # a Python literal: tuples in the pipeline stay tuples
from mmengine.utils.dl_utils import set_multi_processing
set_multi_processing(mp_start_method='fork', opencv_num_threads=0, distributed=False)
import torch
from mmengine.dataset import pseudo_collate
from mmaction.utils import register_all_modules
register_all_modules()
from mmaction.datasets import VideoDataset
dataset = VideoDataset(spec['ann_file'], spec['pipeline'], data_prefix=dict(video=spec['data_prefix']))
generator = torch.Generator().manual_seed(spec['seed'])
loader = torch.utils.data.DataLoader(dataset, batch_size=spec['batch_size'], num_workers=spec['num_workers'],
                                     shuffle=True, drop_last=True, collate_fn=pseudo_collate,
                                     generator=generator)
def cpu_seconds(pids):
    total = time.process_time()
    for pid in pids:
        with open(f'/proc/{pid}/stat') as f:
            fields = f.read().rsplit(')', 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')
    return total
batches = iter(loader)
for _ in range(spec['warmup']):
    next(batches)
workers = [w.pid for w in batches._workers]
cpu0, start = cpu_seconds(workers), time.perf_counter()
for _ in range(spec['batches']):
    batch = next(batches)
elapsed, cpu = time.perf_counter() - start, cpu_seconds(workers) - cpu0
clips = spec['batches'] * spec['batch_size']
del batches
print(json.dumps({'clips_per_s': clips / elapsed, 'cpu_per_clip': cpu / clips,
                  'imgs': list(batch['inputs'][0].shape)}))
'''


def reference_pipeline(pipeline: list) -> list:
    """Our 0.x pipeline as MMAction2 1.x writes it: 0.x-only formatting steps become PackActionInputs."""
    steps = [dict(step) for step in pipeline if step['type'] not in _NOT_IN_1X]
    return steps + [dict(type='PackActionInputs')]


def time_theirs(pipeline: list, ann_file: str, data_prefix: str, args: argparse.Namespace,
                seed: int) -> tuple[float, float]:
    """(clips/s, CPU seconds per clip) of MMAction2 1.2.0 on torch's DataLoader, in the reference Python."""
    spec = dict(pipeline=reference_pipeline(pipeline), ann_file=ann_file, data_prefix=data_prefix,
                batch_size=args.batch_size, num_workers=args.num_workers, warmup=args.warmup,
                batches=args.batches, seed=seed)
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'PYTHONHOME')}
    proc = subprocess.run([args.ref_python, '-c', _REFERENCE_SCRIPT, repr(spec)], capture_output=True,
                          text=True, env=env, cwd=tempfile.gettempdir(), timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f'the MMAction2 reference run failed (exit {proc.returncode}):\n'
                           f'{proc.stderr[-3000:]}')
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return float(out['clips_per_s']), float(out['cpu_per_clip'])


def run(args: argparse.Namespace) -> dict[str, Any]:
    from functools import partial

    from actionjax.config import Config

    cfg = Config.fromfile(args.config)
    pipeline = [dict(step) for step in cfg['data']['train']['pipeline']]
    clips = (args.warmup + args.batches) * args.batch_size
    start = time.perf_counter()
    ann_file, data_prefix = make_benchmark_videos(args.videos, args.num_videos, clips + args.batch_size,
                                                  args.codec)
    print(f'benchmark videos ready in {args.videos} ({time.perf_counter() - start:.1f} s)', file=sys.stderr)
    identical = decoders_agree(pipeline, ann_file, data_prefix, args.num_videos)
    mmaction2 = 'MMAction2 1.2.0, DecordDecode'
    sides = {'actionjax, DecordDecode': partial(time_ours, with_decoder(pipeline, 'decord')),
             'actionjax, PyAVDecode': partial(time_ours, with_decoder(pipeline, 'pyav'))}
    if args.ref_python and osp.isfile(args.ref_python):
        sides[mmaction2] = partial(time_theirs, with_decoder(pipeline, 'decord'))
    elif args.ref_python:
        print(f'reference Python {args.ref_python} not found: timing actionjax only', file=sys.stderr)
    else:
        print('no reference Python (--ref-python or $MMACTION2_PYTHON): timing actionjax only',
              file=sys.stderr)

    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    for rep in range(args.repeats):  # alternate, so that a busy spell on the machine hits every side
        for name, time_side in sides.items():
            runs[name].append(time_side(ann_file, data_prefix, args, seed=rep))
            rate, cpu = runs[name][-1]
            print(f'run {rep + 1}/{args.repeats} {name}: {rate:.1f} clips/s, {cpu * 1e3:.0f} ms CPU/clip',
                  file=sys.stderr)

    results: dict[str, Any] = dict(config=args.config, codec=args.codec, batch_size=args.batch_size,
                                   num_workers=args.num_workers, clips_per_run=args.batches * args.batch_size,
                                   decoders_identical=identical, sides={})
    print(f'\nTSN train pipeline ({args.config}) on {args.codec} files, {args.num_workers} workers, '
          f'batch {args.batch_size}, {args.batches * args.batch_size} clips per run, '
          f'{args.repeats} runs each, medians')
    print(f'decord and PyAV frames identical on {args.num_videos} sampled clips: '
          f'{"yes" if identical else "NO"}')
    print(f'{"loader":<36}{"clips/s":>10}{"CPU ms/clip":>14}{"clips/CPU-s":>13}   clips/s of each run')
    for name, side_runs in runs.items():
        rate = statistics.median(r for r, _ in side_runs)
        cpu = statistics.median(c for _, c in side_runs)
        results['sides'][name] = dict(clips_per_s=rate, cpu_s_per_clip=cpu, runs=side_runs)
        print(f'{name:<36}{rate:>10.1f}{cpu * 1e3:>14.1f}{1 / cpu:>13.1f}   '
              f'{", ".join(f"{r:.1f}" for r, _ in side_runs)}')
    if mmaction2 in results['sides']:
        theirs = results['sides'][mmaction2]
        results['ratios'] = {}
        for name, ours in results['sides'].items():
            if name == mmaction2:
                continue
            ratio = ours['clips_per_s'] / theirs['clips_per_s']
            cpu_ratio = theirs['cpu_s_per_clip'] / ours['cpu_s_per_clip']
            results['ratios'][name] = dict(clips_per_s=ratio, clips_per_cpu_s=cpu_ratio)
            print(f'{name} / MMAction2: {ratio:.2f}x clips/s, {cpu_ratio:.2f}x clips per CPU-second')
        print('(clips per CPU-second is what a busy, shared machine measures reliably)')
    return results
