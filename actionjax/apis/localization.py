"""Python API for temporal localizers: load one from a config (and a checkpoint), run it.

.. code-block:: python

    from actionjax.apis import init_localizer, inference_localizer
    model = init_localizer('configs/bmn.py', 'checkpoints/bmn_400x100')   # or checkpoint=None
    out = model.raw(features)       # features (N, T, C) -> {'confidence_map': (N, 2, D, T), ...}
    proposals = inference_localizer(model, features[0], video_info)
    # [{'segment': [start_s, end_s], 'score': s}, ...], best first, as MMAction2's BMN.predict

``raw`` gives the arrays of MMAction2's ``model(inputs, mode='tensor')`` in its layout:
BMN ``{'confidence_map': (N, 2, D, T), 'start': (N, T), 'end': (N, T)}``, TEM
``{'output': (N, 3, T)}``, PEM ``{'output': (P, 1)}`` for ``(P, 32)`` proposal features.
Inputs are channels-last, as actionjax's loader gives them: ``(N, T, C)`` where MMAction2
takes ``(N, C, T)``. Each function compiles once per input shape.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from actionjax.models.localizers import PEM, TEM, build_localizer

__all__ = ['LoadedLocalizer', 'inference_localizer', 'init_localizer']


@dataclasses.dataclass
class LoadedLocalizer:
    """A localizer with its variables and config."""

    cfg: Mapping[str, Any]
    model: nn.Module
    variables: dict[str, Any]

    @functools.cached_property
    def _raw(self) -> Any:
        return jax.jit(lambda v, x: self.model.apply(v, x))

    def raw(self, x: Any) -> dict[str, np.ndarray]:
        """The model's raw outputs for ``x`` (see the module docstring), as numpy arrays."""
        out = self._raw(self.variables, jnp.asarray(x, jnp.float32))
        return {key: np.asarray(value) for key, value in out.items()}


def _load_config(config: str | os.PathLike | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(config, Mapping):
        return config
    from actionjax.config import Config

    return Config.fromfile(os.fspath(config))


def init_localizer(config: str | os.PathLike | Mapping[str, Any],
                   checkpoint: str | os.PathLike | None = None, *, seed: int = 0) -> LoadedLocalizer:
    """Build the config's localizer with the variables of ``checkpoint``.

    ``checkpoint`` is a converted actionjax checkpoint directory (``python -m
    convert.mmaction2 bmn.pth --config configs/bmn.py --out DIR``) or a training checkpoint
    (``work_dir/epoch_N``, ``work_dir/best_...``); it must match the model exactly,
    otherwise the error lists the missing, unexpected and mis-shaped variables. ``None``
    gives randomly initialised weights (``seed``).
    """
    cfg = _load_config(config)
    if 'model' not in cfg:
        raise KeyError('the config has no "model" key; init_localizer takes a whole config '
                       '(e.g. configs/bmn.py) or a dict with model=dict(type="BMN", ...)')
    model = build_localizer(cfg['model'])
    init = functools.partial(model.init, {'params': jax.random.key(seed)})
    if checkpoint is None:
        variables = jax.jit(init)(model.example_input())
    else:
        from actionjax.engine.build import read_variables  # converted and training checkpoints alike
        from actionjax.models.checkpoint_io import check_variables

        expected = jax.eval_shape(init, model.example_input())
        loaded = read_variables(checkpoint)
        loaded = {k: v for k, v in loaded.items() if v or k == 'params'}  # no batch_stats: none to check
        check_variables(dict(expected), loaded, source=f'checkpoint {os.fspath(checkpoint)}')
        variables = jax.tree_util.tree_map(jnp.asarray, loaded)
    return LoadedLocalizer(cfg=cfg, model=model, variables=dict(variables))


def inference_localizer(model: LoadedLocalizer, features: Any, video_info: Mapping[str, Any],
                        proposals: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """One video's proposals in seconds, MMAction2's ``proposal_list``, best first.

    Args:
        model: from ``init_localizer``.
        features: BMN: the video's features ``(T, C)``; PEM: its proposals' BSP features
            ``(P, 32)``.
        video_info: MMAction2's keys: ``duration_second`` and ``duration_frame`` are used
            (``video_name``, ``feature_frame`` may be there too).
        proposals: PEM only: the proposals' ``tmin``, ``tmax``, ``tmin_score`` and
            ``tmax_score``, each ``(P,)`` (BSN's PGM output).
    """
    features = np.asarray(features, np.float32)
    if isinstance(model.model, TEM):
        raise TypeError("TEM makes no proposals: its output (model.raw(features)['output']) is the input "
                        "of BSN's proposal generation (PGM)")
    if isinstance(model.model, PEM):
        if proposals is None:
            raise ValueError('PEM scores given proposals: pass proposals=dict(tmin=..., tmax=..., '
                             'tmin_score=..., tmax_score=...)')
        sample = {key: np.asarray(proposals[key], np.float32)
                  for key in ('tmin', 'tmax', 'tmin_score', 'tmax_score')}
        sample['num_instances'] = np.int32(len(features))
        prediction = {'pem_output': model.raw(features)['output'][:, 0]}
    else:
        sample = {}
        prediction = {key: value[0] for key, value in model.raw(features[None]).items()}
    return model.model.proposals(prediction, sample, video_info)
