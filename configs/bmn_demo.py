# BMN on the synthetic ActivityNet-style feature set (generated into data/synthetic_activitynet on
# first use): 200 training and 50 validation videos, 32 snippets of 32-d features with one to
# three planted actions each (actionjax.tools.make_synthetic_features). One command trains,
# evaluates every epoch and reports AR@1/5/10/100 and AUC (ActivityNet's proposal metric)
# beside those of random proposals (random/AR@100, random/auc), in a few minutes on 2 CPU cores:
#     python -m actionjax.train --config configs/bmn_demo.py
# BMN is MMAction2's, shrunk to the data: 32 snippets, 16 samples per proposal, hidden widths
# 64/32/64; the schedule is bmn.py's (Adam, lr 1e-3, x0.1 for the last epochs).
synthetic_root = 'data/synthetic_activitynet'
synthetic_cfg = dict(num_train=200, num_val=50, temporal_dim=32, feat_dim=32, seed=0)
dataset_type = 'SyntheticActivityNetDataset'

model = dict(
    type='BMN',
    temporal_dim=32,
    boundary_ratio=0.5,
    num_samples=16,
    num_samples_per_bin=3,
    feat_dim=32,
    soft_nms_alpha=0.4,
    soft_nms_low_threshold=0.5,
    soft_nms_high_threshold=0.9,
    post_process_top_k=100,
    hidden_dim_1d=64,
    hidden_dim_2d=32,
    hidden_dim_3d=64)

train_pipeline = [
    dict(type='LoadLocalizationFeature'),
    dict(type='GenerateLocalizationLabels'),
    dict(type='PackLocalizationInputs', keys=('gt_bbox', ), meta_keys=('video_name', ))
]
val_pipeline = train_pipeline
dataset_args = dict(synthetic_root=synthetic_root, synthetic_cfg=synthetic_cfg,
            data_prefix=dict(video=f'{synthetic_root}/features'))
train_dataloader = dict(
    batch_size=8, num_workers=0, drop_last=True,
    dataset=dict(type=dataset_type, ann_file=f'{synthetic_root}/anet_anno_train.json',
                 pipeline=train_pipeline, **dataset_args))
val_dataloader = dict(
    batch_size=10, num_workers=0,
    dataset=dict(type=dataset_type, ann_file=f'{synthetic_root}/anet_anno_val.json',
                 pipeline=val_pipeline, test_mode=True, **dataset_args))
test_dataloader = val_dataloader
val_evaluator = dict(type='ANetMetric', metric_type='AR@AN', random_baseline=True)
test_evaluator = val_evaluator

max_epochs = 12
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_begin=1, val_interval=2)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(optimizer=dict(type='Adam', lr=0.001, weight_decay=0.0001),
                     clip_grad=dict(max_norm=40, norm_type=2))
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[10], gamma=0.1)
]

default_hooks = dict(logger=dict(type='LoggerHook', interval=10),
                     checkpoint=dict(type='CheckpointHook', interval=2, max_keep_ckpts=1, save_best='auc'))
log_level = 'INFO'
load_from = None
resume = False
work_dir = './work_dirs/bmn_demo'
