"""SSN's loss, as MMAction2 0.24.1's ``SSNLoss``: activity, completeness (OHEM hinge), regression.

A batch holds ``num_per_video`` sampled proposals per video, in the sampler's order:
positives (``proposal_type`` 0), incompletes (1), backgrounds (2), in the proportions of
``train_cfg.ssn.sampler``. The terms:

* ``loss_activity``: cross entropy of the activity scores of positives and backgrounds;
* ``loss_completeness``: a hinge loss on the completeness score of the proposal's class,
  pushing positives above +1 and incompletes below -1; of each video's incompletes only
  the hardest ``positive_per_video`` count (online hard example mining); times
  ``comp_loss_weight``;
* ``loss_reg``: the (centre, span) regression of the positives' own class, smooth-L1 by
  default, or any ``LOSSES`` entry given as ``loss_bbox`` (called as
  ``loss(pred, target, weight=...)``); times ``reg_loss_weight``.

The proposal counts per type are fixed by the sampler, so the selections have static
sizes and the loss compiles once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from actionjax.registry import LOSSES


def sampler_counts(sampler: Mapping[str, Any]) -> tuple[int, int, int]:
    """``(positive, background, incomplete)`` proposals per video, as MMAction2's SSNDataset samples them."""
    total = sampler['positive_ratio'] + sampler['background_ratio'] + sampler['incomplete_ratio']
    positive = int(sampler['num_per_video'] * (sampler['positive_ratio'] / total))
    background = int(sampler['num_per_video'] * (sampler['background_ratio'] / total))
    return positive, background, sampler['num_per_video'] - positive - background


def _rows(mask: jax.Array, count: int) -> jax.Array:
    """Indices of the first ``count`` True entries of ``mask``, in order (``nonzero`` with a static size)."""
    return jnp.argsort(~mask, stable=True)[:count]


def ohem_hinge_loss(pred: jax.Array, labels: jax.Array, is_positive: int, ohem_ratio: float,
                    group_size: int) -> jax.Array:
    """Sum over groups of ``group_size`` rows of the ``int(group_size * ohem_ratio)`` largest
    ``max(0, 1 - is_positive * pred[i, labels[i] - 1])`` (MMAction2's ``OHEMHingeLoss``)."""
    score = jnp.take_along_axis(pred, (labels - 1)[:, None], axis=1)[:, 0]
    losses = jax.nn.relu(1.0 - is_positive * score).reshape(-1, group_size)
    keep = int(group_size * ohem_ratio)
    return jax.lax.top_k(losses, keep)[0].sum()


def smooth_l1(pred: jax.Array, target: jax.Array) -> jax.Array:
    """torch's ``smooth_l1_loss`` (beta 1), elementwise."""
    diff = jnp.abs(pred - target)
    return jnp.where(diff < 1.0, 0.5 * diff * diff, diff - 0.5)


@LOSSES.register_module()
class SSNLoss:
    """``loss(activity, completeness, bbox_pred, proposal_type, labels, bbox_targets, train_cfg)``.

    ``activity`` ``(R, K + 1)``, ``completeness`` ``(R, K)``, ``bbox_pred`` ``(R, K, 2)`` or
    None, ``proposal_type``/``labels`` ``(R,)`` ints (labels: 0 background, 1..K classes),
    ``bbox_targets`` ``(R, 2)``; ``train_cfg`` MMAction2's ``dict(ssn=dict(sampler=...,
    loss_weight=...))``. Returns ``{'loss_activity', 'loss_completeness'[, 'loss_reg']}``.
    """

    def __call__(self, activity: jax.Array, completeness: jax.Array, bbox_pred: jax.Array | None,
                 proposal_type: jax.Array, labels: jax.Array, bbox_targets: jax.Array,
                 train_cfg: Mapping[str, Any], loss_bbox: Callable[..., Any] | None = None
                 ) -> dict[str, jax.Array]:
        ssn = train_cfg['ssn']
        weights = ssn['loss_weight']
        positive, _, incomplete = sampler_counts(ssn['sampler'])
        proposal_type = jnp.asarray(proposal_type).reshape(-1)
        labels = jnp.asarray(labels).reshape(-1).astype(jnp.int32)
        bbox_targets = jnp.asarray(bbox_targets)
        videos = proposal_type.shape[0] // ssn['sampler']['num_per_video']

        scored = (proposal_type == 0) | (proposal_type == 2)
        log_probs = jax.nn.log_softmax(activity.astype(jnp.float32), axis=1)
        nll = -jnp.take_along_axis(log_probs, labels[:, None], axis=1)[:, 0]
        losses = dict(loss_activity=jnp.sum(jnp.where(scored, nll, 0.0)) / jnp.sum(scored))

        rows = _rows((proposal_type == 0) | (proposal_type == 1), videos * (positive + incomplete))
        pred = completeness[rows].reshape(videos, positive + incomplete, -1)
        gt = labels[rows].reshape(videos, positive + incomplete)
        ohem_ratio = positive / incomplete
        positive_loss = ohem_hinge_loss(pred[:, :positive].reshape(-1, pred.shape[-1]),
                                        gt[:, :positive].reshape(-1), 1, 1.0, positive)
        incomplete_loss = ohem_hinge_loss(pred[:, positive:].reshape(-1, pred.shape[-1]),
                                          gt[:, positive:].reshape(-1), -1, ohem_ratio, incomplete)
        count = videos * positive + int(videos * incomplete * ohem_ratio)
        losses['loss_completeness'] = (positive_loss + incomplete_loss) / count * weights['comp_loss_weight']

        if bbox_pred is not None:
            rows = _rows(proposal_type == 0, videos * positive)
            pred = jnp.take_along_axis(bbox_pred[rows], (labels[rows] - 1)[:, None, None], axis=1)[:, 0]
            target = bbox_targets.reshape(-1, 2)[rows]
            if loss_bbox is None:
                reg = smooth_l1(pred, target).mean() * 2
            else:
                reg = loss_bbox(pred, target, weight=jnp.ones_like(target))
            losses['loss_reg'] = reg * weights['reg_loss_weight']
        return losses

    def __repr__(self) -> str:
        return f'{type(self).__name__}()'
