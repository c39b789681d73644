"""``SampleProposalFrames``: SSN's frame sampling, MMAction2 0.24.1's transform of that name.

Training and validation sample, for every proposal of ``results['out_proposals']``
(``SSNDataset``), ``aug_segments[0]`` frames in the starting stage before it (up to
``aug_ratio[0]`` of its length, inside the video), ``body_segments`` in the proposal and
``aug_segments[1]`` in the ending stage after it: each stage is cut into equal segments
and one frame taken per segment, at a random place (train, from ``results['rng']``) or in
the middle (val). Testing takes every ``test_interval``-th frame of the video. ``clip_len``
consecutive frames (``frame_interval`` apart) are read at each place.

Added keys: ``frame_inds`` (``start_index`` added), ``clip_len``, ``frame_interval``,
``num_clips`` (segments per proposal) and, for train / val, ``num_proposals``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from actionjax.registry import PIPELINES

from .rng import get_rng

MODES = ('train', 'val', 'test')


@PIPELINES.register_module()
class SampleProposalFrames:
    """See the module docstring; arguments as MMAction2 0.24.1."""

    def __init__(self, clip_len: int, body_segments: int, aug_segments: Sequence[int],
                 aug_ratio: float | Sequence[float], frame_interval: int = 1, test_interval: int = 6,
                 temporal_jitter: bool = False, mode: str = 'train') -> None:
        if mode not in MODES:
            raise ValueError(f'SampleProposalFrames mode must be one of {MODES}, got {mode!r}')
        self.clip_len = clip_len
        self.body_segments = body_segments
        self.aug_segments = tuple(aug_segments)
        self.aug_ratio = (aug_ratio, aug_ratio) if isinstance(aug_ratio, (int, float)) else tuple(aug_ratio)
        if len(self.aug_ratio) != 2 or len(self.aug_segments) != 2:
            raise ValueError('SampleProposalFrames aug_ratio and aug_segments need a value for the starting '
                             f'and one for the ending stage, got {aug_ratio!r} and {aug_segments!r}')
        self.frame_interval = frame_interval
        self.test_interval = test_interval
        self.temporal_jitter = temporal_jitter
        self.mode = mode

    @staticmethod
    def train_offsets(valid_length: int, num_segments: int, rng: np.random.Generator) -> np.ndarray:
        """One random frame in each of ``num_segments`` equal segments of ``valid_length + 1`` frames."""
        interval = (valid_length + 1) // num_segments
        if interval <= 0:
            return np.zeros(num_segments, int)
        return np.arange(num_segments) * interval + rng.integers(interval, size=num_segments)

    @staticmethod
    def val_offsets(valid_length: int, num_segments: int) -> np.ndarray:
        """The middle frame of each of ``num_segments`` equal segments of ``valid_length`` frames."""
        if valid_length < num_segments:
            return np.zeros(num_segments, int)
        interval = valid_length / float(num_segments)
        return (np.arange(num_segments) * interval + interval / 2.0).astype(int)

    def proposal_offsets(self, proposal: Any, num_frames: int, rng: np.random.Generator) -> np.ndarray:
        """The starting, course and ending frames of one proposal (``[start_frame, end_frame)``)."""
        start, end = proposal.start_frame, proposal.end_frame
        clip = self.clip_len * self.frame_interval
        duration = end - start
        if duration == 0:
            raise ValueError(f'SampleProposalFrames: an empty proposal [{start}, {end})')
        valid_start = max(0, start - int(duration * self.aug_ratio[0]))
        valid_end = min(num_frames - clip + 1, end - 1 + int(duration * self.aug_ratio[1]))
        lengths = (start - valid_start - clip, duration - clip, (valid_end - end + 1) - clip)
        counts = (self.aug_segments[0], self.body_segments, self.aug_segments[1])
        if self.mode == 'train':
            stages = [self.train_offsets(n, k, rng) for n, k in zip(lengths, counts, strict=True)]
        else:
            stages = [self.val_offsets(n, k) for n, k in zip(lengths, counts, strict=True)]
        return np.concatenate([stages[0] + valid_start, stages[1] + start, stages[2] + end])

    def __call__(self, results: dict) -> dict:
        num_frames = results['total_frames']
        rng = get_rng(results)
        if self.mode == 'test':
            offsets = np.arange(0, num_frames - self.clip_len * self.frame_interval, self.test_interval)
        else:
            proposals = results['out_proposals']  # [((video_id, SSNInstance), type), ...]
            offsets = np.concatenate([np.zeros(0)] + [self.proposal_offsets(p[0][1], num_frames, rng)
                                                      for p in proposals])
        inds = (offsets[:, None] + np.arange(self.clip_len)[None, :] * self.frame_interval).reshape(-1)
        if self.temporal_jitter:
            inds = inds + rng.integers(self.frame_interval, size=len(inds))
        results['frame_inds'] = (np.mod(inds, num_frames) + results['start_index']).astype(np.int32)
        results['clip_len'] = self.clip_len
        results['frame_interval'] = self.frame_interval
        results['num_clips'] = self.body_segments + sum(self.aug_segments)
        if self.mode != 'test':
            results['num_proposals'] = len(results['out_proposals'])
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(clip_len={self.clip_len}, body_segments={self.body_segments}, '
                f'aug_segments={self.aug_segments}, aug_ratio={self.aug_ratio}, '
                f'frame_interval={self.frame_interval}, test_interval={self.test_interval}, '
                f'temporal_jitter={self.temporal_jitter}, mode={self.mode!r})')
