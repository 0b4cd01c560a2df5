"""Counts of canonical touchpoint rows, accumulated batch by batch: what :mod:`.touchsource` answers from.

A :class:`TouchTally` takes canonical rows in any batching (one frame, or one file at a
time) and gives the same :class:`TouchSummary`: every sum is an integer count, or runs over
rows in a canonical order, and the funnel's sample is a bottom-k of seeded customer hashes,
exact while streaming because the k-th smallest hash seen only falls.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from journeynet.data.partition import CANONICAL, customer_hash

Unit = tuple[str, str]
_KEYS = ["date", "channel", "campaign_type"]


def sample_hash(customer_id: pd.Series | np.ndarray, seed: int) -> np.ndarray:
    """The seeded hash that orders customers for the funnel's sample, ``(n,)`` uint64.

    Its key differs from the train/val/test split's (:func:`~journeynet.data.partition.customer_fraction`),
    so the sample does not lean to one split.
    """
    return customer_hash(customer_id, f"{int(seed) % 10**12:012d}fnel")


def distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values of a 1-d array (a sort and a mask: several times faster than ``np.unique`` here)."""
    v = np.sort(values)
    return v[np.r_[True, v[1:] != v[:-1]]] if v.size else v


def row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """64-bit hash of each canonical row's content, ``(n,)`` uint64."""
    return pd.util.hash_pandas_object(frame[[c for c in CANONICAL if c in frame]], index=False).to_numpy()


@dataclass
class FunnelWindow:
    """The days the funnel sees (the spend's range) and its customer sample (``max_sequences``, ``seed``)."""

    first: pd.Timestamp
    n_days: int
    max_sequences: int | None
    seed: int

    def day(self, timestamp: pd.Series) -> np.ndarray:
        """Day index of each timestamp from ``first`` (float; inside when ``0 <= day < n_days``)."""
        return ((timestamp.dt.normalize() - self.first) / pd.Timedelta(days=1)).to_numpy()


@dataclass
class FunnelRows:
    """The funnel's rows: every touch inside the window of the sampled customers."""

    rows: pd.DataFrame
    n_customers: int  # customers with a touch inside the window (the sample's population)
    outside: int  # touches outside the window (left out)


@dataclass
class TouchTally:
    """Everything a run asks of its touchpoints, accumulated batch by batch of canonical rows.

    Parameters
    ----------
    window : FunnelWindow, optional
        The funnel's window and sample; without it no rows are kept.
    paid_units : iterable of (channel, campaign_type)
        Units whose touches count toward revenue per conversion (the spend's units).
    """

    window: FunnelWindow | None = None
    paid_units: Iterable[Unit] = ()
    count: bool = True  # False: only revenue and the sample (a frame's second question)
    rows: int = 0
    digest_sums: tuple[int, int] = (0, 0)
    _units: list[pd.DataFrame] = field(default_factory=list)
    _daily: list[pd.DataFrame] = field(default_factory=list)
    _conv: list[pd.DataFrame] = field(default_factory=list)
    _paid: list[pd.DataFrame] = field(default_factory=list)
    _kept: list[pd.DataFrame] = field(default_factory=list)
    _kept_hash: list[np.ndarray] = field(default_factory=list)
    _smallest: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    _customers: list[np.ndarray] = field(default_factory=list)
    outside: int = 0

    def __post_init__(self) -> None:
        self.paid_units = sorted(set(self.paid_units))
        self._unit_index = {u: i for i, u in enumerate(self.paid_units)}

    def add(self, frame: pd.DataFrame, hashes: np.ndarray | None = None) -> None:
        """Count one batch of canonical rows (``hashes``: their :func:`row_hashes`, when known)."""
        if len(frame) == 0:
            return
        conv = frame["converted"].to_numpy().astype(bool)
        if self.count:
            self._count(frame, row_hashes(frame) if hashes is None else hashes, conv)
        cust = customer_hash(frame["customer_id"])
        self._conv.append(pd.DataFrame({"customer": cust[conv], "timestamp": frame["timestamp"].to_numpy()[conv],
                                        "channel": frame["channel"].to_numpy()[conv],
                                        "campaign_type": frame["campaign_type"].to_numpy()[conv],
                                        "revenue": frame["revenue"].to_numpy(dtype=float)[conv]}))
        if self.paid_units:
            pairs = pd.MultiIndex.from_arrays([frame["channel"].astype(str),
                                               frame["campaign_type"].fillna("").astype(str)])
            unit = pd.MultiIndex.from_tuples(self.paid_units).get_indexer(pairs)
            paid = unit >= 0
            self._paid.append(pd.DataFrame({"customer": cust[paid], "timestamp": frame["timestamp"].to_numpy()[paid],
                                            "unit": unit[paid].astype(np.int64)}))
        if self.window is not None:
            self.keep_sample(frame)

    def _count(self, frame: pd.DataFrame, h: np.ndarray, conv: np.ndarray) -> None:
        """Totals, the order-free digest, and the counts per unit and per day and unit."""
        s1, s2 = self.digest_sums
        s1 = (s1 + int(h.sum(dtype=np.uint64))) % 2**64  # sums wrap at 2^64: the digest is a multiset hash
        s2 = (s2 + int(pd.util.hash_array(h).sum(dtype=np.uint64))) % 2**64
        self.digest_sums = (s1, s2)
        self.rows += len(frame)
        self._units.append(frame.groupby(["channel", "campaign_type"], sort=False)["converted"]
                           .agg(touches="size", conversions="sum").reset_index())
        day = frame.assign(date=frame["timestamp"].dt.normalize())
        self._daily.append(day.groupby(_KEYS, sort=False).size().rename("exposure").reset_index()
                           .merge(day[conv].groupby(_KEYS, sort=False).size().rename("last_touch").reset_index(),
                                  on=_KEYS, how="left"))

    def keep_sample(self, frame: pd.DataFrame) -> None:
        """Keep the rows of customers whose sample hash is among the k smallest seen so far."""
        w = self.window
        day = w.day(frame["timestamp"])
        inside = (day >= 0) & (day < w.n_days)
        self.outside += int((~inside).sum())
        rows = frame[inside]
        h = sample_hash(rows["customer_id"], w.seed)
        seen = distinct(h)
        self._customers.append(seen)
        k = w.max_sequences
        if k is not None:
            # the k-th smallest distinct hash seen only falls: a customer above it now never enters
            self._smallest = distinct(np.concatenate([self._smallest, seen]))[:k]
            if self._smallest.size == k:
                limit = self._smallest[-1]
                keep = h <= limit
                rows, h = rows[keep], h[keep]
                self._kept = [r[kh <= limit] for r, kh in zip(self._kept, self._kept_hash, strict=True)]
                self._kept_hash = [kh[kh <= limit] for kh in self._kept_hash]
        self._kept.append(rows)
        self._kept_hash.append(h)
        if len(self._customers) > 64:  # bounded: distinct hashes, merged now and then
            self._customers = [distinct(np.concatenate(self._customers))]

    def summary(self) -> TouchSummary:
        """The answers, once every batch is in."""
        units = pd.concat(self._units, ignore_index=True).groupby(["channel", "campaign_type"], sort=True)[
            ["touches", "conversions"]].sum().reset_index() if self._units else \
            pd.DataFrame({"channel": [], "campaign_type": [], "touches": [], "conversions": []})
        daily = _daily_counts(self._daily)
        conv = pd.concat(self._conv, ignore_index=True) if self._conv else None
        funnel = None
        if self.window is not None:
            n = int(distinct(np.concatenate(self._customers)).size) if self._customers else 0
            kept = pd.concat(self._kept) if self._kept else pd.DataFrame(columns=CANONICAL)
            funnel = FunnelRows(kept, n, self.outside)
        revenue = _revenue_stats(conv, pd.concat(self._paid, ignore_index=True) if self._paid else None,
                                 self.paid_units)
        conversions = int(units["conversions"].sum()) if len(units) else 0
        return TouchSummary(self.rows, conversions, units, daily, _conversion_routes(conv),
                            revenue, f"{self.rows}-{self.digest_sums[0]:016x}-{self.digest_sums[1]:016x}", funnel)


def _daily_counts(parts: list[pd.DataFrame]) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame({"date": pd.to_datetime([]), "channel": [], "campaign_type": [], "exposure": [],
                             "last_touch": []})
    daily = pd.concat(parts, ignore_index=True)
    daily["last_touch"] = daily["last_touch"].fillna(0).astype(np.int64)
    return daily.groupby(_KEYS, sort=True)[["exposure", "last_touch"]].sum().reset_index()


def _conversion_routes(conv: pd.DataFrame | None) -> pd.DataFrame:
    """Conversions per (timestamp day, channel, campaign_type): what the model checks count."""
    if conv is None or conv.empty:
        return pd.DataFrame({"timestamp": pd.to_datetime([]), "channel": [], "campaign_type": [], "count": []})
    day = conv.assign(timestamp=conv["timestamp"].dt.normalize())
    return day.groupby(["timestamp", "channel", "campaign_type"], sort=True).size().rename("count").reset_index()


@dataclass
class RevenueStats:
    """Per paid unit: the summed revenue and count of the conversions it touched beforehand; and all conversions'."""

    by_unit: dict[Unit, tuple[float, int]]
    overall: float  # mean revenue of a conversion


def _revenue_stats(conv: pd.DataFrame | None, paid: pd.DataFrame | None,
                   units: list[Unit]) -> RevenueStats | None:
    """Revenue per conversion's sums, in a canonical order of conversions (the same however rows were batched)."""
    if conv is None or conv.empty:
        return None
    conv = conv.sort_values(["customer", "timestamp", "revenue", "channel", "campaign_type"],
                            ignore_index=True, kind="stable")
    revenue = conv["revenue"].fillna(0.0).to_numpy(dtype=float)
    overall = float(np.mean(revenue))
    by_unit: dict[Unit, tuple[float, int]] = {}
    if paid is not None and len(paid):
        paid = paid[np.isin(paid["customer"].to_numpy(), conv["customer"].to_numpy())]
        m = paid.merge(pd.DataFrame({"customer": conv["customer"], "converted_at": conv["timestamp"],
                                     "conversion": np.arange(len(conv))}), on="customer")
        m = m[m["timestamp"] <= m["converted_at"]]
        pairs = np.unique(np.stack([m["unit"].to_numpy(), m["conversion"].to_numpy()], 1), axis=0)
        for u in np.unique(pairs[:, 0]) if len(pairs) else []:
            ids = pairs[pairs[:, 0] == u, 1]  # sorted: np.unique orders the pairs
            by_unit[units[int(u)]] = (float(np.sum(revenue[ids])), int(ids.size))
    return RevenueStats(by_unit, overall)


@dataclass
class TouchSummary:
    """What :class:`TouchTally` found: totals, per-unit and per-day counts, conversions, revenue, the sample."""

    rows: int
    conversions: int
    units: pd.DataFrame  # channel, campaign_type, touches, conversions
    daily: pd.DataFrame  # date, channel, campaign_type, exposure, last_touch
    conversion_routes: pd.DataFrame  # timestamp (day), channel, campaign_type, count
    revenue: RevenueStats | None
    digest: str
    funnel: FunnelRows | None = None
