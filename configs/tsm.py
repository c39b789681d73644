# TSM-R50, 1x1x8 segments, 50 epochs, Kinetics-400 from videos.
# MMAction2 0.24.1's tsm_r50_video_1x1x8_50e_kinetics400_rgb.py, values unchanged; its data
# section is the dataset base (decoded with PyAV instead of decord: the same frames, faster).
_base_ = [
    '_base_/models/tsm_r50.py', '_base_/schedules/sgd_tsm_50e.py',
    '_base_/datasets/kinetics400_tsm_video.py', '_base_/default_runtime.py'
]

# optimizer
optimizer = dict(
    lr=0.02,  # this lr is used for 8 gpus
)
# runtime settings
checkpoint_config = dict(interval=5)
work_dir = './work_dirs/tsm_r50_video_2d_1x1x8_50e_kinetics400_rgb/'
