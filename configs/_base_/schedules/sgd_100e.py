# SGD, 100 epochs, lr x0.1 at epochs 40 and 80: MMAction2 0.24.1's
# configs/_base_/schedules/sgd_100e.py, used by the TSN recipes.
# optimizer
optimizer = dict(
    type='SGD',
    lr=0.01,  # this lr is used for 8 gpus x 32 videos; scale it linearly with the total batch
    momentum=0.9,
    weight_decay=0.0001)
optimizer_config = dict(grad_clip=dict(max_norm=40, norm_type=2))
# learning policy: mmcv's StepLrUpdaterHook, by epoch
lr_config = dict(policy='step', step=[40, 80])
total_epochs = 100
