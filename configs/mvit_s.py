# MViTv2-S, 16 frames every 4th, 200 epochs from scratch, Kinetics-400 (MMAction2 1.2.0:
# configs/recognition/mvit/mvit-small-p244_32xb16-16x4x1-200e_kinetics400-rgb.py). Values as
# there, except for what actionjax does not have yet, left out here and listed so that the
# recipe can be completed when it does:
# * model.data_preprocessor.blending: RandomBatchAugment of MixupBlending(alpha=0.8) and
#   CutmixBlending(alpha=1) (batch-level mixing is not supported yet);
# * the train pipeline's PytorchVideoWrapper(op='RandAugment', magnitude=7, num_layers=4)
#   after the first Resize, and RandomErasing(erase_prob=0.25, mode='rand') after Flip;
# * RepeatAugDataset(num_repeats=2, sample_once=True) with repeat_pseudo_collate: every
#   video is read once and augmented twice per epoch; here it is read once, so an epoch has
#   half the samples of MMAction2's (auto_scale_lr's base_batch_size keeps the recipe's).
# Videos are decoded with PyAVInit/PyAVDecode (MMAction2 writes DecordInit/DecordDecode: the
# same frames at about half the CPU; see docs/data_pipelines.md, 'Decoders').
_base_ = ['_base_/models/mvit_small.py']

model = dict(
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[114.75, 114.75, 114.75],
        std=[57.375, 57.375, 57.375],
        format_shape='NCTHW'), )

# dataset settings
dataset_type = 'VideoDataset'
data_root = 'data/kinetics400/videos_train'
data_root_val = 'data/kinetics400/videos_val'
ann_file_train = 'data/kinetics400/kinetics400_train_list_videos.txt'
ann_file_val = 'data/kinetics400/kinetics400_val_list_videos.txt'
ann_file_test = 'data/kinetics400/kinetics400_val_list_videos.txt'

train_pipeline = [
    dict(type='PyAVInit'),
    dict(type='SampleFrames', clip_len=16, frame_interval=4, num_clips=1),
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
    dict(type='SampleFrames', clip_len=16, frame_interval=4, num_clips=1, test_mode=True),
    dict(type='PyAVDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
test_pipeline = [
    dict(type='PyAVInit'),
    dict(type='SampleFrames', clip_len=16, frame_interval=4, num_clips=5, test_mode=True),
    dict(type='PyAVDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]

repeat_sample = 2
train_dataloader = dict(
    batch_size=8,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_train,
        data_prefix=dict(video=data_root),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
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

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=200, val_begin=1, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# AdamW without weight decay on norms and biases; gradients clipped to norm 1
base_lr = 1.6e-3
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=base_lr, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
    clip_grad=dict(max_norm=1, norm_type=2))

# 30 epochs of linear warmup from 0.01x, then cosine down to base_lr / 100 at epoch 200
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=30, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=200, eta_min=base_lr / 100, by_epoch=True, begin=30, end=200,
         convert_to_iter_based=True)
]

default_hooks = dict(checkpoint=dict(interval=3, max_keep_ckpts=5), logger=dict(interval=100))

# `base_batch_size` = (32 GPUs) x (16 samples per GPU) / repeat_sample.
auto_scale_lr = dict(enable=True, base_batch_size=512 // repeat_sample)
