"""Recognizers, registered in ``RECOGNIZERS`` on import."""

from actionjax.models.recognizers.base import BaseRecognizer
from actionjax.models.recognizers.recognizer2d import Recognizer2D
from actionjax.models.recognizers.recognizer3d import Recognizer3D

__all__ = ['BaseRecognizer', 'Recognizer2D', 'Recognizer3D']
