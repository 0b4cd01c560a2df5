"""A customer's earlier journeys, as a few numbers per journey (what is known when it is scored).

A journey is scored at its end. By then the customer's journeys that ended strictly
earlier are known, outcome included: how many there were, how many converted, and how
long ago the latest of them ended. :func:`customer_history` computes these once from the
per-journey arrays of :class:`~journeynet.data.journeys.Journeys` (vectorized, sorted by
customer then end time); :func:`with_history` attaches them as ``Journeys.history``,
which subsets carry, so a journey keeps its history when it is scored alone or with a
unit's touches deleted. A journey store does not hold it: its shards keep each customer
whole, so :func:`~journeynet.data.store.read_store` computes it on reading.

The runs key the history on ``customer_id``, so it only spans journeys this project cut
itself (:func:`~journeynet.data.journeys.build_journeys`: at a conversion or a silence longer
than ``lookback_days``, which are known when the next journey starts). Exports whose ids
already cut journeys within a user (``u12_j7``, ``data.split_group``) get no history: their
cuts may follow the outcome. The Criteo development set (CausalMTA's preprocessing) groups
a user's impressions by attributed conversion: a user has at most one non-converting
journey, overlapping the converting one in time in 43% of two-journey users, so a second
journey converts exactly when the first did not (3,096 of 3,096 and 0 of 2,735); keyed on the
user, the history read that off (test AUC 0.9183 -> 0.9320, seed 0), which a deployed model
scoring journeys as they happen could not. ``group_pattern`` keys on the user for analysis.

Columns (:data:`HISTORY_FEATURES`): ``earlier``, log1p of the number of the customer's
journeys that ended before this one ended; ``earlier_converted``, log1p of how many of
them converted; ``since_previous``, log1p of the hours from the latest of them's end to
this journey's end, divided by :data:`HOUR_SCALE`, or :data:`NO_PREVIOUS` for a first journey.

Quickstart
----------
>>> import numpy as np
>>> from types import SimpleNamespace
>>> h = 3_600_000_000_000  # one hour in ns
>>> j = SimpleNamespace(customer_id=np.array(["a", "b", "a"], dtype=object), journey=np.array([0, 0, 1]),
...     label=np.array([1, 0, 0], np.int8), end_time=np.array([0, 5, 99]) * h)
>>> x = customer_history(j)
>>> np.expm1(x[:, :2]).round().tolist(), bool(x[0, 2] == NO_PREVIOUS), round(float(np.expm1(x[2, 2] * HOUR_SCALE)))
([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]], True, 99)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

#: Per-journey customer-history columns, in order.
HISTORY_FEATURES = ("earlier", "earlier_converted", "since_previous")
N_HISTORY = len(HISTORY_FEATURES)
EARLIER, EARLIER_CONVERTED, SINCE_PREVIOUS = range(N_HISTORY)
#: ``since_previous`` of a journey with no earlier one (below any real value, which is >= 0).
NO_PREVIOUS = -1.0
#: log1p(hours) is divided by this so a year (~9.1) sits near 1.8, like the summary's other numbers.
HOUR_SCALE = 5.0
_NS_PER_HOUR = 3_600_000_000_000
_NEEDS = ("customer_id", "journey", "label", "end_time")


def customer_history(journeys: Any, group_pattern: str | None = None) -> np.ndarray:
    """The customer's earlier journeys, per journey; columns as in :data:`HISTORY_FEATURES`.

    Parameters
    ----------
    journeys : Journeys
        Any object with per-journey ``customer_id``, ``journey``, ``label`` and
        ``end_time`` (int64 ns); journeys may come in any order.
    group_pattern : str | None
        ``data.split_group``: the customer is the part of ``customer_id`` it matches.

    Returns
    -------
    np.ndarray
        float32, shape (n_journeys, N_HISTORY). Only journeys of the same customer that
        ended strictly before the journey's end count; ties in end time count for neither.
    """
    from journeynet.data.journeys import split_keys

    missing = [n for n in _NEEDS if getattr(journeys, n, None) is None]
    if missing:
        raise ValueError(f"customer_history needs per-journey {', '.join(_NEEDS)}; missing {', '.join(missing)}")
    end = np.asarray(journeys.end_time, dtype=np.int64)
    n = len(end)
    out = np.zeros((n, N_HISTORY), dtype=np.float32)
    if n == 0:
        return out
    ids = np.asarray(journeys.customer_id)
    key = pd.factorize(ids if group_pattern is None else split_keys(ids, group_pattern))[0]  # (n,) customer codes
    d_key, d_end = np.diff(key), np.diff(end)
    if np.all((d_key > 0) | ((d_key == 0) & (d_end >= 0))):
        order = np.arange(n)  # build_journeys' order (customer, then time): skip the costly sort
    else:
        order = np.lexsort((np.asarray(journeys.journey, dtype=np.int64), end, key))  # customer, then end time
    k, t = key[order], end[order]
    conv = (np.asarray(journeys.label)[order] == 1).astype(np.int64)
    i = np.arange(n)
    new_customer = np.r_[True, k[1:] != k[:-1]]
    new_time = new_customer | np.r_[True, t[1:] != t[:-1]]  # first of its (customer, end time) group
    customer_start = np.maximum.accumulate(np.where(new_customer, i, 0))
    group_start = np.maximum.accumulate(np.where(new_time, i, 0))
    earlier = group_start - customer_start  # journeys of the customer sorted before this end time
    conv_before = np.r_[0, np.cumsum(conv)]  # conversions among sorted positions < p
    earlier_conv = conv_before[group_start] - conv_before[customer_start]
    prev_end = t[np.maximum(group_start - 1, 0)]
    hours = np.maximum(t - prev_end, 0) / _NS_PER_HOUR
    since = np.where(earlier > 0, np.log1p(hours) / HOUR_SCALE, NO_PREVIOUS)
    out[order] = np.stack([np.log1p(earlier), np.log1p(earlier_conv), since], axis=1)
    return out


def with_history(journeys: Any, group_pattern: str | None = None) -> Any:
    """``journeys`` with ``history`` set to :func:`customer_history` (a copy; the arrays are shared)."""
    return dataclasses.replace(journeys, history=customer_history(journeys, group_pattern))


def journey_history(journeys: Any) -> np.ndarray | None:
    """``journeys.history`` when set, else computed from its own journeys (customer = ``customer_id``).

    None when ``journeys`` lacks the per-journey arrays (a hand-made batch source): a net
    that reads the history then refuses it.
    """
    history = getattr(journeys, "history", None)
    if history is not None:
        return np.asarray(history, dtype=np.float32)
    if any(getattr(journeys, n, None) is None for n in _NEEDS):
        return None
    return customer_history(journeys)
