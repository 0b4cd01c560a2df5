"""Where a journey lies in the data's window, as two numbers per journey (``model.calendar``).

The net's other inputs are relative times (gaps, time since the first and last touch), so
it cannot tell a journey at a seasonal peak from one in a trough, nor one that ended an
hour before the data stops (its conversion may come after the export) from one with a
month of silence after it. :func:`journey_calendar` gives, per journey:

``window_position``
    the journey's last touch (``end_time``) as a fraction of the data window
    ``[start, end]`` (the first and last touch the training data holds), clamped to [0, 1];
``to_end``
    log1p of the days from the journey's last touch to the data's last touch, capped at
    :data:`TO_END_CAP_DAYS` (the default ``lookback_days``: past it the journey was
    already closed by silence, so censoring no longer matters).

The window is the training data's (:func:`calendar_window`); the net keeps it
(``AttentionLSTM(window=...)``, saved in its checkpoint) so ``predict.py`` places new
journeys against the same window. The data's end for ``to_end`` is where the scored data
stops: the training data's own end in a run, a new file's own last touch in ``predict.py``.

Quickstart
----------
>>> import numpy as np
>>> from types import SimpleNamespace
>>> day = 86_400_000_000_000
>>> j = SimpleNamespace(time=np.array([0, 2, 4, 10]) * day, offsets=np.array([0, 2, 3, 4]),
...     end_time=np.array([2, 4, 10]) * day)
>>> calendar_window(j) == (0, 10 * day)
True
>>> x = journey_calendar(j)
>>> [round(float(v), 2) for v in x[:, 0]], np.expm1(x[:, 1]).round().tolist()
([0.2, 0.4, 1.0], [8.0, 6.0, 0.0])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Per-journey calendar columns, in order.
CALENDAR_FEATURES = ("window_position", "to_end")
N_CALENDAR = len(CALENDAR_FEATURES)
WINDOW_POSITION, TO_END = range(N_CALENDAR)
#: ``to_end`` is capped at this many days (log1p(30) = 3.43).
TO_END_CAP_DAYS = 30.0
_NS_PER_DAY = 86_400_000_000_000


def calendar_window(journeys: Any, idx: np.ndarray | None = None) -> tuple[int, int] | None:
    """``(start, end)`` in int64 ns: the first and last touch of journeys ``idx`` (all when None).

    None when there is no journey. The first touch is each journey's first kept touch
    (``max_len`` keeps the latest touches), so a truncated journey starts a little late.
    """
    offsets = np.asarray(journeys.offsets, dtype=np.int64)
    end = np.asarray(journeys.end_time, dtype=np.int64)
    first = np.asarray(journeys.time, dtype=np.int64)[offsets[:-1]] if len(end) else end
    if idx is not None:
        idx = np.asarray(idx, dtype=np.int64)
        first, end = first[idx], end[idx]
    if not len(end):
        return None
    return int(first.min()), int(end.max())


def journey_calendar(journeys: Any, window: Sequence[int] | None = None, data_end: int | None = None) -> np.ndarray:
    """Each journey's place in the data window; columns as in :data:`CALENDAR_FEATURES`.

    Parameters
    ----------
    journeys : Journeys
        Anything with ``time``, ``offsets`` and per-journey ``end_time`` (int64 ns).
    window : (int, int) | None
        The data window ``(start, end)`` in ns; None: :func:`calendar_window` of ``journeys``.
    data_end : int | None
        The data's last touch for ``to_end``; None: the latest ``end_time`` of ``journeys``.

    Returns
    -------
    np.ndarray
        float32, shape (n_journeys, N_CALENDAR).
    """
    end = np.asarray(journeys.end_time, dtype=np.int64)
    out = np.zeros((len(end), N_CALENDAR), dtype=np.float32)
    if not len(end):
        return out
    start, stop = calendar_window(journeys) if window is None else (int(window[0]), int(window[1]))
    span = max(stop - start, 1)
    out[:, WINDOW_POSITION] = np.clip((end - start) / span, 0.0, 1.0)
    last = int(end.max()) if data_end is None else int(data_end)
    days = np.clip((last - end) / _NS_PER_DAY, 0.0, TO_END_CAP_DAYS)
    out[:, TO_END] = np.log1p(days)
    return out


def with_calendar(journeys: Any, window: Sequence[int] | None = None, data_end: int | None = None) -> Any:
    """``journeys`` with ``calendar`` set to :func:`journey_calendar` (a copy; the arrays are shared)."""
    return dataclasses.replace(journeys, calendar=journey_calendar(journeys, window, data_end))


def attached_calendar(journeys: Any, window: Sequence[int] | None = None) -> np.ndarray | None:
    """``journeys.calendar`` when set, else computed against ``window`` (the journeys' own span when None).

    None when ``journeys`` lacks ``end_time`` (a hand-made batch source): a net that reads
    the calendar then refuses it.
    """
    calendar = getattr(journeys, "calendar", None)
    if calendar is not None:
        return np.asarray(calendar, dtype=np.float32)
    if any(getattr(journeys, n, None) is None for n in ("end_time", "time", "offsets")):
        return None
    return journey_calendar(journeys, window)
