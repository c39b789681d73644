"""What every recognizer shares: building its parts, input normalisation, losses, freezing.

The engine talks to every model kind through two methods, MMAction2 1.x's
``forward(mode='loss')`` and ``forward(mode='predict')``:

* ``model.apply(variables, batch, rngs=..., mutable=['batch_stats'], method='loss')`` runs
  the training forward pass on ``batch['imgs']`` and returns the head's losses and
  accuracies against ``batch['label']`` (entries whose key contains 'loss' are summed);
* ``model.apply(variables, batch, method='predict')`` returns ``{'scores': (N, C)}``,
  averaged over each sample's views, which ``AccMetric`` scores.

A recognizer is a Flax module built from MMAction2's model config (``backbone``,
``cls_head``, ``neck``, ``train_cfg``, ``test_cfg``, ``data_preprocessor``). Config
dicts for the backbone and head are built into submodules when the recognizer is
constructed, so the unbound module already knows its parts (``frozen_prefixes``).

Input normalisation runs on the device, as 1.x's ``ActionDataPreprocessor``:
``to_rgb`` reverses the channel order, then ``(x - mean) / std``. Pass
``normalize=False`` to feed inputs that are already normalised.

``dtype`` is the compute dtype (``actionjax.precision``): the normalised input is cast to
it, and the engine's steps cast the parameters to it. None computes in JAX's default
float (float32; float64 under ``jax_enable_x64``); ``build_model`` sets it from the
config's precision.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from actionjax.models.builder import build_parts
from actionjax.models.data_preprocessor import normalize_input
from actionjax.models.heads.base import AVERAGE_CLIPS, average_clip
from actionjax.precision import compute_dtype


class BaseRecognizer(nn.Module):
    """Fields as MMAction2's ``BaseRecognizer``; ``backbone``/``cls_head`` are dicts or modules."""

    backbone: Any
    cls_head: Any = None
    neck: Any = None
    train_cfg: Any = None
    test_cfg: Any = None
    data_preprocessor: Any = None
    dtype: Any = None  # compute dtype; parameters stay in actionjax.precision.param_dtype(dtype)

    def __post_init__(self) -> None:
        build_parts(self)
        self._check_cfg()
        super().__post_init__()

    def _check_cfg(self) -> None:
        if self.neck is not None:
            raise NotImplementedError('model.neck is not supported yet; remove it from the config')
        if self.cls_head is None:
            raise ValueError('model.cls_head is required (feature extraction without a head is not '
                             'supported); add e.g. cls_head=dict(type="TSNHead", ...)')
        if self.train_cfg and self.train_cfg.get('blending'):
            raise NotImplementedError('model.train_cfg.blending (mixup/cutmix) is not supported yet')
        pre = self.data_preprocessor or {}
        if pre.get('type', 'ActionDataPreprocessor') != 'ActionDataPreprocessor':
            raise NotImplementedError(f'model.data_preprocessor.type {pre["type"]!r} is not supported; '
                                      "use 'ActionDataPreprocessor'")
        if pre.get('blending'):
            raise NotImplementedError('model.data_preprocessor.blending (mixup/cutmix) is not supported yet')
        if (pre.get('mean') is None) != (pre.get('std') is None):
            raise ValueError('model.data_preprocessor needs both mean and std, or neither')
        test_cfg = self.test_cfg or {}
        for key in ('fcn_test', 'feature_extraction'):
            if test_cfg.get(key):
                raise NotImplementedError(f'model.test_cfg.{key} is not supported yet')
        self.average_clips  # noqa: B018 (validates the setting now rather than at test time)

    @property
    def average_clips(self) -> str | None:
        """Test-time view averaging: the head's ``average_clips`` (a 0.x
        ``test_cfg.average_clips`` is moved there by ``to_runtime_config``)."""
        if 'average_clips' in (self.test_cfg or {}):
            raise ValueError('model.test_cfg.average_clips (MMAction2 0.x) reaches the model only through '
                             'the runtime config; build the model with build_model(config) or set '
                             'model.cls_head.average_clips')
        value = getattr(self.cls_head, 'average_clips', None)
        if value not in AVERAGE_CLIPS:
            raise ValueError(f'model.cls_head.average_clips must be one of {list(AVERAGE_CLIPS)}, '
                             f'got {value!r}')
        return value

    def preprocess(self, imgs: jax.Array, normalize: bool = True) -> jax.Array:
        """uint8/float channels-last images -> normalised as the config says (unless
        ``normalize=False``), in the compute dtype (``normalize_input``)."""
        if normalize:
            return normalize_input(imgs, self.data_preprocessor, self.dtype)
        return jnp.asarray(imgs).astype(compute_dtype(self.dtype))

    def loss(self, batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        """Training forward pass on ``batch['imgs']``; the head's losses and top-k accuracies
        against ``batch['label']``. The total is the sum of the ``*loss*`` entries."""
        return self.cls_head.loss(self(batch['imgs'], train=True), batch['label'])

    def predict(self, batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        """Test forward pass: ``{'scores': (N, num_classes)}`` averaged over each sample's views."""
        return {'scores': self(batch['imgs'], train=False)}

    def average(self, cls_scores: jax.Array) -> jax.Array:
        """``(N, K, C)`` view scores -> test output, as ``average_clips`` says."""
        return average_clip(cls_scores, self.average_clips)

    def frozen_prefixes(self) -> tuple[str, ...]:
        """Dotted prefixes of parameters that get no update (frozen_stages, partial_bn, ...)."""
        parts = (('backbone', self.backbone), ('cls_head', self.cls_head), ('neck', self.neck))
        return tuple(f'{name}.{prefix}' for name, part in parts if part is not None
                     for prefix in getattr(part, 'frozen_prefixes', tuple)())
