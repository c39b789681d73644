# TSN on the synthetic appearance set (generated into data/synthetic on first use): a red
# disk, green square, blue triangle or yellow cross drifts over a textured background.
# The README's first command: generates the data, trains, evaluates every epoch, keeps the
# best checkpoint and writes logs to work_dirs/tsn_demo, in a few minutes on 2 CPU cores.
# ResNet-18 cut to its first two stages, 3 segments (TSN 1x1x3) of 32x32 frames, Adam.
_base_ = ['_base_/datasets/synthetic_appearance.py', '_base_/default_runtime.py']

num_segments = 3
model = dict(
    type='Recognizer2D',
    backbone=dict(
        type='ResNet',
        depth=18,
        pretrained=None,
        num_stages=2,
        out_indices=(1, ),
        strides=(1, 2),
        dilations=(1, 1),
        norm_eval=False),
    cls_head=dict(
        type='TSNHead',
        num_classes=4,
        in_channels=128,
        spatial_type='avg',
        consensus=dict(type='AvgConsensus', dim=1),
        dropout_ratio=0.2,
        init_std=0.01),
    test_cfg=dict(average_clips='prob'))

img_norm_cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_bgr=False)
train_pipeline = [
    dict(type='PyAVInit'),
    dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips=num_segments),
    dict(type='PyAVDecode'),
    dict(type='MultiScaleCrop', input_size=56, scales=(1, 0.875, 0.75), random_crop=False,
         max_wh_scale_gap=1),
    dict(type='Resize', scale=(32, 32), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='Normalize', **img_norm_cfg),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='Collect', keys=['imgs', 'label'], meta_keys=[]),
    dict(type='ToTensor', keys=['imgs', 'label']),
]
val_pipeline = [
    dict(type='PyAVInit'),
    dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips=num_segments, test_mode=True),
    dict(type='PyAVDecode'),
    dict(type='CenterCrop', crop_size=56),
    dict(type='Resize', scale=(32, 32), keep_ratio=False),
    dict(type='Normalize', **img_norm_cfg),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='Collect', keys=['imgs', 'label'], meta_keys=[]),
    dict(type='ToTensor', keys=['imgs']),
]
data = dict(
    videos_per_gpu=8,
    workers_per_gpu=2,
    train=dict(pipeline=train_pipeline),
    val=dict(pipeline=val_pipeline),
    test=dict(pipeline=val_pipeline))

# optimizer: Adam from scratch, one epoch of linear warmup, then cosine decay
optimizer = dict(type='Adam', lr=1e-3, weight_decay=1e-4)
optimizer_config = dict(grad_clip=None)
lr_config = dict(policy='CosineAnnealing', min_lr=0, warmup='linear', warmup_iters=25,
                 warmup_ratio=0.1)
total_epochs = 8

evaluation = dict(interval=1, metrics=['top_k_accuracy', 'mean_class_accuracy'], save_best='auto')
checkpoint_config = dict(interval=1, max_keep_ckpts=2)
log_config = dict(interval=5, hooks=[dict(type='TextLoggerHook')])
work_dir = './work_dirs/tsn_demo'
