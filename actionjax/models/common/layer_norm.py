"""torch's ``nn.LayerNorm`` as MMAction2 builds it from ``norm_cfg=dict(type='LN', eps=...)``.

Flax's LayerNorm differs from torch's in two defaults: ``epsilon`` (1e-6 vs 1e-5) and the
variance (E[x^2] - E[x]^2 vs the two-pass mean((x - mean)^2)); this one takes torch's.
Its ``scale`` / ``bias`` convert to the torch ``weight`` / ``bias``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn

TORCH_EPS = 1e-5


class LayerNorm(nn.LayerNorm):
    """``torch.nn.LayerNorm(C, eps)`` over the last axis."""

    epsilon: float = TORCH_EPS
    use_fast_variance: bool = False


def build_layer_norm(norm_cfg: Mapping[str, Any] | None, key_path: str, name: str) -> LayerNorm:
    """The LayerNorm of an mmcv ``norm_cfg`` (``type='LN'``; ``eps`` defaults to torch's 1e-5)."""
    cfg = dict(norm_cfg or {})
    if cfg.get('type', 'LN') not in ('LN', 'LayerNorm'):
        raise NotImplementedError(f'{key_path}={cfg} is not supported here; use dict(type="LN", eps=...)')
    unknown = sorted(set(cfg) - {'type', 'eps', 'requires_grad'})
    if unknown:
        raise ValueError(f'{key_path} has keys {unknown} that LayerNorm does not take (type, eps)')
    if not cfg.get('requires_grad', True):
        raise NotImplementedError(f'{key_path}.requires_grad=False (frozen LayerNorms) is not supported')
    return LayerNorm(epsilon=cfg.get('eps', TORCH_EPS), name=name)
