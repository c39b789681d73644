# TSM with a ResNet-50 backbone (MMAction2 0.24.1: configs/_base_/models/tsm_r50.py).
model = dict(
    type='Recognizer2D',
    backbone=dict(
        type='ResNetTSM',
        # MMAction2 has pretrained='torchvision://resnet50', which downloads. actionjax never
        # downloads: convert a local torchvision file once,
        #   python -m convert.torchvision resnet50-0676ba61.pth --out checkpoints/resnet50_tv
        # and set pretrained='checkpoints/resnet50_tv' (or --cfg-options
        # model.backbone.pretrained=checkpoints/resnet50_tv). None trains from scratch.
        pretrained=None,
        depth=50,
        norm_eval=False,
        shift_div=8),
    cls_head=dict(
        type='TSMHead',
        num_classes=400,
        in_channels=2048,
        spatial_type='avg',
        consensus=dict(type='AvgConsensus', dim=1),
        dropout_ratio=0.5,
        init_std=0.001,
        is_shift=True),
    # model training and testing settings
    train_cfg=None,
    test_cfg=dict(average_clips='prob'))
