"""BMN's loss: boundary (TEM), proposal IoU regression and proposal classification terms.

As MMAction2 1.2.0's ``BMNLoss``, with two choices made explicit:

* the regression term balances high, middle and low IoU entries by keeping a random
  subset of the middle and low ones; the two uniform draws come from ``rng`` (or are
  given as ``uniforms``, which is how the tests feed MMAction2's own draws);
* the regression term may be any loss from ``LOSSES`` (``loss_bbox``), called as
  ``loss_bbox(pred, target, weight=w)`` with ``w`` the balanced sample weights, the
  mmdet/MMAction2 convention for regression losses. Without one it is MMAction2's
  weighted squared error, ``0.5 * sum(w * (pred - target)^2) / sum(w)``.

The terms come back weighted, under keys that contain 'loss', so their sum is
MMAction2's total ``loss``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from actionjax.models.losses.binary_logistic_regression_loss import binary_logistic_regression_loss
from actionjax.registry import LOSSES


def pem_sample_weights(gt_iou_map: jax.Array, mask: jax.Array, uniform_m: jax.Array, uniform_l: jax.Array,
                       high_temporal_iou_threshold: float = 0.7,
                       low_temporal_iou_threshold: float = 0.3) -> jax.Array:
    """0/1 weights of the regression term: every high-IoU entry, as many middle and low ones on average.

    Middle entries (``low < iou <= high``) are kept where ``uniform_m > 1 - num_high /
    num_middle``, low ones (``0 < iou <= low``, inside ``mask``) likewise. The
    comparisons are MMAction2's, quirks included: with more high than middle entries
    ``1 - ratio < 0`` and every entry of the map gets weight, zeros too.
    """
    high = (gt_iou_map > high_temporal_iou_threshold).astype(jnp.float32)
    middle = ((gt_iou_map <= high_temporal_iou_threshold)
              & (gt_iou_map > low_temporal_iou_threshold)).astype(jnp.float32)
    low = ((gt_iou_map <= low_temporal_iou_threshold) & (gt_iou_map > 0.0)).astype(jnp.float32) * mask
    num_high = high.sum()
    keep_middle = (middle * uniform_m > 1.0 - num_high / middle.sum()).astype(jnp.float32)
    keep_low = (low * uniform_l > 1.0 - num_high / low.sum()).astype(jnp.float32)
    return high + keep_middle + keep_low


def pem_reg_loss(pred_score: jax.Array, gt_iou_map: jax.Array, weight: jax.Array) -> jax.Array:
    """MMAction2's regression term: ``0.5 * sum(w * (pred - target)^2) / sum(w)`` (0/1 weights)."""
    return 0.5 * jnp.sum(jnp.square(pred_score * weight - gt_iou_map * weight)) / jnp.sum(weight)


def pem_cls_loss(pred_score: jax.Array, gt_iou_map: jax.Array, mask: jax.Array, threshold: float = 0.9,
                 ratio_range: Sequence[float] = (1.05, 21), eps: float = 1e-5) -> jax.Array:
    """Class-balanced log loss of the proposal scores against ``iou > threshold`` (negatives in ``mask``)."""
    positive = (gt_iou_map > threshold).astype(jnp.float32)
    negative = (gt_iou_map <= threshold).astype(jnp.float32) * mask
    num_positive = jnp.maximum(positive.sum(), 1.0)
    num_entries = num_positive + negative.sum()
    ratio = jnp.clip(num_entries / num_positive, ratio_range[0], ratio_range[1])
    coef_0 = 0.5 * ratio / (ratio - 1)
    coef_1 = 0.5 * ratio
    loss_pos = coef_1 * jnp.log(pred_score + eps) * positive
    loss_neg = coef_0 * jnp.log(1.0 - pred_score + eps) * negative
    return -jnp.sum(loss_pos + loss_neg) / num_entries


@LOSSES.register_module()
class BMNLoss:
    """``loss(pred_bm, pred_start, pred_end, gt_iou_map, gt_start, gt_end, bm_mask, rng=...)``.

    ``pred_bm`` is BMN's ``(B, 2, D, T)`` confidence map (regression, classification),
    ``pred_start``/``pred_end`` ``(B, T)``, the targets as ``bmn_targets`` makes them and
    ``bm_mask`` ``(D, T)`` the valid (start, duration) pairs. Returns
    ``{'loss_tem', 'loss_pem_reg', 'loss_pem_cls'}``, already weighted.
    """

    def __init__(self, weight_tem: float = 1.0, weight_pem_reg: float = 10.0,
                 weight_pem_cls: float = 1.0) -> None:
        self.weight_tem = weight_tem
        self.weight_pem_reg = weight_pem_reg
        self.weight_pem_cls = weight_pem_cls

    def __call__(self, pred_bm: jax.Array, pred_start: jax.Array, pred_end: jax.Array, gt_iou_map: jax.Array,
                 gt_start: jax.Array, gt_end: jax.Array, bm_mask: jax.Array, *, rng: jax.Array | None = None,
                 uniforms: tuple[jax.Array, jax.Array] | None = None,
                 loss_bbox: Callable[..., Any] | None = None) -> dict[str, jax.Array]:
        """The weighted terms; ``rng`` draws the regression samples unless ``uniforms`` gives them."""
        pred_reg, pred_cls = pred_bm[:, 0], pred_bm[:, 1]
        gt_iou_map = gt_iou_map * bm_mask
        if uniforms is None:
            if rng is None:
                raise ValueError('BMNLoss samples the regression entries at random: pass rng (or uniforms)')
            uniforms = tuple(jax.random.uniform(rng, (2,) + gt_iou_map.shape))
        weight = pem_sample_weights(gt_iou_map, bm_mask, *uniforms)
        if loss_bbox is None:
            reg = pem_reg_loss(pred_reg, gt_iou_map, weight)
        else:
            reg = loss_bbox(pred_reg, gt_iou_map, weight=weight)
        tem = (binary_logistic_regression_loss(pred_start, gt_start)
               + binary_logistic_regression_loss(pred_end, gt_end))
        return dict(loss_tem=self.weight_tem * tem, loss_pem_reg=self.weight_pem_reg * reg,
                    loss_pem_cls=self.weight_pem_cls * pem_cls_loss(pred_cls, gt_iou_map, bm_mask))

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(weight_tem={self.weight_tem}, weight_pem_reg={self.weight_pem_reg}, '
                f'weight_pem_cls={self.weight_pem_cls})')
