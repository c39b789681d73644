# Runtime defaults, as MMAction2 0.24.1's configs/_base_/default_runtime.py.
# Checkpoints every epoch (work_dir/epoch_N); a log line every 20 iterations.
checkpoint_config = dict(interval=1)
log_config = dict(
    interval=20,
    hooks=[
        dict(type='TextLoggerHook'),
        # dict(type='TensorboardLoggerHook'),  # scalars to work_dir/tf_logs
    ])
# `evaluation` lives with the dataset or the recipe (as in MMAction2); without one the engine
# evaluates top_k_accuracy every epoch, MMAction2's EvalHook defaults.
# runtime settings
dist_params = dict(backend='nccl')  # accepted for compatibility; JAX needs no backend name
log_level = 'INFO'
load_from = None
resume_from = None
workflow = [('train', 1)]

# accepted for compatibility with MMAction2 configs; the grain loader manages its workers
opencv_num_threads = 0
mp_start_method = 'fork'
