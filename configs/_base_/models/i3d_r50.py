# I3D with a ResNet-50 inflated from 2D (MMAction2 1.2.0: configs/_base_/models/i3d_r50.py).
model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='ResNet3d',
        pretrained2d=True,
        # MMAction2 has pretrained='torchvision://resnet50', which downloads. actionjax never
        # downloads: convert a local torchvision file once,
        #   python -m convert.torchvision resnet50-0676ba61.pth --out checkpoints/resnet50_tv
        # and set pretrained='checkpoints/resnet50_tv'; its 2D kernels are inflated in time
        # (pretrained2d=True) as MMAction2 does. None trains from scratch.
        pretrained=None,
        depth=50,
        conv1_kernel=(5, 7, 7),
        conv1_stride_t=2,
        pool1_stride_t=2,
        conv_cfg=dict(type='Conv3d'),
        norm_eval=False,
        inflate=((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0)),
        zero_init_residual=False),
    cls_head=dict(
        type='I3DHead',
        num_classes=400,
        in_channels=2048,
        spatial_type='avg',
        dropout_ratio=0.5,
        init_std=0.01,
        average_clips='prob'),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))
