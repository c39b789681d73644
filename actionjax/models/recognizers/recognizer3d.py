"""3D recognizer (I3D, SlowOnly, SlowFast, R(2+1)D, CSN, X3D, C3D): a 3D backbone per clip.

Input ``imgs``: ``(N, V, T, H, W, C)``, uint8 or float, not normalised (``normalize=False``
for inputs already normalised). V = clips x crops; the views are flattened into the
batch for the backbone and the head scores each view on its own (MMAction2 1.2.0's
``Recognizer3D``: ``[N, num_crops, C, T, H, W] -> [N * num_crops, C, T, H, W]``).

* ``model.apply(v, imgs, train=True, rngs={'dropout': k}, mutable=['batch_stats'])``
  -> ``(scores, updates)``, scores ``(N * V, num_classes)``, one row per view;
* ``model.apply(v, imgs)`` (test) -> the head's scores averaged over the V views of a
  sample by ``average_clips`` ('prob', 'score'; None keeps them: ``(N, V, num_classes)``,
  or ``(N, num_classes)`` when V == 1);
* ``model.apply(v, imgs, method='logits')`` -> raw scores ``(N, V, num_classes)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from actionjax.models.recognizers.base import BaseRecognizer
from actionjax.registry import RECOGNIZERS

Features = jax.Array | tuple[jax.Array, ...]


def concat_features(chunks: list[Features]) -> Features:
    """Per-chunk backbone outputs joined on the batch axis (tuples level by level, as SlowFast's)."""
    if isinstance(chunks[0], tuple):
        return tuple(concat_features(list(level)) for level in zip(*chunks, strict=True))
    return jnp.concatenate(chunks)


@RECOGNIZERS.register_module()
class Recognizer3D(BaseRecognizer):
    """Backbone + head over ``(N, V, T, H, W, C)`` clips; see the module docstring."""

    def dummy_input(self, size: int = 64) -> np.ndarray:
        """A zero uint8 batch of one clip, ``(1, 1, T, size, size, C)``, for ``init``/``eval_shape``.

        T is 8 frames unless the backbone fixes its clip (``clip_shape``, e.g. C3D's fc layers).
        """
        clip = getattr(self.backbone, 'clip_shape', (8, size, size))
        return np.zeros((1, 1, *clip, getattr(self.backbone, 'in_channels', 3)), np.uint8)

    def _check_input(self, imgs: jax.Array) -> None:
        if imgs.ndim != 6:
            raise ValueError(f'Recognizer3D takes (N, V, T, H, W, C) inputs (V = clips x crops), got '
                             f'shape {imgs.shape}; a single clip per sample is V = 1')

    def extract_feat(self, imgs: jax.Array, train: bool = False, *, normalize: bool = True) -> Features:
        """Backbone features of every view, ``(N * V, t, h, w, C')`` (NTHWC; MMAction2's are NCTHW).

        At test time ``test_cfg.max_testing_views`` runs the backbone on that many views
        at a time (less memory, same result: BatchNorm uses running statistics). Unlike
        MMAction2 it is not limited to a batch of one sample.
        """
        self._check_input(imgs)
        x = self.preprocess(imgs, normalize)
        x = x.reshape((-1,) + x.shape[2:])
        chunk = (self.test_cfg or {}).get('max_testing_views') if not train else None
        if chunk is not None and (not isinstance(chunk, int) or chunk <= 0):
            raise ValueError(f'model.test_cfg.max_testing_views must be a positive integer, got {chunk!r}')
        if not chunk or chunk >= x.shape[0]:
            return self.backbone(x, train=train)
        return concat_features([self.backbone(x[i:i + chunk], train=False)
                                for i in range(0, x.shape[0], chunk)])

    def forward_head(self, imgs: jax.Array, train: bool = False, *, normalize: bool = True) -> jax.Array:
        """Raw head output per view, grouped per sample: ``(N, V, num_classes)``."""
        n, num_views = imgs.shape[:2]
        feats = self.extract_feat(imgs, train, normalize=normalize)
        cls_score = self.cls_head(feats, num_views, train=train)
        return cls_score.reshape(n, -1, cls_score.shape[-1])

    def logits(self, imgs: jax.Array, train: bool = False, *, normalize: bool = True) -> jax.Array:
        """Head output before softmax, one row per view: ``(N, V, num_classes)``."""
        return self.forward_head(imgs, train, normalize=normalize)

    def __call__(self, imgs: jax.Array, train: bool = False, *, normalize: bool = True) -> jax.Array:
        cls_scores = self.forward_head(imgs, train, normalize=normalize)
        if train:
            return cls_scores.reshape(-1, cls_scores.shape[-1])
        return self.average(cls_scores)
