# Synthetic "appearance" set (actionjax.tools.make_synthetic): a red disk, green square, blue triangle or
# yellow cross drifts in a random direction over a textured background. One frame tells the class, so
# TSN and TSM both learn it.
# 200 train / 80 val videos of 32 frames at 64x64, written to data/synthetic on first use.
dataset_type = 'SyntheticVideoDataset'
synthetic_root = 'data/synthetic'
data_root = 'data/synthetic/appearance/videos'
ann_file_train = 'data/synthetic/appearance/train_list.txt'
ann_file_val = 'data/synthetic/appearance/val_list.txt'
img_norm_cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_bgr=False)
train_pipeline = [
    dict(type='PyAVInit'),
    dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips=8),
    dict(type='PyAVDecode'),
    dict(type='MultiScaleCrop', input_size=56, scales=(1, 0.875, 0.75), random_crop=False,
         max_wh_scale_gap=1),
    dict(type='Resize', scale=(56, 56), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='Normalize', **img_norm_cfg),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='Collect', keys=['imgs', 'label'], meta_keys=[]),
    dict(type='ToTensor', keys=['imgs', 'label']),
]
val_pipeline = [
    dict(type='PyAVInit'),
    dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips=8, test_mode=True),
    dict(type='PyAVDecode'),
    dict(type='CenterCrop', crop_size=56),
    dict(type='Normalize', **img_norm_cfg),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='Collect', keys=['imgs', 'label'], meta_keys=[]),
    dict(type='ToTensor', keys=['imgs']),
]
test_pipeline = val_pipeline
data = dict(
    videos_per_gpu=16,
    workers_per_gpu=2,
    train=dict(type=dataset_type, ann_file=ann_file_train, data_prefix=data_root, pipeline=train_pipeline,
               synthetic_root=synthetic_root),
    val=dict(type=dataset_type, ann_file=ann_file_val, data_prefix=data_root, pipeline=val_pipeline,
             synthetic_root=synthetic_root),
    test=dict(type=dataset_type, ann_file=ann_file_val, data_prefix=data_root, pipeline=test_pipeline,
              synthetic_root=synthetic_root))
evaluation = dict(interval=1, metrics=['top_k_accuracy', 'mean_class_accuracy'])
