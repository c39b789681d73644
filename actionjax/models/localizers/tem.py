"""BSN's Temporal Evaluation Module (Lin et al., ECCV 2018), as MMAction2 1.2.0's ``TEM``.

Three 1D convolutions over the snippet axis give, for every snippet, the probability
of being inside an action, at its start and at its end. BSN's proposal generation (PGM)
then pairs start and end peaks; see ``actionjax.models.localizers.bsn_pgm``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.core import FrozenDict

from actionjax.models.builder import build_loss
from actionjax.models.common.torch_init import torch_bias_init, torch_kernel_init
from actionjax.models.localizers.base import BaseLocalizer
from actionjax.models.localizers.labels import tem_targets
from actionjax.registry import LOCALIZERS


def _conv(features: int, kernel: int, in_features: int, name: str) -> nn.Conv:
    padding = (kernel - 1) // 2
    return nn.Conv(features, (kernel,), padding=((padding, padding),), kernel_init=torch_kernel_init,
                   bias_init=torch_bias_init(in_features * kernel), name=name)


@LOCALIZERS.register_module()
class TEM(BaseLocalizer):
    """Arguments as MMAction2's ``TEM``.

    ``__call__(raw_feature (N, T, C))`` -> ``{'output': (N, 3, T)}`` (action, start, end
    probabilities: MMAction2's layout); ``predict(batch)`` -> ``{'action', 'start',
    'end'}``, each ``(B, T)``; ``loss(batch)`` -> ``{'loss_action', 'loss_start',
    'loss_end'}`` (``loss_action`` times ``loss_weight``).
    """

    temporal_dim: int
    boundary_ratio: float
    tem_feat_dim: int
    tem_hidden_dim: int
    tem_match_threshold: float
    loss_cls: Mapping[str, Any] = FrozenDict(type='BinaryLogisticRegressionLoss')
    loss_weight: float = 2
    output_dim: int = 3
    conv1_ratio: float = 1
    conv2_ratio: float = 1
    conv3_ratio: float = 0.01

    @nn.compact
    def __call__(self, raw_feature: jax.Array, train: bool = False) -> dict[str, jax.Array]:
        x = jnp.asarray(raw_feature, jnp.float32)
        if x.ndim != 3 or x.shape[-1] != self.tem_feat_dim:
            raise ValueError(f'TEM takes features (N, T, tem_feat_dim={self.tem_feat_dim}), '
                             f'got shape {x.shape}')
        hidden = self.tem_hidden_dim
        x = nn.relu(self.conv1_ratio * _conv(hidden, 3, self.tem_feat_dim, 'conv1')(x))
        x = nn.relu(self.conv2_ratio * _conv(hidden, 3, hidden, 'conv2')(x))
        x = nn.sigmoid(self.conv3_ratio * _conv(self.output_dim, 1, hidden, 'conv3')(x))
        return dict(output=x.transpose(0, 2, 1))

    def loss(self, batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        output = self(batch['raw_feature'], train=True)['output']
        action, start, end = tem_targets(batch['gt_bbox'], batch['num_instances'], self.temporal_dim,
                                         self.boundary_ratio)
        loss_cls = build_loss(self.loss_cls, 'model.loss_cls')
        threshold = self.tem_match_threshold
        return dict(loss_action=loss_cls(output[:, 0], action, threshold) * self.loss_weight,
                    loss_start=loss_cls(output[:, 1], start, threshold),
                    loss_end=loss_cls(output[:, 2], end, threshold))

    def predict(self, batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        output = self(batch['raw_feature'])['output']
        return dict(action=output[:, 0], start=output[:, 1], end=output[:, 2])

    def tem_results(self, prediction: Mapping[str, np.ndarray]) -> np.ndarray:
        """One video's ``(T, 5)`` table ``action, start, end, tmin, tmax`` (MMAction2's TEM csv rows)."""
        gap = 1.0 / self.temporal_dim
        index = np.arange(self.temporal_dim)
        return np.stack([prediction['action'], prediction['start'], prediction['end'], gap * index,
                         gap * (index + 1)], axis=1)

    def example_input(self, batch_size: int = 1) -> np.ndarray:
        return np.zeros((batch_size, self.temporal_dim, self.tem_feat_dim), np.float32)
