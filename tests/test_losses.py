"""Losses against torch.nn.functional, and the head's loss dict (top-k, label smoothing)."""

import jax
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from actionjax.models.heads import TSNHead, top_k_accuracy
from actionjax.models.losses import BCELossWithLogits, CrossEntropyLoss, NLLLoss
from actionjax.registry import LOSSES

RNG = np.random.default_rng(0)
SCORES = RNG.standard_normal((6, 4)).astype(np.float32) * 3
HARD = np.array([0, 3, 1, 1, 2, 3])
SOFT = RNG.dirichlet(np.ones(4), size=6).astype(np.float32)
MULTI = (RNG.random((6, 4)) > 0.5).astype(np.float32)
WEIGHT = [0.5, 1.0, 2.0, 1.5]


def t(x):
    return torch.tensor(np.asarray(x))


@pytest.mark.parametrize('class_weight', [None, WEIGHT])
@pytest.mark.parametrize('loss_weight', [1.0, 0.3])
def test_cross_entropy_hard_labels(class_weight, loss_weight):
    loss = CrossEntropyLoss(loss_weight=loss_weight, class_weight=class_weight)
    weight = None if class_weight is None else t(np.float32(class_weight))
    ref = loss_weight * F.cross_entropy(t(SCORES), t(HARD), weight=weight).item()
    assert float(loss(SCORES, HARD)) == pytest.approx(ref, rel=1e-5)


@pytest.mark.parametrize('class_weight', [None, WEIGHT])
def test_cross_entropy_soft_labels(class_weight):
    """MMAction2's soft-label formula: -(label * log_softmax * w).sum(1), divided by
    sum(w * label) with class weights, else averaged."""
    loss = CrossEntropyLoss(class_weight=class_weight)
    lsm = F.log_softmax(t(SCORES), 1)
    if class_weight is None:
        ref = -(t(SOFT) * lsm).sum(1).mean()
    else:
        w = t(np.float32(class_weight))[None]
        ref = -(t(SOFT) * lsm * w).sum(1).sum() / (w * t(SOFT)).sum()
    assert float(loss(SCORES, SOFT)) == pytest.approx(ref.item(), rel=1e-5)
    # one-hot soft labels are the hard-label loss (unweighted case)
    if class_weight is None:
        one_hot = np.eye(4, dtype=np.float32)[HARD]
        assert float(loss(SCORES, one_hot)) == pytest.approx(float(loss(SCORES, HARD)), rel=1e-5)


@pytest.mark.parametrize('class_weight', [None, WEIGHT])
def test_bce_with_logits(class_weight):
    loss = BCELossWithLogits(loss_weight=2.0, class_weight=class_weight)
    weight = None if class_weight is None else t(np.float32(class_weight))
    ref = 2.0 * F.binary_cross_entropy_with_logits(t(SCORES), t(MULTI), weight=weight).item()
    assert float(loss(SCORES, MULTI)) == pytest.approx(ref, rel=1e-5)
    big = np.array([[80.0, -80.0]], np.float32)  # stays finite where a naive log(sigmoid) would not
    assert float(loss.__class__()(big, np.array([[0.0, 1.0]], np.float32))) == pytest.approx(80.0, rel=1e-5)


def test_nll_loss():
    log_probs = F.log_softmax(t(SCORES), 1).numpy()
    ref = F.nll_loss(t(log_probs), t(HARD)).item()
    assert float(NLLLoss(loss_weight=0.5)(log_probs, HARD)) == pytest.approx(0.5 * ref, rel=1e-5)


def test_losses_are_registered_and_jit():
    loss = LOSSES.build(dict(type='CrossEntropyLoss', loss_weight=0.5))
    assert float(jax.jit(loss)(SCORES, HARD)) == pytest.approx(float(loss(SCORES, HARD)), rel=1e-6)
    with pytest.raises(TypeError, match='no extra arguments'):
        loss(SCORES, HARD, reduction='sum')


def test_top_k_accuracy():
    expected = np.mean([HARD[i] in np.argsort(-SCORES[i])[:2] for i in range(6)])
    assert float(top_k_accuracy(SCORES, HARD, 2)) == pytest.approx(expected)
    assert float(top_k_accuracy(SCORES, HARD, 10)) == 1.0  # k above num_classes: every label is in


def test_head_loss_dict_and_label_smoothing():
    head = TSNHead(num_classes=4, in_channels=8, topk=(1, 3), label_smooth_eps=0.1,
                   loss_cls=dict(type='CrossEntropyLoss', loss_weight=2.0))
    losses = head.loss(SCORES, HARD[:, None])  # (N, 1) labels are squeezed, as in MMAction2
    assert set(losses) == {'top1_acc', 'top3_acc', 'loss_cls'}
    smoothed = np.eye(4, dtype=np.float32)[HARD] * 0.9 + 0.1 / 4
    ref = -(t(smoothed) * F.log_softmax(t(SCORES), 1)).sum(1).mean().item()
    assert float(losses['loss_cls']) == pytest.approx(2.0 * ref, rel=1e-5)
    soft = TSNHead(num_classes=4, in_channels=8).loss(SCORES, SOFT)
    assert set(soft) == {'loss_cls'}  # no accuracy for soft labels
    single = TSNHead(num_classes=4, in_channels=8).loss(SCORES[:1], SOFT[0])  # soft label, batch of one
    expected = float(CrossEntropyLoss()(SCORES[:1], SOFT[:1]))
    assert float(single['loss_cls']) == pytest.approx(expected, rel=1e-6)
