"""The jitted training and evaluation steps, for any kind of model.

The model says what a step computes, as MMAction2 1.x's ``forward(mode=...)`` does:
``loss(batch)`` runs the training forward pass and returns the losses (and any scalar
metrics), ``predict(batch)`` returns per-sample predictions for the metrics. The engine
knows nothing else about the model, so recognizers and localizers share these steps.

``make_train_step`` and ``make_eval_step`` close over the model and optimizer and return
functions compiled once per input shape. The state is donated: XLA reuses its buffers for
the new state, so a step needs memory for one copy of the model, not two. Under a ``Mesh``
the batch arrives sharded on its first axis and the state replicated; jit inserts the
gradient all-reduce and BatchNorm computes its statistics over the global batch, exactly
as on one device.

Precision (``actionjax.precision``): both steps hand the model its parameters cast to the
model's compute dtype (``model.dtype``). Under bfloat16 mixed precision the state keeps
float32 master parameters, BatchNorm statistics and optimizer state; the cast sits inside
the differentiated function, so gradients come back in float32.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding

from actionjax.engine.state import TrainState
from actionjax.engine.trace_cache import cached_jit
from actionjax.optim import current_hyperparams
from actionjax.precision import cast_floating, compute_dtype

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]


def total_loss(losses: dict[str, jax.Array]) -> jax.Array:
    """Sum of the entries whose key contains 'loss', as MMAction2's ``_parse_losses``, in
    the losses' own dtype (float32, or float64 in a float64 run)."""
    terms = [jnp.mean(v) for k, v in losses.items() if 'loss' in k]
    return sum(terms[1:], terms[0]) if terms else jnp.zeros((), jnp.result_type(float))


def compute_params(model: Any, params: Any) -> Any:
    """``params`` in the model's compute dtype (bfloat16 under mixed precision); a no-op when
    they already are, as in float32 and float64 runs."""
    return cast_floating(params, compute_dtype(getattr(model, 'dtype', None)))


def applied_hyperparams(opt_state: Any) -> Metrics:
    """The lr and momentum each param group's last update applied (momentum when scheduled):
    ``lr`` / ``momentum`` for the 'default' group, ``lr/<group>`` / ``momentum/<group>`` else."""
    out = {}
    for name in ('lr', 'momentum'):
        for group, value in current_hyperparams(opt_state, name).items():
            out[name if group == 'default' else f'{name}/{group}'] = value
    return out


def make_train_step(model: Any, tx: optax.GradientTransformation,
                    state_sharding: NamedSharding | None = None,
                    batch_sharding: NamedSharding | None = None,
                    rng_names: tuple[str, ...] = ('dropout',), cache_key: str | None = None
                    ) -> Callable[[TrainState, Batch], tuple[TrainState, Metrics]]:
    """``train_step(state, batch) -> (state, metrics)`` under jit, donating ``state``.

    Metrics are device scalars the loop fetches only when it logs: every entry of the
    model's ``loss`` (losses and accuracies), ``loss`` (their total), and the lr and
    momentum each param group used in this step. With ``cache_key`` (what the model and
    optimizer were built from: the config, the schedule's length) the traced step is kept on
    disk for the next launch (``trace_cache.cached_jit``).
    """

    def train_step(state: TrainState, batch: Batch) -> tuple[TrainState, Metrics]:
        rngs = state.step_rngs(rng_names)

        def loss_fn(params: Any) -> tuple[jax.Array, tuple[dict, dict]]:
            variables = {'params': compute_params(model, params), 'batch_stats': state.batch_stats}
            losses, updates = model.apply(variables, batch, rngs=rngs, mutable=['batch_stats'], method='loss')
            return total_loss(losses), (losses, updates)

        (loss, (losses, updates)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        param_updates, opt_state = tx.update(grads, state.opt_state, state.params)
        new_state = state.replace(
            step=state.step + 1,
            params=optax.apply_updates(state.params, param_updates),
            batch_stats=updates.get('batch_stats', state.batch_stats),
            opt_state=opt_state)
        metrics = {k: jnp.mean(v) for k, v in losses.items()}
        metrics['loss'] = loss
        metrics.update(applied_hyperparams(opt_state))
        return new_state, metrics

    if state_sharding is None:
        return cached_jit(train_step, cache_key, donate_argnums=(0,))
    replicated = NamedSharding(state_sharding.mesh, jax.sharding.PartitionSpec())
    return cached_jit(train_step, cache_key, donate_argnums=(0,),
                      in_shardings=(state_sharding, batch_sharding),
                      out_shardings=(state_sharding, replicated))


def make_eval_step(model: Any, state_sharding: NamedSharding | None = None,
                   batch_sharding: NamedSharding | None = None, cache_key: str | None = None
                   ) -> Callable[[dict, Batch], dict]:
    """``eval_step(variables, batch) -> predictions`` under jit: the model's ``predict``.

    The predictions keep the batch sharding; the caller gathers them to the host. With
    ``cache_key`` (the config the model was built from) the traced step is kept on disk.
    """

    def eval_step(variables: dict, batch: Batch) -> dict:
        variables = dict(variables, params=compute_params(model, variables['params']))
        return model.apply(variables, batch, method='predict')

    if state_sharding is None:
        return cached_jit(eval_step, cache_key)
    return cached_jit(eval_step, cache_key, in_shardings=(state_sharding, batch_sharding),
                      out_shardings=batch_sharding)
