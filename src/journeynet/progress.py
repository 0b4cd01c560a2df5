"""Progress bars for the slow phases, quiet in CI and when output is not a terminal.

Wrap a loop that can take more than a few seconds (journey building, removal
attribution, bootstrap)::

    from journeynet.progress import progress
    for u in progress(unit_ids, desc="removal attribution"):
        ...

For work that is not a loop over items (an optimizer's closure), open a bar by hand::

    with progress_bar(desc="funnel fit", total=max_iter) as bar:
        ...  # bar.update(1) per evaluation

Bars are drawn on stderr only when :func:`progress_enabled` says so: never under
``CI=true`` (or ``CI=1``), never when stdout is redirected to a file or a pipe.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

__all__ = ["disable_progress", "progress", "progress_bar", "progress_enabled"]

_DISABLED = False


def disable_progress() -> None:
    """No bars from this process (a background process shares the terminal with the main one's bars)."""
    global _DISABLED
    _DISABLED = True


def progress_enabled() -> bool:
    """Whether to draw progress bars: not under ``CI`` = ``true``/``1``, only when stdout is a TTY."""
    if _DISABLED or os.environ.get("CI", "").strip().lower() in ("true", "1"):
        return False
    try:
        return bool(sys.stdout.isatty())
    except (AttributeError, ValueError):  # replaced or closed stdout
        return False


def progress(iterable: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """Iterate ``iterable`` under a tqdm bar labelled ``desc`` (disabled when not :func:`progress_enabled`).

    Parameters
    ----------
    iterable : Iterable
        What to loop over.
    desc : str
        Label of the bar, e.g. ``"removal attribution"``.
    total : int, optional
        Number of items, when ``len(iterable)`` is not available.

    Returns
    -------
    Iterator
        The items of ``iterable``, unchanged.
    """
    return iter(tqdm(iterable, desc=desc, total=total, disable=not progress_enabled(),
                     leave=False, dynamic_ncols=True))


def progress_bar(desc: str, total: int | None = None) -> tqdm:
    """A manual tqdm bar (``update``/``close``, or use it as a context manager), quiet like :func:`progress`.

    Parameters
    ----------
    desc : str
        Label of the bar.
    total : int, optional
        Expected number of updates.

    Returns
    -------
    tqdm
        Disabled (a no-op) when not :func:`progress_enabled`.
    """
    return tqdm(desc=desc, total=total, disable=not progress_enabled(), leave=False, dynamic_ncols=True)
