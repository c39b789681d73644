"""UniFormer's head (UniFormerV2's too): dropout and ``fc_cls`` on the backbone's feature vector."""

from __future__ import annotations

from typing import Any

from actionjax.models.heads.timesformer_head import TimeSformerHead
from actionjax.registry import HEADS


@HEADS.register_module()
class UniFormerHead(TimeSformerHead):
    """Class head; arguments as MMAction2's ``UniFormerHead`` (``x``: ``(B, in_channels)``).

    ``channel_map`` (loading a head trained on another label set through a class index
    map) is not supported: convert the whole checkpoint instead.
    """

    init_std: float = 0.02
    dropout_ratio: float = 0.0
    channel_map: Any = None

    def __post_init__(self) -> None:
        if self.channel_map is not None:
            raise NotImplementedError('cls_head.channel_map is not supported; convert a checkpoint of the '
                                      'target classes with python -m convert.mmaction2 instead')
        super().__post_init__()
