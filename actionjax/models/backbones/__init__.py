"""Backbones, registered in ``BACKBONES`` on import."""

from actionjax.models.backbones.c3d import C3D
from actionjax.models.backbones.mvit import MViT
from actionjax.models.backbones.resnet import ResNet
from actionjax.models.backbones.resnet2plus1d import ResNet2Plus1d
from actionjax.models.backbones.resnet3d import ResNet3d
from actionjax.models.backbones.resnet3d_csn import ResNet3dCSN
from actionjax.models.backbones.resnet3d_slowfast import ResNet3dSlowFast
from actionjax.models.backbones.resnet3d_slowonly import ResNet3dSlowOnly
from actionjax.models.backbones.resnet_tsm import ResNetTSM
from actionjax.models.backbones.swin import SwinTransformer3D
from actionjax.models.backbones.timesformer import TimeSformer
from actionjax.models.backbones.uniformerv2 import UniFormerV2
from actionjax.models.backbones.vit_mae import VisionTransformer
from actionjax.models.backbones.x3d import X3D

__all__ = ['C3D', 'MViT', 'ResNet', 'ResNet2Plus1d', 'ResNet3d', 'ResNet3dCSN', 'ResNet3dSlowFast',
           'ResNet3dSlowOnly', 'ResNetTSM', 'SwinTransformer3D', 'TimeSformer', 'UniFormerV2',
           'VisionTransformer', 'X3D']
