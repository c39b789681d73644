"""Building blocks shared by models: torch-equivalent conv/norm/pool, parameter names."""

from actionjax.models.common.conv_module import ConvModule, max_pool, torch_padding
from actionjax.models.common.norm import BatchNorm

__all__ = ['BatchNorm', 'ConvModule', 'max_pool', 'torch_padding']
