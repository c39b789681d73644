"""Localizers, registered in ``LOCALIZERS`` on import (none yet)."""
