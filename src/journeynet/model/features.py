"""What the journey model reads: per-touch features and padded batches.

Per touch (:func:`touch_features`): time since the previous touch, to the journey's last
touch and since its first touch (log1p minutes, so gaps of seconds and of weeks both
register), position from the start and from the end, how many earlier touches of the same
channel the journey has (heavy repetition of one campaign is common in real exports), and
hour of day and weekday as points on a circle. :func:`collate_journeys` gathers flat
Journeys arrays into the right-padded tensors the net takes, with each journey's length
before ``max_len`` truncation, so the journey-summary path can count what the recurrent
path no longer sees.

Quickstart
----------
>>> import numpy as np
>>> from types import SimpleNamespace
>>> n = np.array([2, 1])
>>> j = SimpleNamespace(offsets=np.r_[0, np.cumsum(n)], channel=np.array([2, 2, 3]),
...     campaign=np.ones(3, np.int64), log_dt_prev=np.zeros(3, np.float32),
...     log_dt_end=np.zeros(3, np.float32), position=np.array([0, 1, 0]),
...     time=np.array([0, 60, 120]) * 10**9, label=np.array([1, 0], np.int8))
>>> f = touch_features(j)
>>> f.shape, float(f[1, REPEAT])  # the second touch repeats channel 2 once
((3, 10), 0.6931...)
>>> b = collate_journeys(j, f, np.array([0, 1]))
>>> b["channel"].tolist(), b["full_length"].tolist()
([[2, 2], [3, 0]], [2, 1])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

#: Per-touch float features, in column order.
TOUCH_FEATURES = (
    "gap_prev", "to_end", "since_start", "position", "from_end", "repeat",
    "hour_sin", "hour_cos", "weekday_sin", "weekday_cos",
)
N_TOUCH_FEATURES = len(TOUCH_FEATURES)
GAP_PREV, TO_END, SINCE_START, POSITION, FROM_END, REPEAT = range(6)
HOUR_SIN, HOUR_COS, WEEKDAY_SIN, WEEKDAY_COS = range(6, 10)
#: Log1p-minute features are divided by this so they sit near [0, 2] like the rest.
MINUTE_SCALE = 5.0
_NS_PER_MINUTE = 60 * 10**9
_NS_PER_HOUR = 60 * _NS_PER_MINUTE
_NS_PER_DAY = 24 * _NS_PER_HOUR


def journey_lengths(journeys: Any) -> np.ndarray:
    """Touches per journey, from ``journeys.offsets``.

    Parameters
    ----------
    journeys : Journeys
        Any object with an ``offsets`` array of length n_journeys + 1.

    Returns
    -------
    np.ndarray
        int64 lengths, shape (n_journeys,).
    """
    return np.diff(np.asarray(journeys.offsets, dtype=np.int64))


def _log_minutes_from_log_hours(log_hours: np.ndarray) -> np.ndarray:
    """log1p(minutes) / MINUTE_SCALE from the Journeys' log1p(hours) fields."""
    minutes = np.expm1(np.asarray(log_hours, dtype=np.float64)) * 60.0
    return np.log1p(np.maximum(minutes, 0.0)) / MINUTE_SCALE


def _repeat_index(channel: np.ndarray, jid: np.ndarray) -> np.ndarray:
    """How many earlier touches of the same journey share each touch's channel."""
    key = jid * (int(channel.max(initial=0)) + 1) + channel  # (n_touch,)
    order = np.argsort(key, kind="stable")  # touches of one (journey, channel) in time order
    sorted_key = key[order]
    run_start = np.r_[True, sorted_key[1:] != sorted_key[:-1]]
    first_of_run = np.maximum.accumulate(np.where(run_start, np.arange(len(key)), 0))
    out = np.empty(len(key), dtype=np.int64)
    out[order] = np.arange(len(key)) - first_of_run
    return out


def touch_features(journeys: Any) -> np.ndarray:
    """Per-touch float features, columns as in :data:`TOUCH_FEATURES`.

    Parameters
    ----------
    journeys : Journeys
        Journeys with per-touch ``channel``, ``log_dt_prev``, ``log_dt_end``,
        ``position`` and ``time`` (int64 ns since the epoch, UTC) and ``offsets``.

    Returns
    -------
    np.ndarray
        float32 array, shape (n_touch, N_TOUCH_FEATURES).
    """
    offsets = np.asarray(journeys.offsets, dtype=np.int64)
    lengths = np.diff(offsets)
    jid = np.repeat(np.arange(len(lengths)), lengths)  # (n_touch,)
    time = np.asarray(journeys.time, dtype=np.int64)
    position = np.asarray(journeys.position, dtype=np.float64)
    since_start = np.maximum(time - time[offsets[:-1]][jid], 0) / _NS_PER_MINUTE
    from_end = lengths[jid] - 1 - (np.arange(len(time)) - offsets[:-1][jid])
    hour = 2 * np.pi * (time % _NS_PER_DAY) / _NS_PER_DAY
    # 1970-01-01 was a Thursday; the phase does not matter, only that weeks repeat.
    weekday = 2 * np.pi * ((time // _NS_PER_DAY) % 7) / 7
    channel = np.asarray(journeys.channel, dtype=np.int64)
    cols = [
        _log_minutes_from_log_hours(journeys.log_dt_prev),
        _log_minutes_from_log_hours(journeys.log_dt_end),
        np.log1p(since_start) / MINUTE_SCALE,
        np.log1p(position),
        np.log1p(from_end),
        np.log1p(_repeat_index(channel, jid)) if len(channel) else np.zeros(0),
        np.sin(hour), np.cos(hour), np.sin(weekday), np.cos(weekday),
    ]
    feats = np.stack(cols, axis=1).astype(np.float32)
    assert feats.shape[1] == N_TOUCH_FEATURES, feats.shape
    return feats


def collate_journeys(
    journeys: Any, feats: np.ndarray, idx: np.ndarray, lengths: np.ndarray | None = None,
    history: np.ndarray | None = None, calendar: np.ndarray | None = None,
) -> dict[str, torch.Tensor]:
    """Gather journeys ``idx`` into right-padded tensors.

    Parameters
    ----------
    journeys : Journeys
        Source journeys (per-touch arrays and ``offsets``; ``label`` and
        ``full_length`` if present).
    feats : np.ndarray
        Output of :func:`touch_features` for ``journeys``, shape (n_touch, F).
    idx : np.ndarray
        Journey indices to gather, shape (B,).
    lengths : np.ndarray | None
        Precomputed :func:`journey_lengths`, to avoid recomputing per batch.
    history : np.ndarray | None
        The customer history of every journey of ``journeys``, shape (n_journeys,
        N_HISTORY) (:func:`journeynet.data.history.journey_history`); None: ``journeys.history``
        if set, else the batch has none.
    calendar : np.ndarray | None
        The place in the data window of every journey, shape (n_journeys, N_CALENDAR)
        (:func:`journeynet.data.calendar.attached_calendar`); None: ``journeys.calendar`` if
        set, else the batch has none.

    Returns
    -------
    dict[str, torch.Tensor]
        ``channel``, ``campaign`` (B, T) long; ``feats`` (B, T, F) float; ``lengths``
        (B,) long; ``full_length`` (B,) long, touches before truncation; ``index`` (B,)
        long journey indices; ``label`` (B,) float when known; ``history`` (B, N_HISTORY)
        and ``calendar`` (B, N_CALENDAR) float when known.
    """
    idx = np.asarray(idx, dtype=np.int64)
    starts = np.asarray(journeys.offsets, dtype=np.int64)[idx]  # (B,)
    lens = (journey_lengths(journeys) if lengths is None else lengths)[idx]  # (B,)
    T = int(lens.max())
    steps = np.arange(T)[None, :]  # (1, T)
    mask = steps < lens[:, None]  # (B, T)
    touch = np.where(mask, starts[:, None] + steps, 0)  # (B, T), any valid row for padding
    channel = np.where(mask, np.asarray(journeys.channel)[touch], 0)  # (B, T)
    campaign = np.where(mask, np.asarray(journeys.campaign)[touch], 0)  # (B, T)
    f = np.where(mask[..., None], feats[touch], 0.0).astype(np.float32)  # (B, T, F)
    full = getattr(journeys, "full_length", None)
    full = lens if full is None else np.maximum(np.asarray(full, dtype=np.int64)[idx], lens)  # (B,)
    batch = {
        "channel": torch.from_numpy(channel.astype(np.int64)),
        "campaign": torch.from_numpy(campaign.astype(np.int64)),
        "feats": torch.from_numpy(f),
        "lengths": torch.from_numpy(lens.astype(np.int64)),
        "full_length": torch.from_numpy(full.astype(np.int64)),
        "index": torch.from_numpy(idx),
    }
    history = getattr(journeys, "history", None) if history is None else history
    if history is not None:
        batch["history"] = torch.from_numpy(np.asarray(history, dtype=np.float32)[idx])  # (B, N_HISTORY)
    calendar = getattr(journeys, "calendar", None) if calendar is None else calendar
    if calendar is not None:
        batch["calendar"] = torch.from_numpy(np.asarray(calendar, dtype=np.float32)[idx])  # (B, N_CALENDAR)
    label = getattr(journeys, "label", None)
    if label is not None:
        batch["label"] = torch.from_numpy(np.asarray(label)[idx].astype(np.float32))
    return batch
