"""Video decoding with PyAV: the frames decord gives, for about half the CPU.

``DecordDecode`` spends most of a TSN sample's time inside decord, and decord spends
much of that on per-frame overhead (it converts and hands over every frame it
decodes, skipped ones included). ``PyAVInit`` reads the packet index of the video
once (pts and key flags, no decoding); ``PyAVDecode`` then feeds the decoder from the
key frame before each wanted frame, skips the non-reference frames (most B-frames)
it does not need, converts only the wanted frames to RGB, and never decodes a frame
twice for sorted indices.

Frame ``i`` is the ``i``-th frame in presentation order, as in MMAction2's
``PyAVDecode(mode='accurate')`` (which decodes from the start every time) and in
decord; the RGB conversion is FFmpeg's, as in both. Decoded frames equal
``DecordDecode``'s on streams without B-frames (the tests check MMAction2's
``DecordDecode`` golden frames; the data benchmark checks its files). On streams
with B-frames decord's accurate seek returns a wrong frame for the few frames
around each key frame (its key frame list is in decode order); this decoder returns
the frame a sequential decode gives.
"""

from __future__ import annotations

import bisect
from typing import Any

import numpy as np

from actionjax.registry import PIPELINES

from .loading import VideoReadError, _check_disk_backend, _existing_video, _flat_frame_inds, _store_frames


class IndexedVideo:
    """A video file with its packet index: frame count, fps and random access by frame index.

    The compressed packets stay in memory until ``close`` (the file's size, a few MB for
    a Kinetics clip), so decoding never depends on the demuxer's seeking. For hour-long
    untrimmed videos, rawframes or ``DecordInit`` keep memory lower.
    """

    def __init__(self, path: str) -> None:
        import av  # imported lazily, in the worker that decodes

        self.path = path
        self.container = av.open(path)
        try:
            self.stream = self.container.streams.video[0]
        except IndexError:
            self.container.close()
            raise VideoReadError(f'{path!r} has no video stream') from None
        self.stream.thread_type = 'NONE'  # one video per worker process: threads only add overhead
        self.packets = [p for p in self.container.demux(self.stream) if p.size]  # decode order
        if any(p.pts is None for p in self.packets):
            self.close()
            raise VideoReadError(f'{path!r}: packets without timestamps cannot be indexed; '
                                 'decode it with DecordInit/DecordDecode')
        self.frame_pts = sorted(p.pts for p in self.packets)  # presentation order
        keys = sorted((p.pts, pos) for pos, p in enumerate(self.packets) if p.is_keyframe)
        self.key_pts = [pts for pts, _ in keys] or [self.frame_pts[0] if self.packets else 0]
        self.key_pos = [pos for _, pos in keys] or [0]

    def __len__(self) -> int:
        return len(self.packets)

    @property
    def avg_fps(self) -> float:
        rate = self.stream.average_rate or self.stream.guessed_rate
        return float(rate) if rate else 30.0

    def _last_key(self, pts: int) -> int:
        """Position in ``key_pts``/``key_pos`` of the last key frame at or before ``pts``."""
        return max(bisect.bisect_right(self.key_pts, pts) - 1, 0)

    def key_frame_before(self, index: int) -> int:
        """Index of the last key frame at or before frame ``index``."""
        pts = self.key_pts[self._last_key(self.frame_pts[index])]
        return bisect.bisect_left(self.frame_pts, pts)

    def read(self, frame_inds: np.ndarray, skip_unused: bool = True) -> np.ndarray:
        """Frames ``frame_inds`` as uint8 RGB ``(M, H, W, 3)``, in the order asked.

        With ``skip_unused`` the decoder drops the non-reference frames (most B-frames)
        that are not wanted: no other frame depends on them, and a frame is coded in
        the packet with its own pts, so the decision can be made per packet. It needs
        the single-threaded decoder (a frame-threaded one applies it late).
        """
        from av.video.reformatter import VideoReformatter

        wanted: dict[int, list[int]] = {}
        for j, index in enumerate(frame_inds.tolist()):
            wanted.setdefault(self.frame_pts[index], []).append(j)
        out: list[np.ndarray | None] = [None] * len(frame_inds)
        decoder, to_rgb = self.stream.codec_context, VideoReformatter()
        decoder.skip_frame = 'DEFAULT'
        next_packet = -1  # each read starts at a key frame, after a flush (also after a drain at the end)
        for target in sorted(wanted):
            if out[wanted[target][0]] is not None:
                continue
            start = self.key_pos[self._last_key(target)]
            if start > next_packet:  # a key frame lies between here and the target: jump to it
                decoder.flush_buffers()
                next_packet = start
            while out[wanted[target][0]] is None:
                if next_packet > len(self.packets):
                    raise VideoReadError(f'{self.path!r}: the decoder never produced frame pts={target}')
                packet = self.packets[next_packet] if next_packet < len(self.packets) else None
                next_packet += 1
                if skip_unused and packet is not None:
                    slots = wanted.get(packet.pts)
                    decoder.skip_frame = 'DEFAULT' if slots and out[slots[0]] is None else 'NONREF'
                for frame in decoder.decode(packet):  # None drains the decoder at the end
                    slots = wanted.get(frame.pts)
                    if slots is not None and out[slots[0]] is None:
                        rgb = to_rgb.reformat(frame, format='rgb24').to_ndarray()
                        for j in slots:
                            out[j] = rgb
        return np.stack(out)

    def read_key_frames(self, frame_inds: np.ndarray) -> np.ndarray:
        """For each index, the key frame at or before it (MMAction2's 'efficient' mode)."""
        keys = np.array([self.key_frame_before(i) for i in frame_inds.tolist()], dtype=np.int64)
        return self.read(keys)

    def close(self) -> None:
        self.container.close()


@PIPELINES.register_module()
class PyAVInit:
    """Open ``results['filename']`` with PyAV and index its packets.

    Added keys: ``video_reader`` (an ``IndexedVideo``), ``total_frames`` (frames in
    the index, as decord counts them; MMAction2 reads the container's frame count,
    the same number for mp4) and ``avg_fps``. A missing or unreadable file raises
    ``VideoReadError``.

    Args:
        io_backend: only ``'disk'``.
    """

    def __init__(self, io_backend: str = 'disk', **kwargs: Any) -> None:
        _check_disk_backend('PyAVInit', io_backend)
        self.io_backend = io_backend
        self.kwargs = kwargs

    def __call__(self, results: dict) -> dict:
        filename = _existing_video(results)
        try:
            video = IndexedVideo(filename)
        except VideoReadError:
            raise
        except Exception as err:  # av.error.* for unreadable containers
            raise VideoReadError(f'cannot open video {filename!r}: {err}') from err
        if len(video) == 0:
            video.close()
            raise VideoReadError(f'video {filename!r} has no frames')
        results['video_reader'] = video
        results['total_frames'] = len(video)
        results['avg_fps'] = video.avg_fps
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(io_backend={self.io_backend!r})'


@PIPELINES.register_module()
class PyAVDecode:
    """Decode ``frame_inds`` from the ``PyAVInit`` reader into ``imgs`` (uint8 RGB ``(M, H, W, 3)``).

    Added keys: ``imgs``, ``original_shape``, ``img_shape``; ``video_reader`` is
    closed and set to ``None``. A decoding failure raises ``VideoReadError``.

    Args:
        multi_thread: decode with FFmpeg's threads (for one video per process; the
            loader's workers already keep every core busy).
        mode: 'accurate' decodes the exact frames; 'efficient' returns, for each
            index, the key frame at or before it (faster on long videos, frames may
            repeat). MMAction2's PyAV 'efficient' mode returns the same frames on
            streams without B-frames; with B-frames it returns whichever frame the
            decoder emits first after its seek.
    """

    def __init__(self, multi_thread: bool = False, mode: str = 'accurate') -> None:
        if mode not in ('accurate', 'efficient'):
            raise ValueError(f"PyAVDecode mode must be 'accurate' or 'efficient', got {mode!r}")
        self.multi_thread = multi_thread
        self.mode = mode

    def __call__(self, results: dict) -> dict:
        video = results['video_reader']
        if not isinstance(video, IndexedVideo):
            raise TypeError("PyAVDecode needs results['video_reader'] from PyAVInit, got "
                            f'{type(video).__name__}; put PyAVInit before it in the pipeline')
        frame_inds = _flat_frame_inds(results)
        if self.multi_thread:
            video.stream.thread_type = 'AUTO'
        try:
            if self.mode == 'accurate':
                imgs = video.read(frame_inds, skip_unused=not self.multi_thread)
            else:
                imgs = video.read_key_frames(frame_inds)
        except VideoReadError:
            raise
        except Exception as err:
            raise VideoReadError(f'cannot decode frames {frame_inds.tolist()} of {video.path!r}: '
                                 f'{err}') from err
        finally:
            video.close()
            results['video_reader'] = None
        return _store_frames(results, imgs)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(multi_thread={self.multi_thread}, mode={self.mode!r})'
