# I3D on the synthetic motion set: a textured square slides left, right, up or down.
# Single frames look alike for every class (TSN stays near chance, configs/tsn_demo_motion.py);
# 3D convolutions see the motion: 98.75% val top-1 after the 8 epochs (about 15 minutes on 2
# busy CPU cores). A ResNet3d-18 cut to its first two stages at half width, one clip of 8
# frames (every 2nd) of 32x32 (the 64x64 videos are cropped and downscaled), Adam.
_base_ = ['_base_/datasets/synthetic_motion.py', '_base_/default_runtime.py']

model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='ResNet3d',
        depth=18,
        pretrained=None,
        pretrained2d=False,
        num_stages=2,
        base_channels=32,
        out_indices=(1, ),
        spatial_strides=(1, 2),
        temporal_strides=(1, 2),
        dilations=(1, 1),
        conv1_kernel=(3, 7, 7),
        conv1_stride_s=1,
        with_pool2=False,
        inflate=(1, 1),
        norm_eval=False,
        zero_init_residual=False),
    cls_head=dict(
        type='I3DHead',
        num_classes=4,
        in_channels=64,
        spatial_type='avg',
        dropout_ratio=0.2,
        init_std=0.01,
        average_clips='prob'))

img_norm_cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_bgr=False)
train_pipeline = [
    dict(type='PyAVInit'),
    dict(type='SampleFrames', clip_len=8, frame_interval=2, num_clips=1),
    dict(type='PyAVDecode'),
    dict(type='MultiScaleCrop', input_size=56, scales=(1, 0.875, 0.75), random_crop=False,
         max_wh_scale_gap=1),
    dict(type='Resize', scale=(32, 32), keep_ratio=False),
    # No Flip: a mirrored clip moving left is a clip moving right, with the wrong label.
    dict(type='Normalize', **img_norm_cfg),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='Collect', keys=['imgs', 'label'], meta_keys=[]),
    dict(type='ToTensor', keys=['imgs', 'label']),
]
val_pipeline = [
    dict(type='PyAVInit'),
    dict(type='SampleFrames', clip_len=8, frame_interval=2, num_clips=1, test_mode=True),
    dict(type='PyAVDecode'),
    dict(type='CenterCrop', crop_size=56),
    dict(type='Resize', scale=(32, 32), keep_ratio=False),
    dict(type='Normalize', **img_norm_cfg),
    dict(type='FormatShape', input_format='NCTHW'),
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
work_dir = './work_dirs/i3d_demo'
