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
``describe_model`` gives the same record as a tree of ``ModuleInfo`` (torch's
``model.modules()``), which a constructor's ``add_params(params, module)`` walks.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterator, Mapping, Sequence
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


class ModuleInfo:
    """One module of the model as an optimizer constructor sees it: torch's ``nn.Module`` in
    ``model.modules()``, for rules written like MMAction2's ``add_params(params, module)``.

    ``name`` is the dotted MMAction2 name (``'backbone.layer1.0.conv1.conv'``, ``''`` for the
    model), ``type`` the Flax class (``flax.linen.Conv``; ``flax.linen.Module`` for a module
    the trace did not see run), ``parent`` the enclosing ``ModuleInfo`` (None for the model).
    Where torch code asks ``isinstance(m, nn.Conv2d)``, ask ``issubclass(m.type, nn.Conv)``;
    ``len(m._modules) == 0`` is ``not m.children()``.
    """

    def __init__(self, name: str, type: type, parent: ModuleInfo | None = None) -> None:  # noqa: A002
        self.name = name
        self.type = type
        self.parent = parent
        self._params: list[ParamInfo] = []
        self._children: list[ModuleInfo] = []

    def children(self) -> list[ModuleInfo]:
        """The direct submodules, in call order."""
        return list(self._children)

    def modules(self) -> Iterator[ModuleInfo]:
        """This module and every module below it, parents first, in call order (torch's ``modules()``)."""
        yield self
        for child in self._children:
            yield from child.modules()

    def parameters(self, recurse: bool = True) -> list[ParamInfo]:
        """The parameters of this module (weight before bias), then, with ``recurse``, those of
        every submodule in ``modules()`` order: torch's ``parameters()``."""
        if not recurse:
            return list(self._params)
        return [p for m in self.modules() for p in m._params]

    def __repr__(self) -> str:
        return (f'ModuleInfo({self.name!r}, {self.type.__name__}, {len(self._params)} params, '
                f'{len(self._children)} children)')


def module_tree(params: Sequence[ParamInfo],
                module_types: Mapping[tuple[str, ...], type] | None = None) -> ModuleInfo:
    """The ``ModuleInfo`` tree of ``params`` (the model at the root).

    ``module_types`` (``{module path: class}`` in call order, from ``trace_module_types``) adds
    the modules without parameters and the classes of modules that own none themselves;
    without it the tree holds the modules that own or contain parameters, each owner with
    its ``ParamInfo.module_type``. Modules come in call order, a module's own parameters
    weight first, then bias, then any others.
    """
    module_types = dict(module_types or {})
    root = ModuleInfo('', module_types.get((), nn.Module))
    nodes: dict[tuple[str, ...], ModuleInfo] = {(): root}

    def node(path: tuple[str, ...], kind: type | None = None) -> ModuleInfo:
        if path not in nodes:
            parent = node(path[:-1])
            found = ModuleInfo('.'.join(path), kind or module_types.get(path, nn.Module), parent)
            parent._children.append(found)
            nodes[path] = found
        return nodes[path]

    for path in module_types:
        node(path)
    for p in params:
        node(p.path[:-1], p.module_type)
    leaf_rank = {'weight': 0, 'bias': 1}
    for p in sorted(params, key=lambda p: leaf_rank.get(p.leaf, 2)):  # stable: others keep their order
        node(p.path[:-1], p.module_type)._params.append(p)
    return root


def describe_model(model: nn.Module, variables: Mapping[str, Any] | None, sample_imgs: Any,
                   **init_kwargs: Any) -> ModuleInfo:
    """The model as a ``ModuleInfo`` tree: every module that ran, in call order, with a
    ``ParamInfo`` for every leaf of ``variables['params']``.

    ``variables`` may be None (the abstract ones from the trace are used) or real arrays
    (their leaves must match the traced ones). ``sample_imgs`` is any batch of the
    model's input shape (an array or a ShapeDtypeStruct); its values are never read.
    Call order is torch's module registration order for MMAction2's models, which rules
    such as ``TSMOptimizerConstructor``'s "first conv" and "last fc" rely on.
    """
    module_types, abstract = trace_module_types(model, sample_imgs, **init_kwargs)
    params = abstract['params'] if variables is None else variables['params']
    prefixes = frozen_prefixes(model)
    leaves = [(tuple(str(getattr(k, 'key', k)) for k in key_path), tuple(jnp.shape(leaf)))
              for key_path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]]
    kernels = {path[:-1]: shape for path, shape in leaves if path[-1] == 'kernel'}
    infos = []
    for path, shape in leaves:
        name = torch_name(path)
        infos.append(ParamInfo(
            name=name, path=path, shape=shape, module_type=module_types.get(path[:-1]),
            frozen=any(name.startswith(p) for p in prefixes), kernel_shape=kernels.get(path[:-1])))
    return module_tree(infos, module_types)


def describe_params(model: nn.Module, variables: Mapping[str, Any] | None, sample_imgs: Any,
                    **init_kwargs: Any) -> list[ParamInfo]:
    """A ``ParamInfo`` for every leaf of ``variables['params']``, in the model's call order
    (``describe_model(...).parameters()``)."""
    return describe_model(model, variables, sample_imgs, **init_kwargs).parameters()


def name_tree(params: Any, values: Mapping[str, Any]) -> Any:
    """A pytree like ``params`` holding ``values[MMAction2 name]`` at each leaf (e.g. group labels)."""
    def lookup(key_path, _):
        return values[torch_name(tuple(str(getattr(k, 'key', k)) for k in key_path))]
    return jax.tree_util.tree_map_with_path(lookup, params)
