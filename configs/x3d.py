# X3D-S, 13 frames every 6th at 30 fps, 10 clips x 3 crops, Kinetics-400: a test-only recipe for
# the weights converted from Facebook's SlowFast repository (MMAction2 1.2.0:
# configs/recognition/x3d/x3d_s_13x6x1_facebook-kinetics400-rgb.py), values unchanged.
# Videos are decoded with PyAVInit/PyAVDecode (MMAction2 writes DecordInit/DecordDecode: the same
# frames at about half the CPU; see docs/data_pipelines.md, 'Decoders').
_base_ = ['_base_/models/x3d.py']

# dataset settings
dataset_type = 'VideoDataset'
data_root_val = 'data/kinetics400/videos_val'
ann_file_test = 'data/kinetics400/kinetics400_val_list_videos.txt'
test_pipeline = [
    dict(type='PyAVInit'),
    dict(type='SampleFrames', clip_len=13, frame_interval=6, num_clips=10, target_fps=30, test_mode=True),
    dict(type='PyAVDecode'),
    dict(type='Resize', scale=(-1, 182)),
    dict(type='ThreeCrop', crop_size=182),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]

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

test_evaluator = dict(type='AccMetric')
test_cfg = dict(type='TestLoop')
