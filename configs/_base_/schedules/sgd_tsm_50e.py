# SGD for TSM, 50 epochs, lr x0.1 at epochs 20 and 40: MMAction2 0.24.1's
# configs/_base_/schedules/sgd_tsm_50e.py, used by tsm_r50_1x1x8_50e_kinetics400_rgb.py.
# optimizer
optimizer = dict(
    type='SGD',
    constructor='TSMOptimizerConstructor',
    paramwise_cfg=dict(fc_lr5=True),  # the fc head learns at 5x (weights) / 10x (bias) the lr
    lr=0.01,  # this lr is used for 8 gpus x 8 videos; scale it linearly with the total batch
    momentum=0.9,
    weight_decay=0.0001)
optimizer_config = dict(grad_clip=dict(max_norm=20, norm_type=2))
# learning policy: mmcv's StepLrUpdaterHook, by epoch
lr_config = dict(policy='step', step=[20, 40])
total_epochs = 50
