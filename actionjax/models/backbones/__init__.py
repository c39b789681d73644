"""Backbones, registered in ``BACKBONES`` on import."""

from actionjax.models.backbones.resnet import ResNet
from actionjax.models.backbones.resnet3d import ResNet3d
from actionjax.models.backbones.resnet_tsm import ResNetTSM

__all__ = ['ResNet', 'ResNet3d', 'ResNetTSM']
