"""What every temporal localizer shares: the model interface and its host-side hooks.

A localizer is a Flax module built from MMAction2's model config (``type='BMN'``, ...):

* ``model.apply(v, inputs)`` -> the raw outputs, a dict of arrays in MMAction2's layout
  (``inputs``: channels-last features ``(N, T, C)``; PEM: proposal features ``(..., 32)``);
* ``model.apply(v, batch, train=True, rngs={'dropout': key}, method='loss')`` -> a dict
  of losses (entries whose key contains 'loss' add up to the total); random sampling
  inside a loss draws from the ``'dropout'`` stream, the engine's per-step randomness;
* ``model.apply(v, batch, method='predict')`` -> a dict of per-sample arrays (leading
  batch axis), turned into proposals on the host (numpy, not traced) by ``select``
  (soft-NMS; no video metadata needed) and ``proposals`` (seconds).

``batch`` is what the loader makes of ``PackLocalizationInputs``' output:
``raw_feature`` ``(B, T, C)``, ``gt_bbox`` ``(B, M, 2)``, ``num_instances`` ``(B,)``, ...
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import numpy as np

from actionjax.models.builder import build_module
from actionjax.proposals import proposal_list
from actionjax.registry import LOCALIZERS


class BaseLocalizer(nn.Module):
    """The hooks below have defaults; a localizer defines ``__call__``, ``loss`` and ``predict``."""

    def example_input(self, batch_size: int = 1) -> np.ndarray:
        """Zeros of the shape ``__call__`` takes, for ``init`` and shape inference."""
        raise NotImplementedError

    def torch_buffers(self) -> dict[str, np.ndarray]:
        """Tensors MMAction2 keeps in the state_dict that are not learnt (fixed masks).

        They are no Flax variables: the converter checks them against a checkpoint and
        writes them back when exporting one.
        """
        return {}

    def select(self, prediction: Mapping[str, np.ndarray], sample: Mapping[str, np.ndarray]) -> np.ndarray:
        """One video's best proposals after soft-NMS, ``(k, 3)`` ``[tmin, tmax, score]``, best first.

        ``prediction`` and ``sample`` are the video's rows of ``predict``'s output and of
        the batch; times are fractions of the featured video.
        """
        raise NotImplementedError(f'{type(self).__name__} makes no proposals')

    def proposals(self, prediction: Mapping[str, np.ndarray], sample: Mapping[str, np.ndarray],
                  video_info: Mapping[str, Any]) -> list[dict[str, Any]]:
        """MMAction2's proposal list of one video, ``[{'segment': [start_s, end_s], 'score': s}, ...]``."""
        return proposal_list(self.select(prediction, sample), video_info, self.feature_extraction_interval)


def build_localizer(cfg: Mapping[str, Any], key_path: str = 'model') -> nn.Module:
    """The ``LOCALIZERS`` module of a model config (``dict(type='BMN', ...)``)."""
    return build_module(LOCALIZERS, cfg, key_path)
