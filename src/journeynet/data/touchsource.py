"""The touchpoint-level questions a run asks after its journeys are built, from a frame or a lake.

After the journeys, a run still asks a few things of its touchpoints: the rows of a
sample of customers (the funnel engine's fit), touches and last-touch conversions per
day and unit (``daily_units.csv``), the conversions by day and route (model checks),
revenue per conversion of each paid unit, totals, and a fingerprint for the fit cache.
:class:`TouchFrame` answers them from a canonical frame in memory; :class:`TouchLake`
answers them from the files of ``data.touchpoints`` in one streamed pass, file by file
through the ordinary loader (every check of :mod:`journeynet.data.inputs` runs, and an
error names the file), so no process holds the whole frame. Both feed the same
:class:`TouchTally`, so their answers are the same to the byte.

Rules both follow (so neither depends on how rows are batched):

* The funnel's customer sample is the ``max_sequences`` customers (of those with a touch
  inside the spend window) whose seeded 64-bit hash of the id is smallest
  (:func:`sample_hash`): a bottom-k sample, uniform over customers, kept exactly while
  streaming because the k-th smallest hash seen only falls.
* Revenue and the fingerprint identify customers and rows by 64-bit hashes; sums run
  over rows in a canonical order.
* A lake's rows that repeat a row of an earlier file exactly are dropped, as the
  in-memory loader drops exact duplicates (by the row's 64-bit hash; two different rows
  sharing one would be taken for duplicates, about one chance in 10^13 per pair).

Quickstart
----------
>>> import pandas as pd
>>> tp = pd.DataFrame({"customer_id": ["a", "a", "b"],
...     "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-02"]),
...     "channel": ["google_ads", "direct", "email"], "campaign_type": ["search", "", ""],
...     "converted": [0, 1, 0], "revenue": [0.0, 80.0, 0.0]})
>>> src = TouchFrame(tp)
>>> src.conversions, src.daily_counts()["exposure"].tolist()
(1, [1, 1, 1])
>>> src.revenue_per_conversion({("google_ads", "search")})
{('google_ads', 'search'): 80.0}
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from journeynet.data.partition import CANONICAL, customer_hash
from journeynet.errors import InputError

log = logging.getLogger(__name__)

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


class TouchSource:
    """The interface :class:`TouchFrame` and :class:`TouchLake` share; see the module docstring."""

    summary: TouchSummary

    @property
    def rows(self) -> int:
        """Touchpoints (after duplicates are dropped)."""
        return self.summary.rows

    @property
    def conversions(self) -> int:
        """Touchpoints that mark a conversion."""
        return self.summary.conversions

    @property
    def digest(self) -> str:
        """A fingerprint of the rows' content, the same whatever their order or batching."""
        return self.summary.digest

    def units(self) -> pd.DataFrame:
        """``channel, campaign_type, touches, conversions`` per unit, sorted."""
        return self.summary.units

    def daily_counts(self) -> pd.DataFrame:
        """``date, channel, campaign_type, exposure, last_touch`` (int64) per day and unit with a touch, sorted."""
        return self.summary.daily

    def conversion_routes(self) -> pd.DataFrame:
        """Conversions per day (``timestamp``, normalized) and unit, ``count``: for the model checks."""
        return self.summary.conversion_routes

    def revenue_per_conversion(self, units: Iterable[Unit], prior_weight: float = 10.0) -> dict[Unit, float] | None:
        """Mean revenue of the conversions each unit touched beforehand, shrunk toward the mean of all.

        ``prior_weight`` pseudo-conversions at the overall mean; None when nothing converts.
        """
        stats = self.revenue_stats(units)
        if stats is None:
            return None
        return {u: float((stats.by_unit.get(u, (0.0, 0))[0] + prior_weight * stats.overall)
                         / (stats.by_unit.get(u, (0.0, 0))[1] + prior_weight)) for u in units}

    def revenue_stats(self, units: Iterable[Unit]) -> RevenueStats | None:
        """:class:`RevenueStats` covering ``units``."""
        raise NotImplementedError

    def funnel_rows(self, first: pd.Timestamp, n_days: int, max_sequences: int | None, seed: int) -> FunnelRows:
        """The funnel's rows: ``n_days`` from ``first``, the sample of ``max_sequences`` customers for ``seed``."""
        raise NotImplementedError


class TouchFrame(TouchSource):
    """A canonical touchpoint frame in memory (generated data, a small file), answering as a lake would."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self._summary: TouchSummary | None = None
        self._revenue: dict[tuple[Unit, ...], RevenueStats | None] = {}

    @property
    def summary(self) -> TouchSummary:  # type: ignore[override]
        """Counted on first use."""
        if self._summary is None:
            tally = TouchTally()
            tally.add(self.frame)
            self._summary = tally.summary()
        return self._summary

    def revenue_stats(self, units: Iterable[Unit]) -> RevenueStats | None:
        """:class:`RevenueStats` covering ``units`` (None without a revenue column)."""
        if "revenue" not in self.frame or not self.frame["revenue"].notna().any():
            return None
        key = tuple(sorted(set(units)))
        if key not in self._revenue:
            tally = TouchTally(paid_units=key, count=False)
            tally.add(self.frame)
            self._revenue[key] = tally.summary().revenue
        return self._revenue[key]

    def funnel_rows(self, first: pd.Timestamp, n_days: int, max_sequences: int | None, seed: int) -> FunnelRows:
        """The frame's rows in the window of the sampled customers, in the frame's order."""
        tally = TouchTally(FunnelWindow(first, n_days, max_sequences, seed))
        tally.keep_sample(self.frame)
        return tally.summary().funnel  # type: ignore[return-value]


def as_source(touchpoints: pd.DataFrame | TouchSource) -> TouchSource:
    """``touchpoints`` as a :class:`TouchSource` (a frame is wrapped)."""
    return touchpoints if isinstance(touchpoints, TouchSource) else TouchFrame(touchpoints)


class TouchLake(TouchSource):
    """The touchpoints of ``data.touchpoints`` (a Parquet directory or glob, or one file), streamed file by file.

    The constructor makes one pass: each file is read and validated by the ordinary loader
    (errors name the file), joined to the spend's single campaign types, stripped of rows
    that repeat an earlier file's, and counted into a :class:`TouchTally`; the rows of
    the funnel's sample for ``window`` are kept. A later question for another sample
    makes another pass.

    Parameters
    ----------
    data : mapping
        The ``data`` config (a plain dict): touchpoints, columns, conversion, maps, start, end, ...
    spend : pd.DataFrame, optional
        Canonical spend (its units count toward revenue; its range is the funnel's window).
    sample : (max_sequences, seed), optional
        The funnel's customer sample to keep during the pass.
    """

    def __init__(self, data: Mapping[str, Any], spend: pd.DataFrame | None = None,
                 sample: tuple[int | None, int] | None = None) -> None:
        self.data = dict(data)
        self.spend = spend
        self.path = str(data["touchpoints"])
        self.paid_units = sorted(set(zip(spend["channel"], spend["campaign_type"], strict=True))) \
            if spend is not None else []
        self.window = self._window(*sample) if sample is not None and spend is not None else None
        self.summary = self._scan(TouchTally(self.window, self.paid_units), announce=True)
        if self.summary.rows == 0:
            raise InputError(f"touchpoints files under {self.path}: no rows"
                             + (" in the date range" if data.get("start") or data.get("end") else ""))

    def _window(self, max_sequences: int | None, seed: int) -> FunnelWindow:
        from journeynet.causal.data import spend_matrix

        _, dates, _ = spend_matrix(self.spend)
        return FunnelWindow(dates[0], len(dates), max_sequences, seed)

    def batches(self) -> Iterator[tuple[str, pd.DataFrame]]:
        """Each file's canonical rows (validated by the loader, duplicates in the file dropped), with its path."""
        from journeynet.data.engines import input_files, load_file

        for file in input_files(self.data):
            yield file, load_file(self.data, file)

    def _scan(self, tally: TouchTally, announce: bool = False) -> TouchSummary:
        from journeynet.data.units import join_single_campaign

        seen: list[np.ndarray] = []  # each earlier file's row hashes, sorted
        dropped = n_files = 0
        for _, frame in self.batches():
            n_files += 1
            h = row_hashes(frame)  # before the join, as the loader drops duplicates before it
            repeat = np.zeros(len(h), dtype=bool)
            for earlier in seen:
                at = np.minimum(np.searchsorted(earlier, h), earlier.size - 1)
                repeat |= earlier[at] == h
            if repeat.any():
                dropped += int(repeat.sum())
                frame, h = frame[~repeat], h[~repeat]
            if len(h):
                seen.append(np.sort(h))
            if self.spend is not None and len(frame):
                joined = join_single_campaign(frame, self.spend, announce=False)
                frame, h = joined, h if joined is frame else row_hashes(joined)
            tally.add(frame, h)
        if announce:
            if dropped:
                log.warning("touchpoints under %s: dropped %d rows that repeat a row of an earlier file", self.path,
                            dropped)
            log.info("touchpoints under %s: %d rows from %d files counted file by file; the frame is not held",
                     self.path, tally.rows, n_files)
        summary = tally.summary()
        if summary.funnel is not None:
            summary.funnel.rows = _canonical_order(summary.funnel.rows)
        return summary

    def revenue_stats(self, units: Iterable[Unit]) -> RevenueStats | None:
        """:class:`RevenueStats` covering ``units`` (the spend's units are counted in the pass)."""
        wanted = set(units)
        if wanted <= set(self.paid_units):
            return self.summary.revenue
        return self._scan(TouchTally(paid_units=wanted | set(self.paid_units), count=False)).revenue

    def funnel_rows(self, first: pd.Timestamp, n_days: int, max_sequences: int | None, seed: int) -> FunnelRows:
        """The sample's rows in the canonical order (customer id, then time, then file order)."""
        window = FunnelWindow(first, n_days, max_sequences, seed)
        if self.window is not None and self.window == window:
            return self.summary.funnel  # type: ignore[return-value]
        return self._scan(TouchTally(window, count=False)).funnel  # type: ignore[return-value]


def _canonical_order(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by customer id (text order) then time, ties in arrival order: the loader's order."""
    if len(frame) == 0:
        return frame.reset_index(drop=True)
    codes, _ = pd.factorize(frame["customer_id"], sort=True)
    order = np.lexsort((frame["timestamp"].to_numpy(), codes))
    return frame.take(order).reset_index(drop=True)
