"""Segment consensus: how the per-segment outputs of a 2D network become one per video."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax


@dataclasses.dataclass(frozen=True)
class AvgConsensus:
    """Mean over the segment axis ``dim`` (1 for ``(N, num_segs, ...)``), keeping it."""

    dim: int = 1

    def __call__(self, x: jax.Array) -> jax.Array:
        return x.mean(axis=self.dim, keepdims=True)


def build_consensus(cfg: Mapping[str, Any], key_path: str = 'cls_head.consensus') -> AvgConsensus:
    """The consensus of a head config; MMAction2's heads only implement ``AvgConsensus``."""
    args = dict(cfg)
    kind = args.pop('type', None)
    if kind != 'AvgConsensus':
        raise ValueError(f"{key_path}.type must be 'AvgConsensus' (the only consensus MMAction2's "
                         f'TSN/TSM heads implement), got {kind!r}')
    if args.get('dim', 1) != 1:
        raise ValueError(f'{key_path}.dim must be 1 (the segment axis), got {args["dim"]}')
    return AvgConsensus(**args)
