"""Recognizers, registered in ``RECOGNIZERS`` on import."""

from actionjax.models.recognizers.base import BaseRecognizer
from actionjax.models.recognizers.recognizer2d import Recognizer2D

__all__ = ['BaseRecognizer', 'Recognizer2D']
