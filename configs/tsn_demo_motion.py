# TSN on the synthetic motion set, for contrast with configs/tsm_demo.py: the same data,
# frames, backbone stages and schedule, but a plain ResNet whose per-segment scores are
# averaged. Every frame looks alike across the four directions, so it stays near chance
# (25%): TSN sees appearance, not order.
_base_ = ['tsm_demo.py']

model = dict(
    backbone=dict(_delete_=True, type='ResNet', depth=18, pretrained=None, num_stages=2,
                  out_indices=(1, ), strides=(1, 2), dilations=(1, 1), norm_eval=False),
    cls_head=dict(_delete_=True, type='TSNHead', num_classes=4, in_channels=128, spatial_type='avg',
                  consensus=dict(type='AvgConsensus', dim=1), dropout_ratio=0.2, init_std=0.01))
evaluation = dict(save_best=None)
work_dir = './work_dirs/tsn_demo_motion'
