"""MMAction2's data pipelines: transforms registered in ``PIPELINES`` under MMAction2's names.

``Compose(cfg_list)`` builds a pipeline; each transform maps a results dict to a
results dict. ``imgs`` travels as one uint8 RGB array ``(M, H, W, C)`` and leaves
``FormatShape`` channels-last: ``(V, H, W, C)`` or ``(V, T, H, W, C)``.
See docs/data_pipelines.md.
"""

from .augmentations import (
    CenterCrop,
    ColorJitter,
    Flip,
    Fuse,
    MultiScaleCrop,
    Normalize,
    RandomCrop,
    RandomRescale,
    RandomResizedCrop,
    Resize,
    TenCrop,
    ThreeCrop,
    color_jitter,
    resize_clip,
)
from .compose import Compose
from .formatting import Collect, FormatShape, ImageToTensor, PackActionInputs, Rename, ToTensor
from .loading import (
    DecordDecode,
    DecordInit,
    DenseSampleFrames,
    RawFrameDecode,
    SampleFrames,
    UniformSample,
    UniformSampleFrames,
    VideoReadError,
)
from .localization import (
    GenerateLocalizationLabels,
    LoadLocalizationFeature,
    LoadProposals,
    PackLocalizationInputs,
)
from .proposal_frames import SampleProposalFrames
from .pyav import PyAVDecode, PyAVInit
from .rng import get_rng

__all__ = [
    'CenterCrop', 'Collect', 'ColorJitter', 'Compose', 'DecordDecode', 'DecordInit', 'DenseSampleFrames',
    'Flip', 'FormatShape', 'Fuse', 'ImageToTensor', 'MultiScaleCrop', 'Normalize', 'PackActionInputs',
    'PyAVDecode', 'PyAVInit', 'RandomCrop', 'RandomRescale', 'RandomResizedCrop', 'RawFrameDecode', 'Rename',
    'Resize', 'SampleFrames', 'TenCrop', 'ThreeCrop', 'ToTensor', 'UniformSample', 'UniformSampleFrames',
    'VideoReadError', 'color_jitter', 'get_rng', 'resize_clip',
    'GenerateLocalizationLabels', 'LoadLocalizationFeature', 'LoadProposals', 'PackLocalizationInputs',
    'SampleProposalFrames',
]
