# C3D with I3D's head on its fc7 feature (MMAction2 1.2.0:
# configs/_base_/models/c3d_sports1m_pretrained.py), UCF-101 classes.
model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='C3D',
        # MMAction2 starts from Sports-1M weights it downloads (pretrained='https://download.openmmlab.com/
        # mmaction/recognition/c3d/c3d_sports1m_pretrain_20201016-dcc47ddc.pth'). actionjax never
        # downloads: None trains from scratch; a local actionjax checkpoint folder of a C3D recognizer
        # (python -m convert.mmaction2) initialises the backbone from its backbone.
        pretrained=None,
        style='pytorch',
        conv_cfg=dict(type='Conv3d'),
        norm_cfg=None,
        act_cfg=dict(type='ReLU'),
        dropout_ratio=0.5,
        init_std=0.005),
    cls_head=dict(
        type='I3DHead',
        num_classes=101,
        in_channels=4096,
        spatial_type=None,
        dropout_ratio=0.5,
        init_std=0.01,
        average_clips='prob'),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[104, 117, 128],
        std=[1, 1, 1],
        format_shape='NCTHW'),
    train_cfg=None,
    test_cfg=None)
