"""Entry-point plumbing: user errors become one clear line and a non-zero exit.

The one line goes to stderr; the traceback, useful when the error is really a bug, goes
only to the run's log file. Hydra's job logging sends every record of the root logger to
the console as well as to ``<run dir>/<job>.log``, so a plain ``log.error(exc_info=True)``
would print the traceback before the line it is meant to stand behind.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any

from journeynet.errors import JourneynetError

log = logging.getLogger("journeynet")


def log_to_files(message: str, exc: BaseException) -> int:
    """Write ``message`` and the traceback of ``exc`` to the root logger's file handlers only.

    Returns
    -------
    int
        How many files it went to (0 outside a Hydra run).
    """
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, message, (),
                            (type(exc), exc, exc.__traceback__))
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    for handler in handlers:
        if record.levelno >= handler.level:
            handler.handle(record)
    return len(handlers)


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``fn``; a :class:`JourneynetError` or a ``ValueError`` ends with one line on stderr and exit 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (JourneynetError, ValueError) as err:
            # a bad setting or file, usually; the run log keeps the traceback in case it is a bug
            log_to_files(f"stopped: {err}", err)
            sys.stderr.write(f"error: {err}\n")
            sys.exit(2)

    return wrapper
