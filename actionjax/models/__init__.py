"""Flax models registered under MMAction2's names; ``build_model(cfg)`` builds a recognizer.

Importing this package registers every backbone, head, loss and recognizer. A new
part is one file in the matching subpackage plus one import line in its __init__.
"""

from actionjax.models import backbones, heads, localizers, losses, recognizers  # noqa: F401 (registers)
from actionjax.models.builder import (
    build_backbone,
    build_head,
    build_loss,
    build_model,
    build_neck,
    build_recognizer,
)
from actionjax.models.recognizers import BaseRecognizer, Recognizer2D

__all__ = [
    'BaseRecognizer', 'Recognizer2D', 'build_backbone', 'build_head', 'build_loss', 'build_model',
    'build_neck', 'build_recognizer',
]
