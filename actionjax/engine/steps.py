"""The jitted training and evaluation steps.

``make_train_step`` and ``make_eval_step`` close over the model and optimizer and
return functions compiled once per input shape. The state is donated: XLA reuses
its buffers for the new state, so a step needs memory for one copy of the model,
not two. Under a ``Mesh`` the batch arrives sharded on its first axis and the
state replicated; jit inserts the gradient all-reduce and BatchNorm computes its
statistics over the global batch, exactly as on one device.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding

from actionjax.engine.state import TrainState

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]


def total_loss(losses: dict[str, jax.Array]) -> jax.Array:
    """Sum of the entries whose key contains 'loss', as MMAction2's ``_parse_losses``."""
    return sum((jnp.mean(v) for k, v in losses.items() if 'loss' in k), jnp.zeros((), jnp.float32))


def batch_topk(logits: jax.Array, labels: jax.Array, topk: tuple[int, ...] = (1, 5)) -> Metrics:
    """``top{k}_acc`` of integer labels on one batch (k capped at the number of classes)."""
    num_classes = logits.shape[-1]
    ranks = jnp.sum(logits > jnp.take_along_axis(logits, labels[:, None], axis=-1), axis=-1)
    return {f'top{k}_acc': jnp.mean(ranks < min(k, num_classes)) for k in topk}


def make_train_step(model: Any, tx: optax.GradientTransformation,
                    state_sharding: NamedSharding | None = None,
                    batch_sharding: NamedSharding | None = None,
                    rng_names: tuple[str, ...] = ('dropout',)) -> Callable[[TrainState, Batch],
                                                                          tuple[TrainState, Metrics]]:
    """``train_step(state, batch) -> (state, metrics)`` under jit, donating ``state``.

    ``batch`` holds ``imgs`` and ``label``; metrics are device scalars (every loss
    term, ``loss``, ``top1_acc``/``top5_acc`` for integer labels) that the loop
    fetches only when it logs.
    """

    def train_step(state: TrainState, batch: Batch) -> tuple[TrainState, Metrics]:
        rngs = state.step_rngs(rng_names)

        def loss_fn(params: Any) -> tuple[jax.Array, tuple[dict, jax.Array, dict]]:
            variables = {'params': params, 'batch_stats': state.batch_stats}
            logits, updates = model.apply(variables, batch['imgs'], train=True, rngs=rngs,
                                          mutable=['batch_stats'])
            losses = model.apply(variables, logits, batch['label'], method='loss')
            return total_loss(losses), (losses, logits, updates)

        (loss, (losses, logits, updates)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        param_updates, opt_state = tx.update(grads, state.opt_state, state.params)
        new_state = state.replace(
            step=state.step + 1,
            params=optax.apply_updates(state.params, param_updates),
            batch_stats=updates.get('batch_stats', state.batch_stats),
            opt_state=opt_state)
        metrics = {k: jnp.mean(v) for k, v in losses.items()}
        metrics['loss'] = loss
        if jnp.issubdtype(batch['label'].dtype, jnp.integer) and batch['label'].ndim == 1:
            metrics.update({k: v for k, v in batch_topk(logits, batch['label']).items() if k not in metrics})
        return new_state, metrics

    if state_sharding is None:
        return jax.jit(train_step, donate_argnums=(0,))
    replicated = NamedSharding(state_sharding.mesh, jax.sharding.PartitionSpec())
    return jax.jit(train_step, donate_argnums=(0,), in_shardings=(state_sharding, batch_sharding),
                   out_shardings=(state_sharding, replicated))


def make_eval_step(model: Any, state_sharding: NamedSharding | None = None,
                   batch_sharding: NamedSharding | None = None) -> Callable[[dict, jax.Array], jax.Array]:
    """``eval_step(variables, imgs) -> scores`` under jit: test-mode forward with clip averaging.

    The scores keep the batch sharding; the caller gathers them to the host.
    """

    def eval_step(variables: dict, imgs: jax.Array) -> jax.Array:
        return model.apply(variables, imgs, train=False)

    if state_sharding is None:
        return jax.jit(eval_step)
    return jax.jit(eval_step, in_shardings=(state_sharding, batch_sharding), out_shardings=batch_sharding)
