"""A torch ``nn.Sequential`` of convolutions and activations, with its parameter names.

MMAction2 writes small blocks as ``nn.Sequential(nn.Conv1d(...), nn.ReLU(), ...)``; their
state_dict keys are ``<block>.<index>.weight``. ``Sequential(layers=(Conv(...), 'relu',
...))`` names each conv by its index in ``layers``, so the same keys come out (see
``param_names``), and the activations take the indices in between, as in torch.

Convolutions are channels-last and take torch's ``padding`` (symmetric, explicit) and
``groups``; weights and biases start from torch's default initialisation.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import flax.linen as nn
import jax

from actionjax.models.common.torch_init import torch_bias_init, torch_kernel_init

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {'relu': nn.relu, 'sigmoid': nn.sigmoid}


@dataclasses.dataclass(frozen=True)
class Conv:
    """An ``nn.ConvNd(in, features, kernel_size, padding=padding, groups=groups)``; N = len(kernel_size)."""

    features: int
    kernel_size: tuple[int, ...]
    padding: int = 0
    groups: int = 1


class Sequential(nn.Module):
    """Apply ``layers`` in order: ``Conv`` specs become ``nn.Conv`` named by index; strings activate."""

    layers: tuple[Conv | str, ...]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for index, layer in enumerate(self.layers):
            if isinstance(layer, str):
                x = ACTIVATIONS[layer](x)
                continue
            fan_in = x.shape[-1] // layer.groups * math.prod(layer.kernel_size)
            x = nn.Conv(layer.features, layer.kernel_size, padding=((layer.padding, layer.padding),)
                        * len(layer.kernel_size), feature_group_count=layer.groups,
                        kernel_init=torch_kernel_init, bias_init=torch_bias_init(fan_in), name=str(index))(x)
        return x
