"""Python API: load a recognizer from a config (and a converted checkpoint), run it.

.. code-block:: python

    from actionjax.apis import init_recognizer, inference_recognizer
    model = init_recognizer('configs/tsn.py', 'checkpoints/tsn_r50')   # or checkpoint=None
    logits = model.logits(x)     # x: float32, normalised, (N, V, H, W, C)
    scores = model.scores(x)     # softmax averaged over the clips/crops of a sample
    result = inference_recognizer(model, 'video.mp4')   # [(class index, score), ...] top 5

Each function compiles once per input shape.
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

from actionjax.models import build_model

__all__ = ['LoadedRecognizer', 'inference_recognizer', 'init_recognizer']


def _load_config(config: str | os.PathLike | Mapping[str, Any]) -> Mapping[str, Any]:
    from actionjax.config import Config
    from actionjax.runtime_config import runtime_config

    return runtime_config(config if isinstance(config, Mapping) else Config.fromfile(os.fspath(config)))


def dummy_input(model: nn.Module, size: int = 64) -> np.ndarray:
    """A small uint8 batch of the shape the model takes, for ``init``/``eval_shape``.

    2D recognizers get ``(1, V, size, size, C)`` with V = the head's or backbone's
    ``num_segments`` (TSM needs whole clips), else 1; a model with a ``dummy_input``
    method (3D recognizers: one clip) says itself.
    """
    if callable(getattr(model, 'dummy_input', None)):
        return model.dummy_input(size)
    views = (getattr(model.cls_head, 'num_segments', None)
             or getattr(model.backbone, 'num_segments', None) or 1)
    channels = getattr(model.backbone, 'in_channels', 3)
    return np.zeros((1, views, size, size, channels), np.uint8)


@dataclasses.dataclass
class LoadedRecognizer:
    """A recognizer with its variables and config, callable on arrays.

    ``logits``/``scores`` take float32 inputs that are already normalised (mean/std of
    the config), ``predict`` takes raw uint8 frames and normalises on the device.
    """

    cfg: Mapping[str, Any]
    model: nn.Module
    variables: dict[str, Any]

    @functools.cached_property
    def _logits(self) -> Any:
        return jax.jit(lambda v, x: self.model.apply(v, x, train=False, normalize=False, method='logits'))

    @functools.cached_property
    def _cls_scores(self) -> Any:
        return jax.jit(lambda v, x: self.model.apply(v, x, train=False, normalize=False,
                                                     method='forward_head'))

    @functools.cached_property
    def _predict(self) -> Any:
        return jax.jit(lambda v, x: self.model.apply(v, x, train=False))

    def logits(self, x: Any) -> np.ndarray:
        """Raw head output before softmax for normalised ``x``.

        2D recognizers: ``(N, num_classes)`` with the segment consensus applied; a TSM
        input holding K > 1 clips/crops per sample gives ``(N, K, num_classes)``.
        """
        return np.asarray(self._logits(self.variables, jnp.asarray(x, jnp.float32)))

    def scores(self, x: Any) -> np.ndarray:
        """Softmax probabilities averaged over the clips/crops of each sample, ``(N, num_classes)``."""
        cls_scores = self._cls_scores(self.variables, jnp.asarray(x, jnp.float32))
        return np.asarray(jax.nn.softmax(cls_scores, axis=-1).mean(axis=1))

    def predict(self, imgs: Any) -> np.ndarray:
        """Test output for raw (uint8) ``imgs``: normalised on the device, views averaged as
        the config's ``average_clips`` says (MMAction2's ``model(return_loss=False)``)."""
        return np.asarray(self._predict(self.variables, jnp.asarray(imgs)))


def init_recognizer(config: str | os.PathLike | Mapping[str, Any],
                    checkpoint: str | os.PathLike | None = None, *, seed: int = 0) -> LoadedRecognizer:
    """Build the config's recognizer with the variables of ``checkpoint``.

    ``checkpoint`` is a converted actionjax checkpoint directory (``python -m
    convert.mmaction2``) or a training checkpoint (``work_dir/epoch_N``, ``work_dir/best``,
    ``work_dir/latest``); it must match the model exactly, otherwise the error lists the
    missing, unexpected and mis-shaped variables. ``None`` gives a randomly initialised
    model (``seed``); the backbone's ``pretrained`` is not loaded, as in MMAction2.
    """
    cfg = _load_config(config)
    model = build_model(cfg)
    sample = dummy_input(model)
    rngs = {'params': jax.random.key(seed), 'dropout': jax.random.key(seed + 1)}
    init = functools.partial(model.init, rngs, train=False)
    if checkpoint is None:
        variables = jax.jit(init)(sample)
    else:
        from actionjax.engine.build import checkpoint_variables  # knows both checkpoint kinds

        loaded = checkpoint_variables(model, {'imgs': sample}, checkpoint)
        variables = jax.tree_util.tree_map(jnp.asarray, loaded)
    return LoadedRecognizer(cfg=cfg, model=model, variables=dict(variables))


def _test_pipeline(cfg: Mapping[str, Any]) -> list[Any]:
    """The test pipeline: the test dataset's (0.x ``data.test.pipeline``, 1.x
    ``test_dataloader.dataset.pipeline``), else the file's top-level ``test_pipeline``."""
    from actionjax.runtime_config import data_config

    test = data_config(cfg).get('test') or {}
    candidates = ((test.get('dataset') or {}).get('pipeline'),
                  (getattr(cfg, 'source', None) or cfg).get('test_pipeline'))
    for pipeline in candidates:
        if pipeline:
            return [dict(step) for step in pipeline]
    from actionjax.config import ConfigKeyError

    raise ConfigKeyError('the config has no test pipeline; set data.test.pipeline (0.x) or '
                         'test_dataloader.dataset.pipeline (1.x)')


def _video_pipeline(pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Decode a video file whatever the config decodes: a video pipeline keeps its decoder, a
    rawframes one gets ``PyAVInit`` and ``PyAVDecode`` (MMAction2 0.x swaps in OpenCV)."""
    if any(s['type'] in ('DecordInit', 'PyAVInit') for s in pipeline):
        return pipeline
    steps = [s for s in pipeline if not s['type'].endswith('Init')]
    steps = [dict(type='PyAVDecode') if s['type'].endswith('Decode') else s for s in steps]
    return [dict(type='PyAVInit'), *steps]


def inference_recognizer(model: LoadedRecognizer, video: str | os.PathLike | Mapping[str, Any],
                         topk: int = 5) -> list[tuple[int, float]]:
    """Top-``topk`` ``(class index, score)`` pairs for one video, best first.

    ``video`` is a video file (decoded with decord through the config's test pipeline)
    or a results dict to feed the test pipeline as is. Scores are the model's test
    output (views averaged as ``average_clips`` says; views left unaveraged by
    ``average_clips=None`` are averaged here).
    """
    from actionjax.data.pipelines import Compose

    pipeline = _test_pipeline(model.cfg)
    if isinstance(video, Mapping):
        results = dict(video)
    else:
        path = os.fspath(video)
        if not os.path.isfile(path):
            raise FileNotFoundError(f'video {path!r} does not exist')
        results = dict(filename=path, label=-1, start_index=0, modality='RGB')
        pipeline = _video_pipeline(pipeline)
    results = Compose(pipeline, key_path='data.test.pipeline')(results)
    if results is None:
        raise RuntimeError(f'the test pipeline dropped {video!r}')
    scores = model.predict(np.asarray(results['imgs'])[None])[0]
    if scores.ndim == 2:  # (K, num_classes) left unaveraged by average_clips=None
        scores = scores.mean(axis=0)
    order = np.argsort(-scores, kind='stable')[:topk]
    return [(int(i), float(scores[i])) for i in order]
