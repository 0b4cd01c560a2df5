"""Entry-point plumbing: user errors become one clear line and a non-zero exit."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any

from journeynet.errors import JourneynetError

log = logging.getLogger("journeynet")


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``fn``; a :class:`JourneynetError` or a ``ValueError`` ends with one line on stderr and exit 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except JourneynetError as err:
            sys.stderr.write(f"error: {err}\n")
            sys.exit(2)
        except ValueError as err:
            # a bad setting, usually; keep the traceback in the run log in case it is a bug
            log.error("stopped on a ValueError", exc_info=True)
            sys.stderr.write(f"error: {err}\n")
            sys.exit(2)

    return wrapper
