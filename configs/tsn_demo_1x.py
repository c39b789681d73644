# configs/tsn_demo.py written in MMAction2 1.x (mmengine) keys: the same model, data, optimizer,
# schedule and runtime, so both files give one runtime config and train identically
# (tests/test_runtime_config.py checks it). Use it as a template for 1.x-style recipes.
dataset_type = 'SyntheticVideoDataset'
synthetic_root = 'data/synthetic'
data_root = 'data/synthetic/appearance/videos'
ann_file_train = 'data/synthetic/appearance/train_list.txt'
ann_file_val = 'data/synthetic/appearance/val_list.txt'
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
        init_std=0.01,
        average_clips='prob'),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375]))

train_pipeline = [
    dict(type='PyAVInit'),
    dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips=num_segments),
    dict(type='PyAVDecode'),
    dict(type='MultiScaleCrop', input_size=56, scales=(1, 0.875, 0.75), random_crop=False,
         max_wh_scale_gap=1),
    dict(type='Resize', scale=(32, 32), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
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
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='Collect', keys=['imgs', 'label'], meta_keys=[]),
    dict(type='ToTensor', keys=['imgs']),
]
train_dataloader = dict(
    batch_size=8, num_workers=2,
    dataset=dict(type=dataset_type, ann_file=ann_file_train, data_prefix=data_root, pipeline=train_pipeline,
                 synthetic_root=synthetic_root))
val_dataloader = dict(
    batch_size=8, num_workers=2,
    dataset=dict(type=dataset_type, ann_file=ann_file_val, data_prefix=data_root, pipeline=val_pipeline,
                 synthetic_root=synthetic_root))
test_dataloader = val_dataloader
val_evaluator = dict(type='AccMetric', metric_list=['top_k_accuracy', 'mean_class_accuracy'])
test_evaluator = val_evaluator

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=8, val_begin=1, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# Adam from scratch; mmcv's linear warmup over 25 iterations (lr x 0.1 -> x 1, reaching x 1 at
# iteration 25) is LinearLR with end=26 (mmengine counts end - begin - 1 steps), then cosine
# decay by epoch to 0.
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3, weight_decay=1e-4), clip_grad=None)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=26),
    dict(type='CosineAnnealingLR', T_max=8, eta_min=0, by_epoch=True, begin=0, end=8),
]

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=5),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2, save_best='auto'))
log_level = 'INFO'
load_from = None
resume = False
work_dir = './work_dirs/tsn_demo'
