"""What every classification head shares: the loss dict and test-time clip averaging.

A head is a Flax module ``head(x, num_segs, train=False) -> cls_score``. Its ``loss``
follows MMAction2 1.2.0's ``BaseHead.loss_by_feat``: hard labels also report
``top{k}_acc``; ``label_smooth_eps`` turns hard labels into smoothed one-hot targets;
the classification loss comes from ``loss_cls`` (LOSSES registry) as ``loss_cls``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.core import FrozenDict

from actionjax.models.builder import build_loss
from actionjax.precision import reduction_dtype

AVERAGE_CLIPS = ('score', 'prob', None)


def top_k_accuracy(cls_score: jax.Array, labels: jax.Array, k: int) -> jax.Array:
    """Fraction of samples whose label is among the ``k`` highest scores."""
    k = min(k, cls_score.shape[-1])
    top = jax.lax.top_k(cls_score, k)[1]
    return (top == labels[:, None]).any(axis=1).mean(dtype=jnp.float32)


def average_clip(cls_scores: jax.Array, average_clips: str | None) -> jax.Array:
    """Average ``(N, K, num_classes)`` scores over the K views of each sample.

    ``'score'`` averages the raw scores, ``'prob'`` averages the softmax probabilities,
    ``None`` averages nothing: ``(N, num_classes)`` when K == 1, else ``(N, K, num_classes)``
    (MMAction2 1.2.0's layout). Scores are averaged in float32 at least (bfloat16 compute).
    """
    if average_clips not in AVERAGE_CLIPS:
        raise ValueError(f'average_clips {average_clips!r} is not supported; choose one of '
                         f'{list(AVERAGE_CLIPS)} (config key cls_head.average_clips or '
                         'test_cfg.average_clips)')
    cls_scores = cls_scores.astype(reduction_dtype(cls_scores.dtype))
    if average_clips == 'prob':
        return jax.nn.softmax(cls_scores, axis=-1).mean(axis=1)
    if average_clips == 'score':
        return cls_scores.mean(axis=1)
    return cls_scores[:, 0] if cls_scores.shape[1] == 1 else cls_scores


class BaseHead(nn.Module):
    """Fields shared by classification heads (MMAction2's ``BaseHead`` arguments)."""

    num_classes: int
    in_channels: int
    loss_cls: Mapping[str, Any] = FrozenDict(type='CrossEntropyLoss', loss_weight=1.0)
    multi_class: bool = False
    label_smooth_eps: float = 0.0
    topk: int | Sequence[int] = (1, 5)
    average_clips: str | None = None
    init_cfg: Any = None

    def __post_init__(self) -> None:
        topk = (self.topk,) if isinstance(self.topk, int) else tuple(self.topk)
        if not topk or min(topk) <= 0:
            raise ValueError(f'cls_head.topk must be positive integers, got {self.topk}')
        if self.average_clips not in AVERAGE_CLIPS:
            raise ValueError(f'cls_head.average_clips must be one of {list(AVERAGE_CLIPS)}, '
                             f'got {self.average_clips!r}')
        super().__post_init__()

    def loss(self, cls_score: jax.Array, labels: jax.Array) -> dict[str, jax.Array]:
        """``{'top1_acc', 'top5_acc', 'loss_cls'}`` for int labels ``(N,)`` or float ``(N, C)``."""
        labels = jnp.asarray(labels)
        if labels.ndim == 2 and labels.shape[1] == 1 and cls_score.shape != labels.shape:
            labels = labels[:, 0]  # MMAction2 squeezes (N, 1) labels
        if labels.ndim == 0:
            labels = labels[None]
        elif labels.ndim == 1 and labels.shape[0] == self.num_classes and cls_score.shape[0] == 1:
            labels = labels[None]  # a soft label of a batch of one
        losses: dict[str, jax.Array] = {}
        hard = cls_score.shape != labels.shape
        if hard:
            for k in ((self.topk,) if isinstance(self.topk, int) else self.topk):
                losses[f'top{k}_acc'] = top_k_accuracy(cls_score, labels, k)
        if self.label_smooth_eps != 0:
            if hard:
                labels = jax.nn.one_hot(labels, self.num_classes, dtype=cls_score.dtype)
            labels = (1 - self.label_smooth_eps) * labels + self.label_smooth_eps / self.num_classes
        loss = build_loss(self.loss_cls, 'model.cls_head.loss_cls')(cls_score, labels)
        if isinstance(loss, Mapping):
            losses.update(loss)
        else:
            losses['loss_cls'] = loss
        return losses
