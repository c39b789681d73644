"""BMN, the Boundary-Matching Network (Lin et al., ICCV 2019), as MMAction2 1.2.0's ``BMN``.

From video features ``(N, T, C)`` BMN predicts, for every snippet, the probability that
an action starts / ends there, and for every proposal ``[s, s + d + 1]`` (start ``s``,
``d + 1`` snippets long) a regressed IoU and a classification score: the
``(N, 2, D, T)`` confidence map, ``D = T``.

The boundary-matching layer samples ``num_samples`` points (each the mean of
``num_samples_per_bin`` linear interpolations) inside every proposal, widened by
``boundary_ratio`` of its length on both sides. That sampling is a fixed linear map,
the ``(T, num_samples, D, T)`` sample mask, built once in numpy exactly as MMAction2
builds it; it is followed by a 3D convolution whose kernel spans the ``num_samples``
axis. Both are contracted in one go here, features first with the kernel, then with
the mask: the same result with a third of the multiplications (``T * num_samples``
times the 3D conv's output width per map entry, against ``C * num_samples`` plus that).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.core import FrozenDict

from actionjax.models.builder import build_loss
from actionjax.models.common.sequential import Conv, Sequential
from actionjax.models.common.torch_init import torch_bias_init, torch_kernel_init
from actionjax.models.localizers.base import BaseLocalizer
from actionjax.models.localizers.labels import bmn_targets
from actionjax.proposals import bmn_candidates, select_proposals
from actionjax.registry import LOCALIZERS


@functools.lru_cache(maxsize=4)
def sample_mask(tscale: int, num_samples: int, num_samples_per_bin: int, boundary_ratio: float) -> np.ndarray:
    """``(T, num_samples, D, T)`` float32: snippet ``t``'s weight in sample ``n`` of proposal ``(d, s)``.

    Proposal ``(d, s)`` spans snippets ``s .. s + d``; widened by ``boundary_ratio * (d + 1)``
    on both sides it gets ``num_samples * num_samples_per_bin`` evenly spaced points, and
    each point ``p`` adds ``1 - frac(p)`` to snippet ``trunc(p)`` and ``frac(p)`` to
    ``ceil(p)`` (when inside the video), divided by ``num_samples_per_bin``. ``trunc``
    and the signed ``frac`` are MMAction2's ``math.modf``: a point in ``(-1, 0)`` puts its
    whole weight on snippet 0. Proposals ending past the video (``s + d >= T``) are zero.
    """
    points = num_samples * num_samples_per_bin
    duration, start = np.meshgrid(np.arange(tscale), np.arange(tscale), indexing='ij')  # (D, S)
    centre_len = duration.astype(np.float64) + 1
    lo = start - centre_len * boundary_ratio
    hi = (start + duration) + centre_len * boundary_ratio
    step = (hi - lo) / (points - 1.0)
    samples = lo[..., None] + step[..., None] * np.arange(points)  # (D, S, points), MMAction2's arithmetic
    frac, down = np.modf(samples)
    up = np.ceil(samples)
    # Scatter-add in MMAction2's order (per proposal and bin: point by point, floor then ceil),
    # so sums of several contributions to one snippet round the same way.
    bins = np.arange(points) // num_samples_per_bin
    target = np.stack([down, up], axis=-1).astype(np.int64)  # (D, S, points, 2)
    weight = np.stack([1 - frac, frac], axis=-1)
    inside = (target >= 0) & (target <= tscale - 1) & ((start + duration) < tscale)[..., None, None]
    mask = np.zeros((tscale, num_samples, tscale, tscale), np.float64)
    index = [np.broadcast_to(i, target.shape) for i in (bins[:, None], duration[..., None, None],
                                                        start[..., None, None])]
    flat = np.ravel_multi_index((target, *index), mask.shape, mode='clip')  # outside: dropped below
    np.add.at(mask.reshape(-1), flat[inside], weight[inside])
    return (1.0 / num_samples_per_bin * mask).astype(np.float32)


def bm_mask(tscale: int) -> np.ndarray:
    """``(D, T)`` float32: 1 where proposal ``(d, s)`` ends inside the video (``s + d < T``)."""
    duration, start = np.meshgrid(np.arange(tscale), np.arange(tscale), indexing='ij')
    return (start < tscale - duration).astype(np.float32)


class BoundaryMatchingConv(nn.Module):
    """The sample mask followed by ``nn.Conv3d(C, features, (num_samples, 1, 1))`` and ReLU.

    ``(N, T, C)`` -> ``(N, D, T, features)``. The kernel keeps the Conv3d layout
    ``(num_samples, 1, 1, C, features)`` (so MMAction2's ``x_3d_p.0.weight`` converts as
    any 3D conv), and lives in a child named ``0``, the conv's index in MMAction2's
    ``nn.Sequential``.
    """

    features: int
    mask_args: tuple[int, int, int, float]  # (tscale, num_samples, num_samples_per_bin, boundary_ratio)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return nn.relu(_SampledConv3d(self.features, self.mask_args, name='0')(x))


class _SampledConv3d(nn.Module):
    features: int
    mask_args: tuple[int, int, int, float]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        mask = sample_mask(*self.mask_args)
        tscale, num_samples = mask.shape[:2]
        if x.shape[1] != tscale:
            raise ValueError(f'BMN was built for temporal_dim={tscale} snippets, the input has {x.shape[1]} '
                             '(features are (N, T, C))')
        channels = x.shape[-1]
        kernel = self.param('kernel', torch_kernel_init, (num_samples, 1, 1, channels, self.features))
        bias = self.param('bias', torch_bias_init(num_samples * channels), (self.features,))
        per_sample = jnp.einsum('btc,nco->btno', x, kernel[:, 0, 0])
        return jnp.einsum('btno,tnds->bdso', per_sample, jnp.asarray(mask)) + bias


@LOCALIZERS.register_module()
class BMN(BaseLocalizer):
    """Arguments as MMAction2's ``BMN``; ``loss_bbox`` replaces the IoU regression term (``BMNLoss``).

    ``__call__(raw_feature (N, T, C))`` -> ``{'confidence_map': (N, 2, D, T), 'start':
    (N, T), 'end': (N, T)}``; ``predict(batch)`` gives the same dict, ``loss(batch)`` the
    ``BMNLoss`` terms against targets made from ``batch['gt_bbox']``.
    """

    temporal_dim: int
    boundary_ratio: float
    num_samples: int
    num_samples_per_bin: int
    feat_dim: int
    soft_nms_alpha: float
    soft_nms_low_threshold: float
    soft_nms_high_threshold: float
    post_process_top_k: int
    feature_extraction_interval: int = 16
    loss_cls: Mapping[str, Any] = FrozenDict(type='BMNLoss')
    loss_bbox: Mapping[str, Any] | None = None
    hidden_dim_1d: int = 256
    hidden_dim_2d: int = 128
    hidden_dim_3d: int = 512

    @property
    def mask_args(self) -> tuple[int, int, int, float]:
        """The arguments of ``sample_mask``."""
        return self.temporal_dim, self.num_samples, self.num_samples_per_bin, float(self.boundary_ratio)

    @nn.compact
    def __call__(self, raw_feature: jax.Array, train: bool = False) -> dict[str, jax.Array]:
        x = jnp.asarray(raw_feature, jnp.float32)
        if x.ndim != 3 or x.shape[-1] != self.feat_dim:
            raise ValueError(f'BMN takes features (N, T, feat_dim={self.feat_dim}), got shape {x.shape}')
        h1, h2 = self.hidden_dim_1d, self.hidden_dim_2d
        base = Sequential((Conv(h1, (3,), 1, 4), 'relu', Conv(h1, (3,), 1, 4), 'relu'), name='x_1d_b')(x)
        start = Sequential((Conv(h1, (3,), 1, 4), 'relu', Conv(1, (1,)), 'sigmoid'), name='x_1d_s')(base)
        end = Sequential((Conv(h1, (3,), 1, 4), 'relu', Conv(1, (1,)), 'sigmoid'), name='x_1d_e')(base)
        proposal = Sequential((Conv(h1, (3,), 1), 'relu'), name='x_1d_p')(base)
        proposal = BoundaryMatchingConv(self.hidden_dim_3d, self.mask_args, name='x_3d_p')(proposal)
        confidence = Sequential((Conv(h2, (1, 1)), 'relu', Conv(h2, (3, 3), 1), 'relu', Conv(h2, (3, 3), 1),
                                 'relu', Conv(2, (1, 1)), 'sigmoid'), name='x_2d_p')(proposal)
        return dict(confidence_map=confidence.transpose(0, 3, 1, 2), start=start[..., 0], end=end[..., 0])

    def loss(self, batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        """``{'loss_tem', 'loss_pem_reg', 'loss_pem_cls'}`` (weighted; their sum is MMAction2's ``loss``)."""
        out = self(batch['raw_feature'], train=True)
        targets = bmn_targets(batch['gt_bbox'], batch['num_instances'], self.temporal_dim)
        loss_bbox = None if self.loss_bbox is None else build_loss(self.loss_bbox, 'model.loss_bbox')
        loss_cls = build_loss(self.loss_cls, 'model.loss_cls')
        return loss_cls(out['confidence_map'], out['start'], out['end'], *targets,
                        jnp.asarray(bm_mask(self.temporal_dim)), rng=self.make_rng('dropout'),
                        loss_bbox=loss_bbox)

    def predict(self, batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        """The raw maps of every video: ``confidence_map`` ``(B, 2, D, T)``, ``start``/``end`` ``(B, T)``."""
        return self(batch['raw_feature'])

    def select(self, prediction: Mapping[str, np.ndarray], sample: Mapping[str, np.ndarray]) -> np.ndarray:
        """MMAction2's ``BMN.predict`` on the host: candidates, soft-NMS, best ``post_process_top_k``."""
        candidates = bmn_candidates(np.asarray(prediction['start']), np.asarray(prediction['end']),
                                    np.asarray(prediction['confidence_map']))
        return select_proposals(candidates, self.soft_nms_alpha, self.soft_nms_low_threshold,
                                self.soft_nms_high_threshold, self.post_process_top_k)

    def example_input(self, batch_size: int = 1) -> np.ndarray:
        return np.zeros((batch_size, self.temporal_dim, self.feat_dim), np.float32)

    def torch_buffers(self) -> dict[str, np.ndarray]:
        """MMAction2 keeps ``sample_mask`` ``(T, N * D * T)`` and ``bm_mask`` in BMN's state_dict."""
        mask = sample_mask(*self.mask_args)
        return dict(sample_mask=mask.reshape(self.temporal_dim, -1), bm_mask=bm_mask(self.temporal_dim))
