"""Which exceptions are the user's to fix, and how a command-line run reports them.

An error in the user's config, data or checkpoint carries a message that names the key or
file and the fix; ``python -m actionjax.<tool>`` prints that one line (``error: ...``)
and exits with status 1. Anything else (an exception from user code such as a custom
backbone or pipeline step, or an internal error) keeps its traceback on screen: turning
a ``KeyError('smal')`` raised deep inside a user's module into ``error: smal`` would hide
where it came from. A training run's log file gets the full traceback either way.
"""

from __future__ import annotations


def user_error_types() -> tuple[type[BaseException], ...]:
    """The exception types whose message is the whole story (config, data, checkpoint, run)."""
    from actionjax.config import ConfigError
    from actionjax.data.loader import DataError
    from actionjax.data.pipelines.loading import VideoReadError
    from actionjax.engine.checkpoint import CheckpointError
    from actionjax.engine.runner import NonFiniteLossError
    from actionjax.optim.schedules import ScheduleConfigError
    from actionjax.registry import RegistryError

    return (ConfigError, RegistryError, ScheduleConfigError, CheckpointError, DataError, VideoReadError,
            NonFiniteLossError, FileNotFoundError)


def is_user_error(err: BaseException) -> bool:
    """True when ``err`` means "fix the config, data or checkpoint" and its message says how."""
    return isinstance(err, user_error_types())


def one_line(err: BaseException) -> str:
    """The message of a user error, as ``error: <message>`` prints it (no ``KeyError`` quotes)."""
    return str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
