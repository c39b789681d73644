"""Checkpoint converters: ``python -m convert.mmaction2`` and ``python -m convert.torchvision``."""
