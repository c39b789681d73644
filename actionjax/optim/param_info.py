"""What each parameter is: its MMAction2 name, the module type that owns it, frozen or not.

Param-wise rules in MMAction2 depend on the module a parameter belongs to (a norm layer's
bias gets no ``bias_lr_mult``, a depthwise conv's weight gets ``dwconv_decay_mult``), not
on its name. A params pytree does not say which Flax module made a leaf, so the model is
traced once: ``flax.linen.intercept_methods`` records every module that runs during
``jax.eval_shape(model.init, ...)`` (abstract evaluation: no compile, no FLOPs, no memory),
in call order, which for MMAction2's models is the torch module registration order
(``TSMOptimizerConstructor`` needs "first conv" and "last fc").

Names are MMAction2's (``backbone.layer1.0.conv1.conv.weight``, see
actionjax/models/common/param_names.py), so ``custom_keys`` written for MMAction2 match.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from actionjax.models.common.param_names import torch_name

NORM_TYPES = (nn.BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm)  # mmcv: _BatchNorm, _InstanceNorm,
CONV_TYPES = (nn.Conv, nn.ConvTranspose)                                  # GroupNorm, LayerNorm; _ConvNd
LINEAR_TYPES = (nn.Dense,)


@dataclasses.dataclass(frozen=True)
class ParamInfo:
    """One parameter leaf: where it is, what owns it, whether it trains."""

    name: str                    # MMAction2 dotted name: 'backbone.conv1.conv.weight'
    path: tuple[str, ...]        # path in variables['params']: ('backbone', 'conv1', 'conv', 'kernel')
    shape: tuple[int, ...]
    module_type: type | None     # class of the Flax module owning the leaf (None: not seen in the trace)
    frozen: bool = False         # under model.frozen_prefixes(): no gradient, no update, no state
    kernel_shape: tuple[int, ...] | None = None  # the owning module's kernel (a conv's bias needs it)

    @property
    def module(self) -> str:
        """Dotted name of the owning module ('' for a parameter of the root module)."""
        return '.'.join(self.path[:-1])

    @property
    def leaf(self) -> str:
        """The torch attribute name: 'weight' (kernel, scale, embedding) or 'bias'."""
        return self.name.rsplit('.', 1)[-1]

    def _is(self, types: tuple[type, ...]) -> bool:
        return self.module_type is not None and issubclass(self.module_type, types)

    @property
    def is_norm(self) -> bool:
        return self._is(NORM_TYPES)

    @property
    def is_conv(self) -> bool:
        return self._is(CONV_TYPES)

    @property
    def is_linear(self) -> bool:
        return self._is(LINEAR_TYPES)

    @property
    def is_dwconv(self) -> bool:
        """mmcv 1.x: ``isinstance(m, nn.Conv2d) and m.in_channels == m.groups``.

        A Flax 2D conv kernel is (kh, kw, in_channels / groups, out), so in == groups is
        a kernel with one input channel per group. Like mmcv, only 2D convs count.
        """
        kernel = self.kernel_shape
        return self._is((nn.Conv,)) and kernel is not None and len(kernel) == 4 and kernel[2] == 1


def trace_module_types(model: nn.Module, sample_imgs: Any, rngs: Mapping[str, Any] | None = None,
                       **init_kwargs: Any) -> tuple[dict[tuple[str, ...], type], Any]:
    """Abstractly initialise ``model`` and record ``{module path: module class}`` in call order.

    Returns the record and the abstract variables (ShapeDtypeStructs). ``init_kwargs``
    default to ``train=False`` when ``model.__call__`` takes ``train`` (the recognizer contract);
    ``method='predict'`` with a batch dict traces any model kind.
    """
    if rngs is None:
        rngs = {'params': jax.random.key(0), 'dropout': jax.random.key(1)}
    if ('train' not in init_kwargs and 'method' not in init_kwargs
            and 'train' in inspect.signature(type(model).__call__).parameters):
        init_kwargs['train'] = False
    seen: dict[tuple[str, ...], type] = {}

    def record(next_fun, args, kwargs, context):
        module = context.module
        if module.scope is not None:  # methods also run on unbound modules (e.g. config checks)
            seen.setdefault(tuple(module.path), type(module))
        return next_fun(*args, **kwargs)

    imgs = jax.tree.map(lambda x: jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)), sample_imgs)
    with nn.intercept_methods(record):
        variables = jax.eval_shape(lambda x: model.init(rngs, x, **init_kwargs), imgs)
    return seen, variables


def frozen_prefixes(model: nn.Module) -> tuple[str, ...]:
    """``model.frozen_prefixes()`` (frozen_stages, partial_bn) or () for models without it."""
    method = getattr(model, 'frozen_prefixes', None)
    return tuple(method()) if callable(method) else ()


def describe_params(model: nn.Module, variables: Mapping[str, Any] | None, sample_imgs: Any,
                    **init_kwargs: Any) -> list[ParamInfo]:
    """A ``ParamInfo`` for every leaf of ``variables['params']``, in the model's call order.

    ``variables`` may be None (the abstract ones from the trace are used) or real arrays
    (their leaves must match the traced ones). ``sample_imgs`` is any batch of the
    model's input shape (an array or a ShapeDtypeStruct); its values are never read.
    """
    module_types, abstract = trace_module_types(model, sample_imgs, **init_kwargs)
    params = abstract['params'] if variables is None else variables['params']
    prefixes = frozen_prefixes(model)
    order = {path: i for i, path in enumerate(module_types)}
    leaves = [(tuple(str(getattr(k, 'key', k)) for k in key_path), tuple(jnp.shape(leaf)))
              for key_path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]]
    kernels = {path[:-1]: shape for path, shape in leaves if path[-1] == 'kernel'}
    infos = []
    for path, shape in leaves:
        name = torch_name(path)
        infos.append(ParamInfo(
            name=name, path=path, shape=shape, module_type=module_types.get(path[:-1]),
            frozen=any(name.startswith(p) for p in prefixes), kernel_shape=kernels.get(path[:-1])))
    # Torch's order: modules by first call (not alphabetical), then weight before bias.
    leaf_rank = {'weight': 0, 'bias': 1}
    infos.sort(key=lambda info: (order.get(info.path[:-1], len(order)), leaf_rank.get(info.leaf, 2)))
    return infos


def name_tree(params: Any, values: Mapping[str, Any]) -> Any:
    """A pytree like ``params`` holding ``values[MMAction2 name]`` at each leaf (e.g. group labels)."""
    def lookup(key_path, _):
        return values[torch_name(tuple(str(getattr(k, 'key', k)) for k in key_path))]
    return jax.tree_util.tree_map_with_path(lookup, params)
