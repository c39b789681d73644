"""ResNet with temporal shift (TSM), MMAction2's ``ResNetTSM``.

The frames of a video are stacked on the batch axis, ``(N * num_segments, H, W, C)``.
The temporal shift moves a fraction of the channels one frame along time, so a 2D
network mixes information between neighbouring frames at zero FLOPs:

* channels ``[0, fold)`` move backward in time: frame t receives frame t + 1 (the last
  frame receives zeros);
* channels ``[fold, 2 * fold)`` move forward: frame t receives frame t - 1 (the first
  frame receives zeros);
* the other channels stay; ``fold = C // shift_div``.

Names follow MMAction2's wrapping: ``shift_place='blockres'`` shifts the input of each
block's first conv (``layer1.0.conv1.conv.net.weight``), ``'block'`` shifts the input
of the whole block (``layer1.0.net.conv1.conv.weight``), and ``temporal_pool`` wraps
``layer2`` in a temporal max-pool (``layer2.net.0...``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.core import FrozenDict

from actionjax.models.backbones.resnet import ResLayer, ResNet
from actionjax.models.common.pooling import max_pool
from actionjax.registry import BACKBONES


def temporal_shift(x: jax.Array, num_segments: int, shift_div: int) -> jax.Array:
    """Shift ``1/shift_div`` of the channels back and ``1/shift_div`` forward in time."""
    nt, h, w, c = x.shape
    x = x.reshape(-1, num_segments, h, w, c)
    fold = c // shift_div
    no_pad = ((0, 0),) * 3
    backward = jnp.pad(x[:, 1:, ..., :fold], ((0, 0), (0, 1), *no_pad))  # t <- t + 1
    forward = jnp.pad(x[:, :-1, ..., fold:2 * fold], ((0, 0), (1, 0), *no_pad))  # t <- t - 1
    out = jnp.concatenate([backward, forward, x[..., 2 * fold:]], axis=-1)
    return out.reshape(nt, h, w, c)


class TemporalShift(nn.Module):
    """Shift the input in time, then apply ``net`` (named ``net``, as in MMAction2)."""

    net: nn.Module
    num_segments: int = 3
    shift_div: int = 8

    def __call__(self, x: jax.Array, *args: Any, **kwargs: Any) -> jax.Array:
        if x.shape[0] % self.num_segments:
            raise ValueError(f'TemporalShift: {x.shape[0]} frames are not a multiple of '
                             f'num_segments={self.num_segments}; feed (N, num_segments, H, W, C) clips')
        return self.net(temporal_shift(x, self.num_segments, self.shift_div), *args, **kwargs)


class TemporalPool(nn.Module):
    """Max-pool over time (kernel 3, stride 2, padding 1), then apply ``net``; halves the frames."""

    net: nn.Module
    num_segments: int

    def __call__(self, x: jax.Array, *args: Any, **kwargs: Any) -> jax.Array:
        nt, h, w, c = x.shape
        x = x.reshape(-1, self.num_segments, h, w, c)
        x = max_pool(x, (3, 1, 1), (2, 1, 1), ((1, 1), (0, 0), (0, 0)))
        return self.net(x.reshape(-1, h, w, c), *args, **kwargs)


class TSMResLayer(ResLayer):
    """A ResNet stage whose blocks (``'block'``) or first convs (``'blockres'``) shift."""

    shift_place: str | None = None
    num_segments: int = 8
    shift_div: int = 8
    n_round: int = 1

    def make_block(self, index: int, **kwargs: Any) -> nn.Module:
        shift = functools.partial(TemporalShift, num_segments=self.num_segments, shift_div=self.shift_div)
        if self.shift_place == 'block':
            return shift(self.block_cls()(**kwargs, parent=None), name=str(index))
        if self.shift_place == 'blockres' and index % self.n_round == 0:
            kwargs['conv1_wrapper'] = shift
        return super().make_block(index, **kwargs)


@BACKBONES.register_module()
class ResNetTSM(ResNet):
    """ResNet backbone for TSM; arguments as MMAction2's ``ResNetTSM``.

    Input ``(N * num_segments, H, W, C)``. With ``temporal_pool`` the frames are halved
    after ``layer1`` (``num_segments`` must be even). Non-local blocks are not supported.
    """

    num_segments: int = 8
    is_shift: bool = True
    non_local: Sequence[Any] = (0, 0, 0, 0)
    non_local_cfg: Mapping[str, Any] = FrozenDict()
    shift_div: int = 8
    shift_place: str = 'blockres'
    temporal_pool: bool = False
    pretrained2d: bool = True

    def _check_args(self) -> None:
        super()._check_args()
        if self.non_local_cfg and any(_flatten(self.non_local)):
            raise NotImplementedError('ResNetTSM: non-local blocks (backbone.non_local / '
                                      'backbone.non_local_cfg) are not supported yet; remove them')
        if self.is_shift and self.shift_place not in ('block', 'blockres'):
            raise ValueError(f"backbone.shift_place must be 'block' or 'blockres', got {self.shift_place!r}")
        if self.temporal_pool and (self.num_segments % 2 or self.num_segments < 2):
            raise ValueError(f'backbone.temporal_pool halves the frames: backbone.num_segments must be '
                             f'even, got {self.num_segments}')

    def stage_segments(self, index: int) -> int:
        """Frames per clip seen by stage ``index`` (halved after layer1 by temporal_pool)."""
        return self.num_segments // 2 if self.temporal_pool and index > 0 else self.num_segments

    def make_res_layer(self, index: int, **kwargs: Any) -> nn.Module:
        # ResNet-101/152 shift every second block (MMAction2: layer3 with >= 23 blocks).
        n_round = 2 if len(self.stage_blocks) > 2 and self.stage_blocks[2] >= 23 else 1
        kwargs.update(shift_place=self.shift_place if self.is_shift else None,
                      num_segments=self.stage_segments(index), shift_div=self.shift_div, n_round=n_round)
        if self.temporal_pool and index == 1:
            return TemporalPool(TSMResLayer(**kwargs, parent=None), self.num_segments, name='layer2')
        return TSMResLayer(**kwargs, name=f'layer{index + 1}')

    def block_prefix(self, stage: int, index: int) -> str:
        layer = 'layer2.net' if self.temporal_pool and stage == 1 else f'layer{stage + 1}'
        wrapped = 'net.' if self.is_shift and self.shift_place == 'block' else ''
        return f'{layer}.{index}.{wrapped}'


def _flatten(values: Any) -> list[Any]:
    if isinstance(values, (list, tuple)):
        return [v for item in values for v in _flatten(item)]
    return [values]
