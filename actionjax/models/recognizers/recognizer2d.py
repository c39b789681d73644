"""2D recognizer (TSN, TSM): a 2D backbone on every frame, a head that merges them.

Input ``imgs``: ``(N, V, H, W, C)``, uint8 or float, not normalised (``normalize=False``
for inputs already normalised). V = segments x clips x crops; the views are flattened
into the batch for the backbone, and the head groups them back.

* ``model.apply(v, imgs, train=True, rngs={'dropout': k}, mutable=['batch_stats'])``
  -> ``(logits, updates)``, logits ``(N, num_classes)``;
* ``model.apply(v, imgs)`` (test) -> the head's scores averaged over the K views of a
  sample by ``average_clips``: ``(N, num_classes)``;
* ``model.apply(v, logits, labels, method='loss')`` -> dict of losses and accuracies.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from actionjax.models.recognizers.base import BaseRecognizer
from actionjax.registry import RECOGNIZERS


@RECOGNIZERS.register_module()
class Recognizer2D(BaseRecognizer):
    """Backbone + head over ``(N, V, H, W, C)`` frame stacks; see the module docstring."""

    def _check_input(self, imgs: jax.Array) -> None:
        if imgs.ndim != 5:
            raise ValueError(f'Recognizer2D takes (N, V, H, W, C) inputs, got shape {imgs.shape}')

    def extract_feat(self, imgs: jax.Array, train: bool = False, *, normalize: bool = True
                     ) -> jax.Array | tuple[jax.Array, ...]:
        """Backbone features of every view, ``(N * V, h, w, C')`` (NHWC; MMAction2's are NCHW).

        At test time ``test_cfg.max_testing_views`` runs the backbone on that many views
        at a time (less memory, same result: BatchNorm uses running statistics).
        """
        self._check_input(imgs)
        x = self.preprocess(imgs, normalize)
        x = x.reshape((-1,) + x.shape[2:])
        chunk = (self.test_cfg or {}).get('max_testing_views') if not train else None
        if not chunk or chunk >= x.shape[0]:
            return self.backbone(x, train=train)
        num_segments = getattr(self.backbone, 'num_segments', None)
        if num_segments and chunk % num_segments:
            raise ValueError(f'model.test_cfg.max_testing_views={chunk} must be a multiple of '
                             f'backbone.num_segments={num_segments}')
        feats = [self.backbone(x[i:i + chunk], train=False) for i in range(0, x.shape[0], chunk)]
        if isinstance(feats[0], tuple):
            return tuple(jnp.concatenate(level) for level in zip(*feats, strict=True))
        return jnp.concatenate(feats)

    def forward_head(self, imgs: jax.Array, train: bool = False, *, normalize: bool = True) -> jax.Array:
        """Raw head output grouped per sample, ``(N, K, num_classes)``.

        K = 1 for TSN (its consensus averages every view); for TSM, K = V / num_segments
        (one row per clip or crop).
        """
        n, num_segs = imgs.shape[:2]
        feats = self.extract_feat(imgs, train, normalize=normalize)
        cls_score = self.cls_head(feats, num_segs, train=train)
        return cls_score.reshape(n, -1, cls_score.shape[-1])

    def logits(self, imgs: jax.Array, train: bool = False, *, normalize: bool = True) -> jax.Array:
        """Head output before softmax: ``(N, num_classes)``, or ``(N, K, num_classes)`` if K > 1."""
        cls_scores = self.forward_head(imgs, train, normalize=normalize)
        return cls_scores[:, 0] if cls_scores.shape[1] == 1 else cls_scores

    def __call__(self, imgs: jax.Array, train: bool = False, *, normalize: bool = True) -> jax.Array:
        cls_scores = self.forward_head(imgs, train, normalize=normalize)
        if train:
            return cls_scores.reshape(-1, cls_scores.shape[-1])
        return self.average(cls_scores)
