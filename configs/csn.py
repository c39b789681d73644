# ir-CSN-R50 from IG-65M weights with frozen BatchNorm, 32 frames every 2nd, 58 epochs, Kinetics-400
# (MMAction2 1.2.0: configs/recognition/csn/
# ircsn_ig65m-pretrained-r50-bnfrozen_8xb12-32x2x1-58e_kinetics400-rgb.py, which overrides the
# R152 recipe), values unchanged but the backbone's pretrained: MMAction2 downloads
# ircsn_from_scratch_r50_ig65m_20210617-ce545a37.pth; actionjax never downloads. Start from a
# converted MMAction2 CSN checkpoint with load_from instead
# (python -m convert.mmaction2 ircsn.pth --config configs/csn.py --out ...).
# Videos are decoded with PyAVInit/PyAVDecode (MMAction2 writes DecordInit/DecordDecode: the same
# frames at about half the CPU; see docs/data_pipelines.md, 'Decoders').
_base_ = ['_base_/models/ircsn_r152.py']

# model settings
model = dict(backbone=dict(depth=50, norm_eval=True, bn_frozen=True, pretrained=None))

# dataset settings
dataset_type = 'VideoDataset'
data_root = './data/kinetics400/videos_train'
data_root_val = './data/kinetics400/videos_val'
ann_file_train = './data/kinetics400/kinetics400_train_list_videos.txt'
ann_file_val = './data/kinetics400/kinetics400_val_list_videos.txt'
ann_file_test = './data/kinetics400/kinetics400_val_list_videos.txt'

train_pipeline = [
    dict(type='PyAVInit'),
    dict(type='SampleFrames', clip_len=32, frame_interval=2, num_clips=1),
    dict(type='PyAVDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='RandomResizedCrop'),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(type='PyAVInit'),
    dict(type='SampleFrames', clip_len=32, frame_interval=2, num_clips=1, test_mode=True),
    dict(type='PyAVDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
test_pipeline = [
    dict(type='PyAVInit'),
    dict(type='SampleFrames', clip_len=32, frame_interval=2, num_clips=10, test_mode=True),
    dict(type='PyAVDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='ThreeCrop', crop_size=256),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]

train_dataloader = dict(
    batch_size=12,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_train,
        data_prefix=dict(video=data_root),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_val,
        data_prefix=dict(video=data_root_val),
        pipeline=val_pipeline,
        test_mode=True))
test_dataloader = dict(
    batch_size=1,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_test,
        data_prefix=dict(video=data_root_val),
        pipeline=test_pipeline,
        test_mode=True))

val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=58, val_begin=1, val_interval=3)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=16),
    dict(type='MultiStepLR', begin=0, end=58, by_epoch=True, milestones=[32, 48], gamma=0.1)
]

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=5e-4, momentum=0.9, weight_decay=1e-4),
    clip_grad=dict(max_norm=40, norm_type=2))

default_hooks = dict(checkpoint=dict(interval=2, max_keep_ckpts=5))
find_unused_parameters = True

# `base_batch_size` = (8 GPUs) x (12 samples per GPU).
auto_scale_lr = dict(enable=False, base_batch_size=96)
