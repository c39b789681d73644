"""Training targets of BMN and BSN's TEM from ground-truth segments, on the device.

``gt_bbox`` is ``(B, M, 2)`` ``[start, end]`` as fractions of the featured video, padded
with zero rows after the first ``num_instances[b]`` (``PackLocalizationInputs``). Every
target is a maximum over a video's segments of an overlap that is never negative, so the
padding rows are simply given overlap 0.

MMAction2 computes these in float64 numpy and rounds them to float32 before comparing
them with the loss thresholds. Here they are float32 throughout, so the arithmetic is
arranged to lose nothing that matters: every overlap is measured relative to its
anchor, in snippets, from an offset ``gt * T - i`` computed without rounding error
(``offsets``), so an intersection or a union carries at most one rounding relative to
its own size and an IoU or IoP is within about 1e-7 of MMAction2's. An overlap lying
on a threshold (an IoU of exactly 0.9 with a segment on the snippet grid, a boundary IoP
of 0.5 for a segment starting at 0) then rounds to the same float32 and falls on the
same side of it. Segment ends float32 cannot hold exactly (the batch is float32) may
still put an exact tie of the float64 values an ulp to one side.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def instance_mask(num_instances: jax.Array, max_instances: int) -> jax.Array:
    """``(B, M)`` True on the real rows of a padded instance array."""
    return jnp.arange(max_instances)[None, :] < jnp.asarray(num_instances)[:, None]


def offsets(gt: jax.Array, tscale: int, origin: jax.Array) -> jax.Array:
    """``gt * tscale - origin`` (fractions -> snippets, relative to whole-snippet ``origin``), exactly.

    ``gt`` is split into a part with 12 fractional bits, whose product with ``tscale``
    and difference with ``origin`` are exact in float32 (``tscale < 4096``), and a
    remainder below 2^-13 whose product rounds far below the result's last place.
    """
    gt = jnp.asarray(gt, jnp.float32)
    head = jnp.round(gt * 4096.0) / 4096.0
    return (head * tscale - origin) + (gt - head) * tscale


def _overlap(lo: jax.Array, hi: jax.Array, gt_lo: jax.Array, gt_hi: jax.Array) -> jax.Array:
    return jnp.maximum(jnp.minimum(hi, gt_hi) - jnp.maximum(lo, gt_lo), 0.0)


def _iou(lo: jax.Array, hi: jax.Array, gt_lo: jax.Array, gt_hi: jax.Array) -> jax.Array:
    """IoU; where the intervals overlap their union is one interval, ``max(ends) - min(starts)``."""
    inter = _overlap(lo, hi, gt_lo, gt_hi)
    union = jnp.maximum(hi, gt_hi) - jnp.minimum(lo, gt_lo)
    return jnp.where(inter > 0, inter / jnp.where(inter > 0, union, 1.0), 0.0)


def _max_over_instances(overlap: jax.Array, valid: jax.Array) -> jax.Array:
    """``overlap`` ``(B, M, ...)`` -> ``(B, ...)``: the best real segment (0 when there is none)."""
    valid = valid.reshape(valid.shape + (1,) * (overlap.ndim - 2))
    return jnp.where(valid, overlap, 0.0).max(axis=1)


def _boundary_scores(edge: jax.Array, pad: jax.Array | float, valid: jax.Array, tscale: int,
                     anchor: tuple[float, float]) -> jax.Array:
    """Best IoP of the anchors ``i + anchor`` (snippets) with the regions ``edge +- pad / 2``.

    ``edge`` ``(B, M)`` fractions, ``pad`` snippets (scalar or ``(B, M)``) -> ``(B, T)``.
    """
    index = jnp.arange(tscale, dtype=jnp.float32)
    centre = offsets(edge[..., None], tscale, index)  # (B, M, T): the edge relative to anchor i
    half = jnp.asarray(pad, jnp.float32)[..., None] / 2 if jnp.ndim(pad) else pad / 2
    iop = _overlap(anchor[0], anchor[1], centre - half, centre + half) / (anchor[1] - anchor[0])
    return _max_over_instances(iop, valid)


def bmn_targets(gt_bbox: jax.Array, num_instances: jax.Array, tscale: int
                ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """BMN's ``(gt_iou_map (B, D, T), gt_start (B, T), gt_end (B, T))``.

    ``gt_iou_map[b, d, s]`` is the best IoU of the proposal ``[s, s + d + 1] / tscale``
    with a segment; the boundary targets are the IoP of the anchors
    ``[i - 0.5, i + 1.5] / tscale`` with 3-snippet regions around the segment starts / ends.
    """
    valid = instance_mask(num_instances, gt_bbox.shape[1])
    gt_min, gt_max = gt_bbox[..., 0], gt_bbox[..., 1]
    index = jnp.arange(tscale, dtype=jnp.float32)
    length = (index + 1)[:, None]  # (D, 1): proposal (d, s) is [0, d + 1] relative to its start s
    lo = offsets(gt_min[..., None, None], tscale, index)  # (B, M, 1, S)
    hi = offsets(gt_max[..., None, None], tscale, index)
    gt_iou_map = _max_over_instances(_iou(0.0, length, lo, hi), valid)
    gt_start = _boundary_scores(gt_min, 3.0, valid, tscale, (-0.5, 1.5))
    gt_end = _boundary_scores(gt_max, 3.0, valid, tscale, (-0.5, 1.5))
    return gt_iou_map, gt_start, gt_end


def tem_targets(gt_bbox: jax.Array, num_instances: jax.Array, tscale: int, boundary_ratio: float
                ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """BSN TEM's ``(action, start, end)`` targets, each ``(B, T)``.

    Anchors are the snippets ``[i, i + 1] / tscale``; ``action`` is their best IoP with a
    segment, ``start``/``end`` with regions of ``max(1 / tscale, boundary_ratio * length)``
    around its boundaries.
    """
    valid = instance_mask(num_instances, gt_bbox.shape[1])
    gt_min, gt_max = gt_bbox[..., 0], gt_bbox[..., 1]
    index = jnp.arange(tscale, dtype=jnp.float32)
    lo = offsets(gt_min[..., None], tscale, index)  # (B, M, T)
    hi = offsets(gt_max[..., None], tscale, index)
    action = _max_over_instances(_overlap(0.0, 1.0, lo, hi), valid)
    pad = jnp.maximum(1.0, boundary_ratio * (offsets(gt_max, tscale, 0.0) - offsets(gt_min, tscale, 0.0)))
    start = _boundary_scores(gt_min, pad, valid, tscale, (0.0, 1.0))
    end = _boundary_scores(gt_max, pad, valid, tscale, (0.0, 1.0))
    return action, start, end
