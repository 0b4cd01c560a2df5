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
from typing import Any

import numpy as np
import pandas as pd

from journeynet.data.touchtally import (  # noqa: F401  (sample_hash, row_hashes: re-exported)
    FunnelRows,
    FunnelWindow,
    RevenueStats,
    TouchSummary,
    TouchTally,
    Unit,
    row_hashes,
    sample_hash,
)
from journeynet.errors import InputError

log = logging.getLogger(__name__)


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
