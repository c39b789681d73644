"""``optimizer_config.grad_clip`` as torch's ``clip_grad_norm_``.

mmcv's OptimizerHook clips the gradients of the parameters that require grad with one
global norm, before the optimizer (and so before weight decay) sees them:
``coef = min(max_norm / (total_norm + 1e-6), 1)``. The ``1e-6`` matters: a gradient
whose norm is exactly ``max_norm`` is still scaled by ``max_norm / (max_norm + 1e-6)``.
Frozen parameters (``requires_grad=False`` in torch) are left out of the norm; parameters
with ``lr_mult=0`` still count, as they do in torch.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

EPS = 1e-6  # torch.nn.utils.clip_grad_norm_ adds this to the total norm


def global_norm(grads: optax.Updates, norm_type: float = 2.0, mask: Any = None) -> jax.Array:
    """The p-norm of all (masked-in) leaves together.

    Torch takes the norm of the per-tensor norms; summing ``|g| ** p`` over all leaves
    is the same number (up to rounding) with one reduction per leaf and nothing else,
    which keeps the kernel count of the update at that of ``optax.clip_by_global_norm``.
    """
    leaves = jax.tree.leaves(grads)
    if callable(mask):
        mask = mask(grads)
    if mask is not None:
        leaves = [g for g, keep in zip(leaves, jax.tree.leaves(mask), strict=True) if keep]
    if not leaves:
        return jnp.zeros([], jnp.result_type(float))
    if math.isinf(norm_type):
        return functools.reduce(jnp.maximum, [jnp.max(jnp.abs(g)) for g in leaves])
    leaves = [g.astype(jnp.promote_types(g.dtype, jnp.float32)) for g in leaves]  # bf16 sums in f32
    if norm_type == 2:
        return jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in leaves))
    return sum(jnp.sum(jnp.abs(g) ** norm_type) for g in leaves) ** (1 / norm_type)


def clip_grad_norm(max_norm: float, norm_type: float = 2.0, mask: Any = None
                   ) -> optax.GradientTransformation:
    """Scale all gradients by ``min(max_norm / (norm + 1e-6), 1)``; ``mask`` picks the leaves normed.

    ``mask`` is a pytree of bools with the structure of the params (True: counted), or a
    function of the gradient tree returning one.
    """
    if max_norm <= 0:
        raise ValueError(f'grad_clip.max_norm must be > 0, got {max_norm!r} (config key '
                         'optimizer_config.grad_clip.max_norm)')
    norm_type = float(norm_type)
    if norm_type <= 0:
        raise ValueError(f'grad_clip.norm_type must be > 0 or inf, got {norm_type!r} (config key '
                         'optimizer_config.grad_clip.norm_type)')

    def init_fn(params: optax.Params) -> optax.EmptyState:
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        del params
        total = global_norm(updates, norm_type, mask)
        coef = jnp.minimum(max_norm / (total + EPS), 1.0)
        return jax.tree.map(lambda g: (g * coef).astype(g.dtype), updates), state

    return optax.GradientTransformation(init_fn, update_fn)


def build_grad_clip(grad_clip: Mapping[str, Any] | None, mask: Any = None
                    ) -> optax.GradientTransformation | None:
    """The clip transform for ``grad_clip`` (0.x ``optimizer_config.grad_clip``, 1.x
    ``optim_wrapper.clip_grad``) or None when it is None."""
    if grad_clip is None:
        return None
    if not isinstance(grad_clip, Mapping):
        raise TypeError(f'optimizer_config.grad_clip must be a dict like dict(max_norm=40, norm_type=2) '
                        f'or None, got {grad_clip!r}')
    unknown = set(grad_clip) - {'max_norm', 'norm_type', 'error_if_nonfinite', 'foreach'}
    if unknown or 'max_norm' not in grad_clip:
        raise ValueError(f'optimizer_config.grad_clip takes max_norm (required) and norm_type; got '
                         f'{sorted(grad_clip)}')
    if grad_clip.get('error_if_nonfinite'):
        raise ValueError('optimizer_config.grad_clip.error_if_nonfinite=True cannot raise inside a jitted '
                         'step; remove it (the engine stops on a non-finite loss)')
    return clip_grad_norm(grad_clip['max_norm'], grad_clip.get('norm_type', 2.0), mask)
