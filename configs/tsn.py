# TSN-R50, 1x1x3 segments, 100 epochs, Kinetics-400 from videos.
# MMAction2 0.24.1's tsn_r50_1x1x3_100e_kinetics400_rgb.py with its rawframes replaced by
# videos (as its tsn_r50_video_* recipes and 1.x's
# tsn_imagenet-pretrained-r50_8xb32-1x1x3-100e_kinetics400-rgb.py do); values unchanged.
# Videos are decoded with PyAVInit/PyAVDecode (MMAction2's recipes use DecordInit/DecordDecode:
# the same frames, at about half the CPU; see docs/data_pipelines.md, 'Decoders').
# The dataset base is the 1x1x8 video recipe; 1x1x3 samples 3 segments and rescales first.
_base_ = [
    '_base_/models/tsn_r50.py', '_base_/schedules/sgd_100e.py',
    '_base_/datasets/kinetics400_tsn_video.py', '_base_/default_runtime.py'
]

# dataset settings: the base's test pipeline, these train and val pipelines
img_norm_cfg = dict(
    mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_bgr=False)
train_pipeline = [
    dict(type='PyAVInit'),
    dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips=3),
    dict(type='PyAVDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(
        type='MultiScaleCrop',
        input_size=224,
        scales=(1, 0.875, 0.75, 0.66),
        random_crop=False,
        max_wh_scale_gap=1),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='Normalize', **img_norm_cfg),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='Collect', keys=['imgs', 'label'], meta_keys=[]),
    dict(type='ToTensor', keys=['imgs', 'label'])
]
val_pipeline = [
    dict(type='PyAVInit'),
    dict(
        type='SampleFrames',
        clip_len=1,
        frame_interval=1,
        num_clips=3,
        test_mode=True),
    dict(type='PyAVDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='Normalize', **img_norm_cfg),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='Collect', keys=['imgs', 'label'], meta_keys=[]),
    dict(type='ToTensor', keys=['imgs'])
]
data = dict(train=dict(pipeline=train_pipeline), val=dict(pipeline=val_pipeline))

# runtime settings
checkpoint_config = dict(interval=5)
work_dir = './work_dirs/tsn_r50_video_1x1x3_100e_kinetics400_rgb/'
