"""Temporal action localizers, registered in ``LOCALIZERS`` on import."""

from actionjax.models.localizers.base import BaseLocalizer, build_localizer
from actionjax.models.localizers.bmn import BMN
from actionjax.models.localizers.pem import PEM
from actionjax.models.localizers.ssn import SSN
from actionjax.models.localizers.tem import TEM

__all__ = ['BMN', 'PEM', 'SSN', 'TEM', 'BaseLocalizer', 'build_localizer']
