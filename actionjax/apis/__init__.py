"""Python API, as ``mmaction.apis``: load a model from a config (and a checkpoint) and run it.

``init_recognizer`` / ``inference_recognizer`` for recognizers (``recognition.py``),
``init_localizer`` / ``inference_localizer`` for temporal localizers (``localization.py``).
"""

from actionjax.apis.localization import LoadedLocalizer, inference_localizer, init_localizer
from actionjax.apis.recognition import LoadedRecognizer, dummy_input, inference_recognizer, init_recognizer

__all__ = ['LoadedLocalizer', 'LoadedRecognizer', 'dummy_input', 'inference_localizer',
           'inference_recognizer', 'init_localizer', 'init_recognizer']
