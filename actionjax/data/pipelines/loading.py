"""Frame sampling and decoding: which frames of a video to use, and reading them.

Samplers write ``frame_inds`` (int32, start_index already added), ``clip_len``,
``frame_interval`` and ``num_clips``; decoders turn ``frame_inds`` into ``imgs``.
Unlike MMAction2, ``imgs`` is one uint8 array ``(M, H, W, C)`` (RGB) rather than a
list of ``M`` frames: the augmentations then crop, flip and format whole clips at
once. Transforms also accept a list of frames, as MMAction2's do.

Training-mode samplers draw from ``results['rng']`` (see ``rng.py``), so the
indices differ from MMAction2's global-``np.random`` draws but cover the same
ranges with the same distribution. Test-mode indices are deterministic and equal
MMAction2's (1.2.0 by default; see ``SampleFrames`` for the 0.x option).
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import cv2
import numpy as np

from actionjax.registry import PIPELINES

from .rng import get_rng


class VideoReadError(OSError):
    """A video or frame that cannot be opened or decoded; the message names the file."""


def _handle_out_of_bound(frame_inds: np.ndarray, total_frames: int, option: str) -> np.ndarray:
    """Fold ``(num_clips, clip_len)`` indices past the end back into the video.

    'loop' wraps around (``i % total_frames``); 'repeat_last' repeats, per clip, the
    last index that was still inside the video (0 if none was).
    """
    if option == 'loop':
        return np.mod(frame_inds, total_frames)
    inside = frame_inds < total_frames
    last_inside = np.max(np.where(inside, frame_inds, 0), axis=1)
    return np.where(inside, frame_inds, last_inside[:, None])


@PIPELINES.register_module()
class SampleFrames:
    """Sample ``num_clips`` clips of ``clip_len`` frames, ``frame_interval`` apart.

    Required keys: ``total_frames``, ``start_index``. Added keys: ``frame_inds``,
    ``clip_len``, ``frame_interval``, ``num_clips``.

    Args:
        clip_len: frames per clip (1 for TSN/TSM-style segment sampling).
        frame_interval: step between the frames of a clip.
        num_clips: number of clips (segments).
        temporal_jitter: add a random ``[0, frame_interval)`` offset to each frame.
        twice_sample: in test mode, also sample the clips without the half-interval
            shift (2D) or twice as many clips (3D), as TSM's test recipe does.
        out_of_bound_opt: 'loop' or 'repeat_last' for indices past the last frame.
        test_mode: deterministic, evenly spread clips (val/test pipelines).
        keep_tail_frames: train mode: spread clips with a float interval so the tail
            of the video can be sampled too.
        target_fps: resample as if the video had this frame rate (needs ``avg_fps``).
        test_sampling: which MMAction2 test-mode algorithm to use:

            * ``'1.x'`` (default) MMAction2 1.x: for ``clip_len == 1`` segment
              ``i`` of ``num_clips`` equal segments contributes frame
              ``floor((i + 0.5) * total_frames / num_clips)``. For ``clip_len > 1``
              the first clip starts at frame 0 and the last one ends at the last frame
              (``round(i * (total_frames - span) / (num_clips - 1))`` with
              ``span = (clip_len - 1) * frame_interval + 1``); one clip is centred.
            * ``'0.x'`` MMAction2 0.x: every clip starts at the middle of its own
              segment: ``int((i + 0.5) * (total_frames - clip_len * frame_interval + 1)
              / num_clips)``. Use it to evaluate a checkpoint trained and tested with
              MMAction2 0.x as it was evaluated there. The two agree when
              ``clip_len == 1`` and ``frame_interval == 1``.

    Train-mode sampling is the same in both versions.
    """

    def __init__(self, clip_len: int, frame_interval: int = 1, num_clips: int = 1,
                 temporal_jitter: bool = False, twice_sample: bool = False,
                 out_of_bound_opt: str = 'loop', test_mode: bool = False,
                 keep_tail_frames: bool = False, target_fps: int | None = None,
                 test_sampling: str = '1.x', start_index: Any = None, **kwargs: Any) -> None:
        step = type(self).__name__
        if out_of_bound_opt not in ('loop', 'repeat_last'):
            raise ValueError(f"{step} out_of_bound_opt must be 'loop' or 'repeat_last', "
                             f'got {out_of_bound_opt!r}')
        if test_sampling not in ('1.x', '0.x'):
            raise ValueError(f"{step} test_sampling must be '1.x' (MMAction2 1.x) or '0.x' (MMAction2 0.x), "
                             f'got {test_sampling!r}')
        if start_index is not None:  # 0.x accepted and ignored it, with this warning
            warnings.warn(f'{type(self).__name__}(start_index=...) is ignored: the dataset sets '
                          "results['start_index'] (0 for videos, 1 for rawframes)", stacklevel=2)
        for name, value in (('clip_len', clip_len), ('frame_interval', frame_interval),
                            ('num_clips', num_clips)):
            if int(value) != value or value < 1:
                raise ValueError(f'{type(self).__name__} {name} must be a positive integer, got {value!r}')
        self.clip_len = int(clip_len)
        self.frame_interval = int(frame_interval)
        self.num_clips = int(num_clips)
        self.temporal_jitter = temporal_jitter
        self.twice_sample = twice_sample
        self.out_of_bound_opt = out_of_bound_opt
        self.test_mode = test_mode
        self.keep_tail_frames = keep_tail_frames
        self.target_fps = target_fps
        self.test_sampling = test_sampling

    # -- clip start offsets ------------------------------------------------------------

    def _train_offsets(self, num_frames: int, ori_clip_len: float, rng: np.random.Generator) -> np.ndarray:
        """Random offsets: one per equal part of the video when there is room."""
        n = self.num_clips
        if self.keep_tail_frames:
            avg_interval = (num_frames - ori_clip_len + 1) / float(n)
            if num_frames > ori_clip_len - 1:
                base = np.arange(n) * avg_interval
                return (base + rng.uniform(0, avg_interval, n)).astype(np.int32)
            return np.zeros(n, dtype=np.int32)
        avg_interval = int((num_frames - ori_clip_len + 1) // n)
        if avg_interval > 0:
            return np.arange(n) * avg_interval + rng.integers(avg_interval, size=n)
        if num_frames > max(n, ori_clip_len):
            return np.sort(rng.integers(int(num_frames - ori_clip_len + 1), size=n))
        if avg_interval == 0:
            return np.around(np.arange(n) * ((num_frames - ori_clip_len + 1.0) / n))
        return np.zeros(n, dtype=np.int32)

    def _test_offsets(self, num_frames: int, ori_clip_len: float) -> np.ndarray:
        """MMAction2 1.x's deterministic offsets (float where theirs are float)."""
        if self.clip_len == 1:  # segment-based 2D recognizers
            avg_interval = num_frames / float(self.num_clips)
            base = np.arange(self.num_clips) * avg_interval
            offsets = base + avg_interval / 2.0
            return np.concatenate([offsets, base]) if self.twice_sample else offsets
        max_offset = max(num_frames - ori_clip_len, 0)
        num_clips = self.num_clips * 2 if self.twice_sample else self.num_clips
        if num_clips == 1:
            return np.array([max_offset // 2])
        num_segments = self.num_clips - 1  # 1.x spreads even the doubled clips over num_clips - 1 gaps
        if num_segments == 0:
            raise ValueError('SampleFrames(twice_sample=True, num_clips=1, clip_len>1) divides by zero in '
                             'MMAction2 1.x; use num_clips >= 2 or twice_sample=False')
        if self.target_fps is not None:
            return np.arange(num_clips) * np.floor(max_offset / float(num_segments))
        return np.round(np.arange(num_clips) * (max_offset / float(num_segments)))

    def _test_offsets_0x(self, num_frames: int) -> np.ndarray:
        """MMAction2 0.x's deterministic offsets: the middle of each segment."""
        ori_clip_len = self.clip_len * self.frame_interval
        avg_interval = (num_frames - ori_clip_len + 1) / float(self.num_clips)
        if num_frames > ori_clip_len - 1:
            base = np.arange(self.num_clips) * avg_interval
            offsets = (base + avg_interval / 2.0).astype(np.int64)
            return np.concatenate([offsets, base]) if self.twice_sample else offsets
        return np.zeros(self.num_clips, dtype=np.int64)

    # -- the transform -----------------------------------------------------------------

    def _ori_clip_len(self, fps_scale_ratio: float) -> float:
        """Frames a clip spans in the source video."""
        if self.target_fps is not None:
            return np.maximum(1, self.clip_len * self.frame_interval * fps_scale_ratio)
        if self.test_mode and self.test_sampling == '1.x':
            return (self.clip_len - 1) * self.frame_interval + 1
        return self.clip_len * self.frame_interval

    def __call__(self, results: dict) -> dict:
        total_frames = int(results['total_frames'])
        if total_frames < 1:
            raise VideoReadError(f"{results.get('filename', results.get('frame_dir', 'video'))!r} "
                                 f'has total_frames={total_frames}; nothing to sample')
        fps = results.get('avg_fps')
        fps_scale_ratio = fps / self.target_fps if (self.target_fps is not None and fps) else 1.0
        ori_clip_len = self._ori_clip_len(fps_scale_ratio)
        rng = None if self.test_mode and not self.temporal_jitter else get_rng(results)

        if not self.test_mode:
            offsets = self._train_offsets(total_frames, ori_clip_len, rng)
        elif self.test_sampling == '0.x':
            offsets = self._test_offsets_0x(total_frames)
        else:
            offsets = self._test_offsets(total_frames, ori_clip_len)

        if self.target_fps is not None:
            steps = np.linspace(0, ori_clip_len - 1, self.clip_len).astype(np.int32)
        else:
            steps = np.arange(self.clip_len) * self.frame_interval
        frame_inds = offsets[:, None] + steps[None, :]
        if self.temporal_jitter:
            frame_inds = frame_inds + rng.integers(self.frame_interval, size=frame_inds.shape)
        return self._store(results, frame_inds, total_frames)

    def _store(self, results: dict, frame_inds: np.ndarray, total_frames: int) -> dict:
        """Bound the ``(clips, clip_len)`` indices, shift by start_index and record the sampling."""
        frame_inds = _handle_out_of_bound(frame_inds, total_frames, self.out_of_bound_opt)
        results['frame_inds'] = (frame_inds.reshape(-1) + _start_index(results, self)).astype(np.int32)
        results['clip_len'] = self.clip_len
        results['frame_interval'] = self.frame_interval
        results['num_clips'] = self.num_clips
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(clip_len={self.clip_len}, frame_interval={self.frame_interval}, '
                f'num_clips={self.num_clips}, temporal_jitter={self.temporal_jitter}, '
                f'twice_sample={self.twice_sample}, out_of_bound_opt={self.out_of_bound_opt!r}, '
                f'test_mode={self.test_mode}, test_sampling={self.test_sampling!r})')


def _start_index(results: dict, transform: object) -> int:
    """``results['start_index']`` with an error that says who sets it."""
    try:
        return int(results['start_index'])
    except KeyError:
        raise KeyError(f"{type(transform).__name__} needs results['start_index'] (the dataset sets it: "
                       '0 for videos, 1 for rawframes)') from None


@PIPELINES.register_module()
class DenseSampleFrames(SampleFrames):
    """Clips packed densely into a window of ``sample_range`` frames (I3D/TSM 'dense').

    Train mode picks one random window start; test mode uses
    ``num_sample_positions`` evenly spaced starts, giving
    ``num_sample_positions * num_clips`` clips (``num_clips`` stays as configured, as
    in MMAction2).
    """

    def __init__(self, *args: Any, sample_range: int = 64, num_sample_positions: int = 10,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sample_range = sample_range
        self.num_sample_positions = num_sample_positions

    def __call__(self, results: dict) -> dict:
        total_frames = int(results['total_frames'])
        sample_position = max(1, 1 + total_frames - self.sample_range)
        interval = self.sample_range // self.num_clips
        base = np.arange(self.num_clips) * interval
        rng = get_rng(results) if (not self.test_mode or self.temporal_jitter) else None
        if self.test_mode:
            starts = np.linspace(0, sample_position - 1, num=self.num_sample_positions, dtype=int)
        else:  # MMAction2 draws from [0, sample_position - 1), never the last start
            starts = np.array([0 if sample_position == 1 else rng.integers(0, sample_position - 1)])
        offsets = ((starts[:, None] + base[None, :]) % total_frames).reshape(-1)

        frame_inds = offsets[:, None] + np.arange(self.clip_len)[None, :] * self.frame_interval
        if self.temporal_jitter:
            frame_inds = frame_inds + rng.integers(self.frame_interval, size=frame_inds.shape)
        return self._store(results, frame_inds, total_frames)

    def __repr__(self) -> str:
        return (f'{super().__repr__()[:-1]}, sample_range={self.sample_range}, '
                f'num_sample_positions={self.num_sample_positions})')


@PIPELINES.register_module()
class UniformSample:
    """MMAction2 1.x ``UniformSample``: one frame from each of ``clip_len`` equal segments.

    Train mode draws one frame per segment; test mode takes, for clip ``k`` of
    ``num_clips``, the frame at ``(k + 1) / (num_clips + 1)`` of each segment.
    ``frame_interval`` is set to ``None``.
    """

    def __init__(self, clip_len: int, num_clips: int = 1, test_mode: bool = False) -> None:
        self.clip_len = clip_len
        self.num_clips = num_clips
        self.test_mode = test_mode

    def __call__(self, results: dict) -> dict:
        num_frames = int(results['total_frames'])
        seg_size = float(num_frames - 1) / self.clip_len
        starts = np.round(seg_size * np.arange(self.clip_len)).astype(np.int64)
        if self.test_mode:
            duration = seg_size / (self.num_clips + 1)
            shifts = np.array([int(duration * (k + 1)) for k in range(self.num_clips)])
            inds = (shifts[:, None] + starts[None, :]).reshape(-1)
        else:
            ends = np.round(seg_size * np.arange(1, self.clip_len + 1)).astype(np.int64)
            inds = get_rng(results).integers(starts, ends + 1)
        results['frame_inds'] = (inds + _start_index(results, self)).astype(np.int32)
        results['clip_len'] = self.clip_len
        results['frame_interval'] = None
        results['num_clips'] = self.num_clips
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(clip_len={self.clip_len}, num_clips={self.num_clips}, '
                f'test_mode={self.test_mode})')


@PIPELINES.register_module()
class UniformSampleFrames:
    """``UniformSampleFrames`` (MMAction2 0.x and 1.x, from the pose recipes).

    Each clip takes one frame from each of ``clip_len`` equal segments; short videos
    loop (fewer frames than ``clip_len``) or insert single-frame steps (fewer than
    ``2 * clip_len``). Test mode is made repeatable the way MMAction2 makes it: by
    drawing from a generator seeded with ``seed`` for every video, so the indices
    equal MMAction2's exactly (a private ``RandomState``; the global one is untouched).
    A missing ``start_index`` counts as 0, as in MMAction2.
    """

    def __init__(self, clip_len: int, num_clips: int = 1, test_mode: bool = False, seed: int = 255) -> None:
        self.clip_len = clip_len
        self.num_clips = num_clips
        self.test_mode = test_mode
        self.seed = seed

    def _clip(self, num_frames: int, clip_idx: int, randint: Any, choice: Any) -> np.ndarray:
        clip_len = self.clip_len
        if num_frames < clip_len:
            if self.test_mode:
                start = clip_idx if num_frames < self.num_clips else clip_idx * num_frames // self.num_clips
            else:
                start = randint(0, num_frames)
            return np.arange(start, start + clip_len)
        if num_frames < 2 * clip_len:  # insert the spare frames as single steps
            steps = np.zeros(clip_len + 1, dtype=np.int64)
            steps[choice(clip_len + 1, num_frames - clip_len, replace=False)] = 1
            return np.arange(clip_len) + np.cumsum(steps)[:-1]
        bounds = np.array([i * num_frames // clip_len for i in range(clip_len + 1)])
        return bounds[:-1] + randint(np.diff(bounds))

    def __call__(self, results: dict) -> dict:
        num_frames = int(results['total_frames'])
        if self.test_mode:
            state = np.random.RandomState(self.seed)
            randint, choice = state.randint, state.choice
        else:
            rng = get_rng(results)
            randint = lambda low, high=None: rng.integers(low, high)  # RandomState.randint's signature
            choice = rng.choice
        inds = np.concatenate([self._clip(num_frames, k, randint, choice) for k in range(self.num_clips)])
        inds = np.mod(inds, num_frames) + int(results.get('start_index', 0))
        results['frame_inds'] = inds.astype(np.int32)
        results['clip_len'] = self.clip_len
        results['frame_interval'] = None
        results['num_clips'] = self.num_clips
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(clip_len={self.clip_len}, num_clips={self.num_clips}, '
                f'test_mode={self.test_mode}, seed={self.seed})')


def video_filename(name: Any) -> str:
    """``name`` as a path, with ``.mp4`` appended when it has no extension (MMAction2's convention)."""
    filename = str(name)
    return filename + '.mp4' if os.path.splitext(filename)[0] == filename else filename


def _existing_video(results: dict) -> str:
    """The video file of ``results['filename']``; a missing one raises ``VideoReadError``."""
    filename = video_filename(results['filename'])
    if not os.path.isfile(filename):
        raise VideoReadError(f'video file not found: {filename!r}')
    return filename


def _flat_frame_inds(results: dict) -> np.ndarray:
    """``results['frame_inds']`` as one flat array (the clips one after another), stored back."""
    frame_inds = np.asarray(results['frame_inds']).reshape(-1)
    results['frame_inds'] = frame_inds
    return frame_inds


def _store_frames(results: dict, imgs: np.ndarray) -> dict:
    """Put decoded ``(M, H, W, C)`` frames into ``results`` with their shape keys."""
    results['imgs'] = imgs
    results['original_shape'] = imgs.shape[1:3]
    results['img_shape'] = imgs.shape[1:3]
    return results


def _check_disk_backend(transform: str, io_backend: str) -> None:
    if io_backend != 'disk':
        raise ValueError(f"{transform}(io_backend={io_backend!r}): only 'disk' is supported; mount remote "
                         "storage locally and use io_backend='disk'")


@PIPELINES.register_module()
class DecordInit:
    """Open ``results['filename']`` with decord.

    Added keys: ``video_reader``, ``total_frames``, ``avg_fps``. A name without an
    extension gets ``.mp4`` appended, as in MMAction2. The file is opened by path
    (MMAction2 reads it into memory first), which lets decord seek in the file.
    A missing or unreadable file raises ``VideoReadError`` (an ``OSError``).

    Args:
        io_backend: only ``'disk'``.
        num_threads: decoder threads per video (MMAction2's default 1 suits one
            video per worker process).
    """

    def __init__(self, io_backend: str = 'disk', num_threads: int = 1, **kwargs: Any) -> None:
        _check_disk_backend('DecordInit', io_backend)
        self.io_backend = io_backend
        self.num_threads = num_threads
        self.kwargs = kwargs

    def __call__(self, results: dict) -> dict:
        import decord  # imported lazily: decord starts threads, workers should import it themselves

        filename = _existing_video(results)
        try:
            reader = decord.VideoReader(filename, num_threads=self.num_threads)
        except Exception as err:  # decord raises its own DECORDError/RuntimeError
            raise VideoReadError(f'cannot open video {filename!r}: {err}') from err
        results['video_reader'] = reader
        results['total_frames'] = len(reader)
        results['avg_fps'] = reader.get_avg_fps()
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(io_backend={self.io_backend!r}, num_threads={self.num_threads})'


@PIPELINES.register_module()
class DecordDecode:
    """Decode ``frame_inds`` from ``video_reader`` into ``imgs`` (uint8 RGB ``(M, H, W, 3)``).

    Added keys: ``imgs``, ``original_shape``, ``img_shape``; ``video_reader`` is
    set to ``None`` (the reader is closed). A decoding failure (e.g. a truncated
    file) raises ``VideoReadError`` naming the file.

    Args:
        mode: 'accurate' decodes the exact frames; 'efficient' seeks to each index
            and takes the frame found there (a key frame), which is faster on long
            videos but may repeat frames, as in MMAction2.
    """

    def __init__(self, mode: str = 'accurate') -> None:
        if mode not in ('accurate', 'efficient'):
            raise ValueError(f"DecordDecode mode must be 'accurate' or 'efficient', got {mode!r}")
        self.mode = mode

    def _load(self, reader: Any, frame_inds: np.ndarray) -> np.ndarray:
        if self.mode == 'accurate':
            return reader.get_batch(frame_inds).asnumpy()
        reader.seek(0)
        frames = []
        for idx in frame_inds:
            reader.seek(int(idx))
            frames.append(reader.next().asnumpy())
        return np.stack(frames)

    def __call__(self, results: dict) -> dict:
        reader = results['video_reader']
        frame_inds = _flat_frame_inds(results)
        try:
            imgs = self._load(reader, frame_inds)
        except Exception as err:
            raise VideoReadError(f"cannot decode frames {frame_inds.tolist()} of "
                                 f"{results.get('filename', 'video')!r}: {err}") from err
        finally:
            results['video_reader'] = None
        return _store_frames(results, imgs)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(mode={self.mode!r})'


@PIPELINES.register_module()
class RawFrameDecode:
    """Read frames ``frame_dir/filename_tmpl.format(i)`` with OpenCV.

    Required keys: ``frame_dir``, ``filename_tmpl``, ``frame_inds``, ``modality``
    (``offset`` optional). Added keys: ``imgs``, ``original_shape``, ``img_shape``.
    RGB frames come out as uint8 RGB ``(M, H, W, 3)``; 'Flow' reads the x and y
    grayscale images (``filename_tmpl.format('x', i)``) into ``(M, H, W, 2)``.
    A repeated index is read once. A missing or unreadable image raises
    ``VideoReadError``.

    Args:
        io_backend: only ``'disk'``.
        decoding_backend: only ``'cv2'`` (MMAction2's default).
    """

    def __init__(self, io_backend: str = 'disk', decoding_backend: str = 'cv2', **kwargs: Any) -> None:
        _check_disk_backend('RawFrameDecode', io_backend)
        if decoding_backend != 'cv2':
            raise ValueError(f"RawFrameDecode(decoding_backend={decoding_backend!r}): only 'cv2' is "
                             'supported; remove the argument')
        self.io_backend = io_backend
        self.decoding_backend = decoding_backend
        self.kwargs = kwargs

    @staticmethod
    def _imread(path: str, flag: int) -> np.ndarray:
        img = cv2.imread(path, flag)
        if img is None:
            problem = 'unreadable image' if os.path.isfile(path) else 'frame not found'
            raise VideoReadError(f'{problem}: {path!r}')
        return img

    def __call__(self, results: dict) -> dict:
        directory = results['frame_dir']
        tmpl = results['filename_tmpl']
        modality = results.get('modality', 'RGB')
        offset = int(results.get('offset', 0))
        unique, inverse = np.unique(_flat_frame_inds(results), return_inverse=True)
        frames = []
        for idx in (unique + offset).tolist():
            if modality == 'RGB':
                bgr = self._imread(os.path.join(directory, tmpl.format(idx)), cv2.IMREAD_COLOR)
                frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            elif modality == 'Flow':
                x = self._imread(os.path.join(directory, tmpl.format('x', idx)), cv2.IMREAD_GRAYSCALE)
                y = self._imread(os.path.join(directory, tmpl.format('y', idx)), cv2.IMREAD_GRAYSCALE)
                frames.append(np.stack([x, y], axis=-1))
            else:
                raise ValueError(f"RawFrameDecode: modality must be 'RGB' or 'Flow', got {modality!r}")
        return _store_frames(results, np.stack(frames)[inverse.reshape(-1)])

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(io_backend={self.io_backend!r}, '
                f'decoding_backend={self.decoding_backend!r})')
