"""MMAction2's ``LearningRateDecayOptimizerConstructor``: layer-wise lr decay for ViT and MViT.

``paramwise_cfg=dict(decay_rate=0.75, decay_type='layer_wise', num_layers=L)``, as the
VideoMAE (AVA) and MaskFeat MViT recipes write it. Every parameter gets a layer id:

* 0 for ``backbone.cls_token`` / ``mask_token`` / ``pos_embed`` and ``backbone.patch_embed.*``;
* ``i + 1`` for ``backbone.blocks.{i}.*``;
* ``L + 1`` for everything else (the final norms, the head);

and learns at ``lr * decay_rate ** (L + 1 - layer_id)``: the head at the full lr, each
block below it ``decay_rate`` times slower. Weight decay is off for 1-D parameters and
biases, on for the rest (``paramwise_cfg``'s other keys play no part, as in MMAction2).

MMAction2 1.2.0 implements only ``decay_type='layer_wise'``, and only for backbones whose
class name has 'VisionTransformer' or 'MViT' (the two number their blocks
``backbone.blocks.{i}``); anything else is an error there and here.
"""

from __future__ import annotations

from typing import Any, ClassVar

from actionjax.config import ConfigKeyError
from actionjax.optim.constructors import DefaultOptimWrapperConstructor
from actionjax.optim.param_info import ModuleInfo
from actionjax.registry import OPTIMIZER_BUILDERS

EMBEDDINGS = ('backbone.cls_token', 'backbone.mask_token', 'backbone.pos_embed')


def layer_id(name: str, num_layers: int) -> int:
    """MMAction2's ``get_layer_id_for_vit`` / ``get_layer_id_for_mvit`` (the same rule)."""
    if name in EMBEDDINGS or name.startswith('backbone.patch_embed'):
        return 0
    if name.startswith('backbone.blocks'):
        return int(name.split('.')[2]) + 1
    return num_layers + 1


@OPTIMIZER_BUILDERS.register_module()
class LearningRateDecayOptimizerConstructor(DefaultOptimWrapperConstructor):
    """Layer-wise lr decay (``decay_rate``, ``num_layers``) with no decay on 1-D params and biases."""

    paramwise_keys: ClassVar[frozenset[str]] = frozenset({'decay_rate', 'decay_type', 'num_layers'})
    decay_types: ClassVar[tuple[str, ...]] = ('layer_wise',)

    def _validate_cfg(self) -> None:
        super()._validate_cfg()
        cfg = self.paramwise_cfg
        for key in ('decay_rate', 'num_layers'):
            if cfg.get(key) is None:
                raise ConfigKeyError(f'LearningRateDecayOptimizerConstructor needs '
                                     f'optimizer.paramwise_cfg.{key}, e.g. paramwise_cfg=dict('
                                     "decay_rate=0.75, decay_type='layer_wise', num_layers=12)")
        decay_type = cfg.get('decay_type', 'layer_wise')
        if decay_type not in self.decay_types:
            raise NotImplementedError(f"optimizer.paramwise_cfg.decay_type={decay_type!r}: MMAction2 1.2.0's "
                                      "LearningRateDecayOptimizerConstructor only supports 'layer_wise'")

    def add_params(self, params: list[dict[str, Any]], module: ModuleInfo) -> None:
        infos = module.parameters()
        if not any(p.name.startswith('backbone.blocks.') for p in infos):
            raise NotImplementedError('LearningRateDecayOptimizerConstructor numbers the layers of '
                                      'backbone.blocks.{i} (VisionTransformer, MViT), as MMAction2 1.2.0 '
                                      'does; this model has none. Use DefaultOptimWrapperConstructor')
        decay_rate = float(self.paramwise_cfg['decay_rate'])
        num_layers = int(self.paramwise_cfg['num_layers'])
        for p in infos:
            no_decay = len(p.shape) == 1 or p.name.endswith('.bias')
            lr_mult = decay_rate ** (num_layers - layer_id(p.name, num_layers) + 1)
            params.append({'params': [p], 'lr_mult': lr_mult, 'decay_mult': 0.0 if no_decay else 1.0})
