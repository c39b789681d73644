"""Video data: datasets, MMAction2 pipelines and the grain loader (see ``loader.py`` for the API)."""

from actionjax.data import pipelines  # noqa: F401  (registers the transforms in PIPELINES)
from actionjax.data.activitynet import ActivityNetDataset, SyntheticActivityNetDataset
from actionjax.data.datasets import (
    BaseDataset,
    RawframeDataset,
    SyntheticVideoDataset,
    VideoDataset,
    build_dataset,
)
from actionjax.data.loader import DataLoader, build_dataloader, loader_kwargs
from actionjax.data.ssn import SSNDataset

__all__ = ['ActivityNetDataset', 'BaseDataset', 'DataLoader', 'RawframeDataset',
           'SSNDataset', 'SyntheticActivityNetDataset', 'SyntheticVideoDataset', 'VideoDataset',
           'build_dataloader', 'build_dataset', 'loader_kwargs']
