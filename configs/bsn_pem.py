# BSN step 3, the Proposal Evaluation Module, on the proposals and boundary-sensitive features
# of BSN's proposal generation (configs/bsn_pgm.py), 1 GPU x 16 videos, 20 epochs
# (MMAction2 1.2.0: configs/localization/bsn/bsn_pem_1xb16-400x100-20e_activitynet-feature.py,
# with its schedule base adam_20e.py written out), values unchanged; ANetMetric runs PEM's
# post-processing on the host (the engine hands it the run's model).
# Each video's proposals are padded to LoadProposals' top_k rows (500 in training, 1000 in
# testing); PEM ignores the padding.
_base_ = ['_base_/models/bsn_pem.py']

# dataset settings
dataset_type = 'ActivityNetDataset'
data_root = 'data/ActivityNet/activitynet_feature_cuhk/csv_mean_100/'
data_root_val = 'data/ActivityNet/activitynet_feature_cuhk/csv_mean_100/'
ann_file_train = 'data/ActivityNet/anet_anno_train.json'
ann_file_val = 'data/ActivityNet/anet_anno_val.json'
ann_file_test = 'data/ActivityNet/anet_anno_val.json'

work_dir = 'work_dirs/bsn_400x100_20e_1x16_activitynet_feature/'
pgm_proposals_dir = f'{work_dir}/pgm_proposals/'
pgm_features_dir = f'{work_dir}/pgm_features/'

train_pipeline = [
    dict(type='LoadProposals', top_k=500, pgm_proposals_dir=pgm_proposals_dir,
         pgm_features_dir=pgm_features_dir),
    dict(type='PackLocalizationInputs', keys=('reference_temporal_iou', 'bsp_feature'), meta_keys=())
]
val_pipeline = [
    dict(type='LoadProposals', top_k=1000, pgm_proposals_dir=pgm_proposals_dir,
         pgm_features_dir=pgm_features_dir),
    dict(type='PackLocalizationInputs', keys=('tmin', 'tmax', 'tmin_score', 'tmax_score', 'bsp_feature'),
         meta_keys=('video_name', 'duration_second', 'duration_frame', 'annotations', 'feature_frame')),
]
test_pipeline = val_pipeline

train_dataloader = dict(
    batch_size=16,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, ann_file=ann_file_train, data_prefix=dict(video=data_root),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, ann_file=ann_file_val, data_prefix=dict(video=data_root_val),
                 pipeline=val_pipeline, test_mode=True))
test_dataloader = dict(
    batch_size=1,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, ann_file=ann_file_test, data_prefix=dict(video=data_root_val),
                 pipeline=test_pipeline, test_mode=True))

# MMAction2's _base_/schedules/adam_20e.py, with the recipe's val_interval
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=20, val_begin=1, val_interval=20)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(optimizer=dict(type='Adam', lr=0.01, weight_decay=0.00001),
                     clip_grad=dict(max_norm=40, norm_type=2))
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=20, by_epoch=True, milestones=[10], gamma=0.1)
]

test_evaluator = dict(type='ANetMetric', metric_type='AR@AN',
                      dump_config=dict(out=f'{work_dir}/results.json', output_format='json'))
val_evaluator = test_evaluator

default_hooks = dict(logger=dict(type='LoggerHook', interval=20),
                     checkpoint=dict(type='CheckpointHook', interval=1))
log_level = 'INFO'
load_from = None
resume = False
