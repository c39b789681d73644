# configs/tsn_demo.py as an iteration-based run (MMAction2 1.x IterBasedTrainLoop): 200
# iterations (8 epochs of the 200-video set at batch 8) with validation and a checkpoint every
# 50 iterations; the lr warms up over 25 iterations and then follows a cosine per iteration.
# A killed run resumes exactly (--auto-resume), mid-epoch included.
_base_ = ['tsn_demo_1x.py']

train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=200, val_interval=50)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=26),
    dict(type='CosineAnnealingLR', T_max=200, eta_min=0, by_epoch=False, begin=0, end=200),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=50, max_keep_ckpts=2, save_best='auto'))
work_dir = './work_dirs/tsn_demo_iter'
