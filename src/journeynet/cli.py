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
    """Run ``fn``; a :class:`JourneynetError` or a config ``ValueError`` prints one line and exits 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (JourneynetError, ValueError) as err:
            log.debug("stopped on a user error", exc_info=True)
            sys.stderr.write(f"error: {err}\n")
            sys.exit(2)

    return wrapper
