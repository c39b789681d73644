# TSN with a ResNet-50 backbone (MMAction2 0.24.1: configs/_base_/models/tsn_r50.py).
model = dict(
    type='Recognizer2D',
    backbone=dict(
        type='ResNet',
        # MMAction2 has pretrained='torchvision://resnet50', which downloads. actionjax never
        # downloads: convert a local torchvision file once,
        #   python -m convert.torchvision resnet50-0676ba61.pth --out checkpoints/resnet50_tv
        # and set pretrained='checkpoints/resnet50_tv' (or --cfg-options
        # model.backbone.pretrained=checkpoints/resnet50_tv). None trains from scratch.
        pretrained=None,
        depth=50,
        norm_eval=False),
    cls_head=dict(
        type='TSNHead',
        num_classes=400,
        in_channels=2048,
        spatial_type='avg',
        consensus=dict(type='AvgConsensus', dim=1),
        dropout_ratio=0.4,
        init_std=0.01),
    # model training and testing settings
    train_cfg=None,
    test_cfg=dict(average_clips=None))
