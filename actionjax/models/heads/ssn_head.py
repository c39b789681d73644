"""SSN's head (Zhao et al., ICCV 2017), as MMAction2 0.24.1's ``SSNHead``, ``STPPTrain``, ``STPPTest``.

A proposal is seen as three stages, starting / course / ending, of ``num_segments_list``
frame features each (``(2, 5, 2)``). Structured temporal pyramid pooling (STPP) averages
every stage over the parts of its pyramid (``stpp_stage``: ``1`` is one part, ``(1, 2)``
the whole stage plus its two halves), divides by the stage's number of parts and scales
the starting / ending parts by how much of them lies inside the video. From the course
features ``activity_fc`` scores ``num_classes + 1`` activities (0: background), from the
STPP features ``completeness_fc`` scores the completeness of each class and
``regressor_fc`` the (centre, span) correction of each class.

Testing scores every frame once (``test_scores``: the three fcs rearranged so that each
STPP part is a block of outputs, MMAction2's ``prepare_test_fc``) and pools those scores
over each proposal's ticks on the host (``stpp_test_pool``, numpy).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.core import FrozenDict

from actionjax.registry import HEADS

CONSENSUS_TYPES = ('STPPTrain', 'STPPTest')


def stage_parts(stage: int | Sequence[int]) -> tuple[int, ...]:
    """``1`` -> ``(1,)``; ``(1, 2)`` stays: the pyramid levels (parts per level) of a stage."""
    if isinstance(stage, int):
        return (stage,)
    if isinstance(stage, (tuple, list)) and all(isinstance(p, int) for p in stage):
        return tuple(stage)
    raise ValueError(f'cls_head.consensus.stpp_stage entries must be ints or tuples of ints, got {stage!r}')


def part_ticks(length: int, parts: int) -> list[int]:
    """Boundaries of ``parts`` equal parts of ``length`` frames, truncated (torch's ``arange(...).int()``)."""
    return [int(np.float32(i * (length / parts))) for i in range(parts + 1)]


def stpp_train(x: jax.Array, scale_factors: jax.Array, stpp_stage: Sequence[Any],
               num_segments_list: Sequence[int]) -> tuple[jax.Array, jax.Array]:
    """``STPPTrain``: ``(R * S, C)`` frame features -> ``(course (R, C), stpp (R, parts * C))``.

    ``S = sum(num_segments_list)`` frames per proposal; ``scale_factors`` ``(R, 2)`` scale
    the starting and ending stages.
    """
    starting, course, ending = num_segments_list
    x = x.reshape(-1, starting + course + ending, x.shape[-1])
    bounds = (0, starting, starting + course, starting + course + ending)
    scales = (scale_factors[:, 0:1], None, scale_factors[:, 1:2])
    feats = []
    for stage, scale, lo, hi in zip(stpp_stage, scales, bounds[:-1], bounds[1:], strict=True):
        levels = stage_parts(stage)
        multiplier = sum(levels)
        stage_feat = x[:, lo:hi]
        for parts in levels:
            ticks = part_ticks(hi - lo, parts)
            for i in range(parts):
                part = stage_feat[:, ticks[i]:ticks[i + 1]].mean(axis=1) / multiplier
                feats.append(part if scale is None else part * scale)
    return x[:, bounds[1]:bounds[2]].mean(axis=1), jnp.concatenate(feats, axis=1)


def _arange_int(start: float, stop: float, step: float) -> np.ndarray:
    """torch's ``arange(start, stop, step).int()`` on floats: ``float32(start + i * step)``, truncated."""
    count = int(np.ceil((stop - start) / step))
    return (np.float64(start) + step * np.arange(count)).astype(np.float32).astype(np.int32)


def stpp_test_pool(scores: np.ndarray, proposal_ticks: np.ndarray, scale_factors: np.ndarray,
                   num_classes: int, stpp_stage: Sequence[Any], use_regression: bool = True
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``STPPTest``: per-frame test scores ``(F, D)`` -> per-proposal activity, completeness, regression.

    ``proposal_ticks`` ``(P, 4)``: the frame indices where each proposal's starting, course
    and ending stages begin, and where the ending stage ends; ``scale_factors`` ``(P, 2)``.
    Activity scores average the course frames; completeness and regression scores add up
    each stage part's mean of its own block of the test scores (scaled for the starting /
    ending stage). MMAction2's loop, in numpy, with its arithmetic (float32 sums).
    """
    scores = np.asarray(scores, np.float32)
    stages = tuple(stage_parts(s) for s in stpp_stage)
    multipliers = sum(sum(levels) for levels in stages)
    activity_len, complete_len, reg_len = num_classes + 1, num_classes, 2 * num_classes
    complete = scores[:, activity_len:activity_len + complete_len * multipliers]
    reg = scores[:, activity_len + complete_len * multipliers:] if use_regression else None
    num = len(proposal_ticks)
    out_activity = np.zeros((num, activity_len), np.float32)
    out_complete = np.zeros((num, complete_len), np.float32)
    out_reg = np.zeros((num, reg_len), np.float32) if use_regression else None
    for i, ticks in enumerate(np.asarray(proposal_ticks, np.int64)):
        out_activity[i] = scores[ticks[1]:max(ticks[1] + 1, ticks[2]), :activity_len].mean(axis=0)
        for raw, out, length in ((complete, out_complete, complete_len), (reg, out_reg, reg_len)):
            if raw is None:
                continue
            offset = 0
            for stage_index, levels in enumerate(stages):
                scale = (scale_factors[i][0] if stage_index == 0 else
                         scale_factors[i][1] if stage_index == len(stages) - 1 else 1.0)
                left = int(ticks[stage_index])
                right = float(max(ticks[stage_index] + 1, ticks[stage_index + 1]))
                if right <= 0 or left >= len(raw):
                    offset += sum(levels)
                    continue
                for parts in levels:
                    bounds = _arange_int(left, right + 1e-5, (right - left) / parts)
                    for j in range(parts):
                        if bounds[j + 1] - bounds[j] >= 1:
                            block = raw[bounds[j]:bounds[j + 1], offset * length:(offset + 1) * length]
                            # a part past the last frame averages nothing: NaN, as in MMAction2
                            mean = block.mean(axis=0) if len(block) else np.full(length, np.nan, np.float32)
                            out[i] += mean * np.float32(scale)
                        offset += 1
    return out_activity, out_complete, out_reg


@HEADS.register_module()
class SSNHead(nn.Module):
    """Arguments as MMAction2 0.24.1's ``SSNHead``.

    ``consensus`` is ``dict(type='STPPTrain', stpp_stage=..., num_segments_list=...)`` or
    ``dict(type='STPPTest', stpp_stage=...)``: the STPP layout; this head trains (``__call__``)
    and tests (``test_scores`` + ``stpp_test_pool``) with either, where MMAction2 builds one
    head per mode. ``__call__(x (R * S, in_channels), scale_factors (R, 2))`` ->
    ``(activity (R, K + 1), completeness (R, K), bbox_pred (R, K, 2) or None)``.
    """

    dropout_ratio: float = 0.8
    in_channels: int = 1024
    num_classes: int = 20
    consensus: Mapping[str, Any] = FrozenDict(type='STPPTrain', stpp_stage=(1, (1, 2), 1),
                                              num_segments_list=(2, 5, 2))
    use_regression: bool = True
    init_std: float = 0.001

    def __post_init__(self) -> None:
        kind = self.consensus.get('type')
        if kind not in CONSENSUS_TYPES:
            raise ValueError(f'cls_head.consensus.type must be one of {CONSENSUS_TYPES}, got {kind!r}')
        for stage in self.stpp_stage:
            stage_parts(stage)
        super().__post_init__()

    @property
    def stpp_stage(self) -> tuple[Any, ...]:
        return tuple(self.consensus.get('stpp_stage', (1, (1, 2), 1)))

    @property
    def num_multipliers(self) -> int:
        """STPP parts over all stages (MMAction2's ``consensus.num_multipliers``)."""
        return sum(sum(stage_parts(stage)) for stage in self.stpp_stage)

    def setup(self) -> None:
        dense = dict(kernel_init=nn.initializers.normal(self.init_std), bias_init=nn.initializers.zeros)
        self.activity_fc = nn.Dense(self.num_classes + 1, **dense)
        self.completeness_fc = nn.Dense(self.num_classes, **dense)
        if self.use_regression:
            self.regressor_fc = nn.Dense(2 * self.num_classes, **dense)
        self.dropout = nn.Dropout(self.dropout_ratio)

    def __call__(self, x: jax.Array, scale_factors: jax.Array, train: bool = False
                 ) -> tuple[jax.Array, jax.Array, jax.Array | None]:
        segments = tuple(self.consensus.get('num_segments_list', (2, 5, 2)))
        course, stpp = stpp_train(x, scale_factors, self.stpp_stage, segments)
        if self.dropout_ratio != 0:
            course = self.dropout(course, deterministic=not train)
            stpp = self.dropout(stpp, deterministic=not train)
        activity = self.activity_fc(course)
        completeness = self.completeness_fc(stpp)
        bbox = self.regressor_fc(stpp).reshape(-1, self.num_classes, 2) if self.use_regression else None
        return activity, completeness, bbox

    def test_scores(self, x: jax.Array) -> jax.Array:
        """Every frame's scores for every STPP part at once: ``(F, C)`` -> ``(F, D)``.

        Columns: the ``K + 1`` activity scores, then for each part ``m`` the completeness
        scores that its features would add (``x @ W_m + b / parts``), then the same for
        regression: MMAction2's ``test_fc``.
        """
        columns = [self.activity_fc(x)]
        fcs = [self.completeness_fc] + ([self.regressor_fc] if self.use_regression else [])
        parts = self.num_multipliers
        for fc in fcs:
            fc(jnp.zeros((1, parts * x.shape[-1]), x.dtype))  # creates the parameters when initialising
            kernel, bias = fc.variables['params']['kernel'], fc.variables['params']['bias']
            per_part = jnp.einsum('fc,mck->fmk', x, kernel.reshape(parts, x.shape[-1], -1)) + bias / parts
            columns.append(per_part.reshape(x.shape[0], -1))
        return jnp.concatenate(columns, axis=1)
