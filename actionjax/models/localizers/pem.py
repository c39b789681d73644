"""BSN's Proposal Evaluation Module, as MMAction2 1.2.0's ``PEM``.

A two-layer perceptron scores each proposal from its boundary-sensitive (BSP) feature
(32 actionness samples around and inside it, made by BSN's PGM step); the score times
the proposal's start and end probabilities ranks it before soft-NMS.

Batches hold every proposal of a video, padded to ``top_k`` rows (``LoadProposals`` +
``PackLocalizationInputs``): ``bsp_feature`` ``(B, P, 32)``, ``tmin``, ``tmax``,
``tmin_score``, ``tmax_score``, ``reference_temporal_iou`` ``(B, P)`` and
``num_instances`` ``(B,)``.
"""

from __future__ import annotations

from collections.abc import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from actionjax.models.common.torch_init import torch_bias_init, torch_kernel_init
from actionjax.models.localizers.base import BaseLocalizer
from actionjax.models.localizers.labels import instance_mask
from actionjax.proposals import select_proposals
from actionjax.registry import LOCALIZERS


def smooth_l1(x: jax.Array, y: jax.Array) -> jax.Array:
    """torch's ``smooth_l1_loss(reduction='none', beta=1)``."""
    diff = jnp.abs(x - y)
    return jnp.where(diff < 1.0, 0.5 * diff * diff, diff - 0.5)


@LOCALIZERS.register_module()
class PEM(BaseLocalizer):
    """Arguments as MMAction2's ``PEM``.

    ``__call__(bsp_feature (..., pem_feat_dim))`` -> ``{'output': (..., 1)}``;
    ``predict(batch)`` -> ``{'pem_output': (B, P)}``; ``loss(batch)`` ->
    ``{'temporal_iou_loss'}``, the smooth-L1 error of the IoU estimates averaged over
    the real proposals of the batch.

    MMAction2 1.2.0 also draws a balanced sample of the proposals
    (``pem_u_ratio_m``/``pem_u_ratio_l`` and the IoU thresholds), but multiplies the
    already averaged loss by ``sum(w) / sum(w)``: the sample does not change the value.
    Those arguments are accepted and, as there, have no effect; where MMAction2 gets
    ``0 / 0`` (no proposal of the batch above the high threshold) the mean is returned
    instead of NaN.
    """

    pem_feat_dim: int
    pem_hidden_dim: int
    pem_u_ratio_m: float
    pem_u_ratio_l: float
    pem_high_temporal_iou_threshold: float
    pem_low_temporal_iou_threshold: float
    soft_nms_alpha: float
    soft_nms_low_threshold: float
    soft_nms_high_threshold: float
    post_process_top_k: int
    feature_extraction_interval: int = 16
    fc1_ratio: float = 0.1
    fc2_ratio: float = 0.1
    output_dim: int = 1

    @nn.compact
    def __call__(self, bsp_feature: jax.Array, train: bool = False) -> dict[str, jax.Array]:
        x = jnp.asarray(bsp_feature, jnp.float32)
        if x.shape[-1] != self.pem_feat_dim:
            raise ValueError(f'PEM takes BSP features (..., pem_feat_dim={self.pem_feat_dim}), '
                             f'got shape {x.shape}')
        fc1 = nn.Dense(self.pem_hidden_dim, kernel_init=torch_kernel_init,
                       bias_init=torch_bias_init(self.pem_feat_dim), name='fc1')
        fc2 = nn.Dense(self.output_dim, kernel_init=torch_kernel_init,
                       bias_init=torch_bias_init(self.pem_hidden_dim), name='fc2')
        x = nn.relu(self.fc1_ratio * fc1(x))
        return dict(output=nn.sigmoid(self.fc2_ratio * fc2(x)))

    def loss(self, batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        iou = self(batch['bsp_feature'], train=True)['output'][..., 0]
        valid = instance_mask(batch['num_instances'], iou.shape[1]).astype(jnp.float32)
        error = smooth_l1(iou, batch['reference_temporal_iou'])
        return dict(temporal_iou_loss=(error * valid).sum() / valid.sum())

    def predict(self, batch: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        return dict(pem_output=self(batch['bsp_feature'])['output'][..., 0])

    def select(self, prediction: Mapping[str, np.ndarray], sample: Mapping[str, np.ndarray]) -> np.ndarray:
        """MMAction2's ``PEM.predict`` on the host: score = PEM output x start x end score, soft-NMS."""
        count = int(sample['num_instances'])
        pem_output = np.asarray(prediction['pem_output'], np.float32)[:count]
        columns = [np.asarray(sample[key], np.float32)[:count]
                   for key in ('tmin', 'tmax', 'tmin_score', 'tmax_score')]
        score = pem_output * columns[2] * columns[3]
        table = np.stack([*columns, pem_output, score], axis=1)  # float32, as MMAction2's
        return select_proposals(table, self.soft_nms_alpha, self.soft_nms_low_threshold,
                                self.soft_nms_high_threshold, self.post_process_top_k)

    def example_input(self, batch_size: int = 1) -> np.ndarray:
        return np.zeros((batch_size, 1, self.pem_feat_dim), np.float32)
