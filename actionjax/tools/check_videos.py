"""``python -m actionjax.tools.check_videos --config CONFIG [--split train]``: find unreadable videos.

Run it before a long training run. Every sample of the split is opened and its first,
middle and last frames are decoded (``--full``: every frame), in parallel processes, with
the decoder the split's pipeline uses (PyAV for ``PyAVInit``, decord otherwise).
A missing, truncated or corrupt file is listed with the reason; the exit status is 1
if any is found (0 otherwise), so scripts can stop early. ``--out FILE`` writes the
bad paths, one per line. Rawframe datasets are checked the same way: the frame folder
exists and its first, middle and last images decode.

The training loader survives such files anyway (it replaces the sample and reports it
at the end of the epoch); this tool tells you about all of them up front.
"""

from __future__ import annotations

import argparse
import os
import os.path as osp
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

import numpy as np


def _frames_to_check(total: int, full: bool) -> list[int]:
    if full:
        return list(range(total))
    return sorted({0, total // 2, total - 1})


def _open_reader(path: str, decoder: str) -> tuple[int, Callable[[list[int]], np.ndarray]]:
    """(frame count, read(indices) -> frames) of ``path`` with ``decoder`` ('decord' or 'pyav')."""
    if decoder == 'pyav':
        from actionjax.data.pipelines.pyav import IndexedVideo

        video = IndexedVideo(path)
        return len(video), lambda inds: video.read(np.asarray(inds))
    import decord

    reader = decord.VideoReader(path, num_threads=1)
    return len(reader), lambda inds: reader.get_batch(inds).asnumpy()


def check_video(path: str, full: bool = False, decoder: str = 'decord') -> str | None:
    """``None`` if ``path`` opens and its first, middle and last frames decode with ``decoder``
    ('decord' or 'pyav'), else the reason."""
    if not osp.isfile(path):
        return 'file not found'
    try:
        total, read = _open_reader(path, decoder)
    except Exception as err:  # noqa: BLE001 - decoders report corruption with assorted exception types
        return f'cannot open ({_reason(err)})'
    if total == 0:
        return 'no frames'
    inds = _frames_to_check(total, full)
    for start in range(0, len(inds), 64):  # bounded memory with --full
        chunk = inds[start:start + 64]
        try:
            frames = read(chunk)
        except Exception as err:  # noqa: BLE001
            return f'cannot decode frames {chunk[0]}..{chunk[-1]} of {total} ({_reason(err)})'
        if frames.shape[0] != len(chunk):
            return f'decoded {frames.shape[0]} of frames {chunk[0]}..{chunk[-1]}'
    return None


def _reason(err: BaseException) -> str:
    text = str(err).strip()
    return f'{type(err).__name__}: {text.splitlines()[0]}' if text else type(err).__name__


def check_frames(frame_dir: str, total_frames: int, filename_tmpl: str, start_index: int, offset: int = 0,
                 full: bool = False) -> str | None:
    """``None`` if the first, middle and last frame images of ``frame_dir`` decode, else the reason."""
    import cv2

    if not osp.isdir(frame_dir):
        return 'frame folder not found'
    if total_frames <= 0:
        return 'total_frames is 0'
    for i in _frames_to_check(total_frames, full):
        path = osp.join(frame_dir, filename_tmpl.format(start_index + offset + i))
        if cv2.imread(path) is None:
            return f'cannot read {path}'
    return None


def check_sample(info: Mapping[str, Any], full: bool = False, decoder: str = 'decord') -> str | None:
    """Check one annotation entry (a ``get_info`` dict of a Video- or RawframeDataset)."""
    if 'frame_dir' in info:
        return check_frames(info['frame_dir'], int(info['total_frames']),
                            info.get('filename_tmpl', 'img_{:05}.jpg'), int(info.get('start_index', 1)),
                            int(info.get('offset', 0)), full)
    from actionjax.data.pipelines.loading import video_filename

    return check_video(video_filename(info['filename']), full, decoder)


def _check_one(args: tuple[str, dict, bool, str]) -> tuple[str, str | None]:
    path, info, full, decoder = args
    return path, check_sample(info, full, decoder)


def pipeline_decoder(dataset: Any) -> str:
    """'pyav' when the dataset's pipeline opens videos with ``PyAVInit``, else 'decord'."""
    from actionjax.data.pipelines import PyAVInit

    inner = getattr(dataset, 'dataset', dataset)  # RepeatDataset
    steps = getattr(getattr(inner, 'pipeline', None), 'transforms', [])
    return 'pyav' if any(isinstance(step, PyAVInit) for step in steps) else 'decord'


def _quiet_worker() -> None:
    # decord's C++ logger prints its own line for every file it cannot open; the reasons
    # are collected and printed by the main process instead.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


def _unique_samples(dataset: Any) -> Iterable[tuple[str, dict]]:
    inner = getattr(dataset, 'dataset', dataset)  # RepeatDataset: each file once
    seen = set()
    for i in range(len(inner)):
        path = inner.sample_path(i)
        if path not in seen:
            seen.add(path)
            info = inner.get_info(i)
            info.pop('label', None)  # not needed, and one-hot arrays are bulky to send
            yield path, info


def check_dataset(dataset: Any, num_workers: int = 2, full: bool = False,
                  progress: bool = False) -> list[tuple[str, str]]:
    """``[(path, reason), ...]`` for every unreadable sample of ``dataset``, in dataset order."""
    decoder = pipeline_decoder(dataset)
    jobs = [(path, info, full, decoder) for path, info in _unique_samples(dataset)]
    if num_workers <= 0:
        results = map(_check_one, jobs)
        pool = None
    else:
        # spawn: the caller may have started threads (JAX, decord) that fork would copy half-way
        pool = ProcessPoolExecutor(num_workers, mp_context=get_context('spawn'), initializer=_quiet_worker)
        results = pool.map(_check_one, jobs, chunksize=max(1, min(64, len(jobs) // (8 * num_workers))))
    bad = []
    try:
        for n, (path, error) in enumerate(results, 1):
            if error is not None:
                bad.append((path, error))
            if progress and (n % 200 == 0 or n == len(jobs)):
                print(f'\rchecked {n}/{len(jobs)}, {len(bad)} unreadable', end='', file=sys.stderr,
                      flush=True)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if progress:
        print(file=sys.stderr)
    return bad


def main(argv: list[str] | None = None) -> int:
    from actionjax.config import DictAction
    from actionjax.data import build_dataset
    from actionjax.runtime_config import load_config

    parser = argparse.ArgumentParser(prog='python -m actionjax.tools.check_videos',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--config', required=True, help='config file')
    parser.add_argument('--split', nargs='+', default=['train'], choices=['train', 'val', 'test'],
                        help='splits to check (default: train)')
    parser.add_argument('--num-workers', type=int, default=os.cpu_count() or 1,
                        help='processes decoding in parallel (default: all CPUs)')
    parser.add_argument('--full', action='store_true', help='decode every frame, not just first/middle/last')
    parser.add_argument('--out', help='write the unreadable paths to this file, one per line')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={}, metavar='KEY=VALUE',
                        help='override config values, e.g. data.train.data_prefix=/mnt/k400/train')
    args = parser.parse_args(argv)

    cfg = load_config(args.config, args.cfg_options)
    all_bad = []
    for split in args.split:
        start = time.perf_counter()
        try:
            dataset = build_dataset(cfg, f'data.{split}', test_mode=split != 'train')
        except (FileNotFoundError, KeyError, ValueError) as err:
            print(f'error: {err}', file=sys.stderr)
            return 2
        bad = check_dataset(dataset, args.num_workers, args.full, progress=sys.stderr.isatty())
        for path, reason in bad:
            print(f'{path}\t{reason}')
        print(f'{split}: checked {len(dataset)} samples in {time.perf_counter() - start:.1f} s, '
              f'{len(bad)} unreadable', file=sys.stderr)
        all_bad.extend(bad)
    if args.out:
        with open(args.out, 'w') as f:
            f.writelines(f'{path}\n' for path, _ in all_bad)
    return 1 if all_bad else 0


if __name__ == '__main__':
    sys.exit(main())
