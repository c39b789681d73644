"""torch's ``nn.ModuleList`` as a naming level, so Flax paths spell MMAction2's keys.

MMAction2's transformers keep their blocks in ``ModuleList``s, which put a level into
every state_dict key (``layers.0.blocks.1.attn.qkv.weight``) without owning parameters.
Flax names a submodule after its parent, so that level has to be a module too.
``blocks(make, *args)`` builds ``make()`` inside the ``ModuleList`` (so it becomes a
child of it) and calls it on ``args``::

    blocks = ModuleList(name='blocks')
    for i in range(depth):
        x = blocks(functools.partial(Block, dims, name=str(i)), x, train)

Each call adds the next child; a ``ModuleList`` never holds variables of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn


class ModuleList(nn.Module):
    """A parameterless module whose children are the modules built through it."""

    @nn.compact
    def __call__(self, make: Callable[[], nn.Module], *args: Any, **kwargs: Any) -> Any:
        return make()(*args, **kwargs)
