"""Daily event tables for fitting the funnel model, built from canonical frames.

A *sequence* is one customer from the first touch to a conversion or the end of the
data (a customer who buys again starts a new sequence). Per day, a sequence shows the
paid units and unpaid channels that touched it and, on its last day, how it converted:
on a paid touch (the unit's ``move`` sent it to conversion) or in an unpaid session
(the stage hazard).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from journeynet.data.touchsource import TouchSource, as_source
from journeynet.errors import InputError

log = logging.getLogger(__name__)


@dataclass
class FunnelData:
    """Vectorized daily observations; sequences are sorted by their first day."""

    units: list[tuple[str, str]]
    unpaid_channels: list[str]
    dates: pd.DatetimeIndex
    spend: np.ndarray  # (T, U) daily spend
    first_day: np.ndarray  # (N,) day of the first touch
    conv_day: np.ndarray  # (N,) day of conversion, -1 when none
    conv_route: np.ndarray  # (N,) unit index, or -1 - c for an unpaid session of channel c
    paid: np.ndarray  # (E, 4) int: sequence, day, unit, moves (0 when the unit came after a conversion)
    unpaid: np.ndarray  # (F, 3) int: sequence, day, channel
    sample_fraction: float = 1.0  # share of the market's sequences held here
    customer: np.ndarray | None = None  # (N,) customer id of each sequence
    end_day: np.ndarray | None = None  # (N,) last day a non-converting sequence is observed
    seq_order: np.ndarray | None = None  # raw sequence code -> position in first-day order

    def __post_init__(self) -> None:
        if self.end_day is None:
            self.end_day = np.full(self.first_day.size, self.n_days - 1, dtype=np.int64)

    def subset(self, keep: np.ndarray, n_days: int | None = None) -> FunnelData:
        """The sequences ``keep`` (bool, N) seen through day ``n_days - 1`` (default: every day).

        A sequence converting after the cut is, within the cut, one that has not converted;
        ``sample_fraction`` shrinks with the share of sequences kept, so the pool scales back.
        """
        t = self.n_days if n_days is None else int(n_days)
        keep = np.asarray(keep, dtype=bool) & (self.first_day < t)
        new_index = np.cumsum(keep) - 1
        seq_ok = lambda rows: keep[rows[:, 0]] & (rows[:, 1] < t)  # noqa: E731
        paid, unpaid = self.paid[seq_ok(self.paid)].copy(), self.unpaid[seq_ok(self.unpaid)].copy()
        paid[:, 0], unpaid[:, 0] = new_index[paid[:, 0]], new_index[unpaid[:, 0]]
        conv_day = np.where(self.conv_day < t, self.conv_day, -1)[keep]
        conv_route = np.where(self.conv_day < t, self.conv_route, 0)[keep]
        end_day = np.minimum(self.end_day, t - 1)[keep]
        fraction = self.sample_fraction * keep.sum() / max(int((self.first_day < t).sum()), 1)
        return FunnelData(self.units, self.unpaid_channels, self.dates[:t], self.spend[:t], self.first_day[keep],
                          conv_day, conv_route, paid, unpaid, fraction,
                          customer=None if self.customer is None else self.customer[keep], end_day=end_day)

    def recent_exposure(self, window: int) -> np.ndarray:
        """Per row of ``paid``: the sequence's paid touches (unit-days) in the ``window`` days before."""
        if len(self.paid) == 0:
            return np.zeros(0, dtype=np.int64)
        key = self.paid[:, 0] * (self.n_days + window + 1) + self.paid[:, 1] + window
        order = np.sort(key)
        return np.searchsorted(order, key, "left") - np.searchsorted(order, key - window, "left")

    @property
    def n_sequences(self) -> int:
        """Number of sequences."""
        return int(self.first_day.size)

    @property
    def n_days(self) -> int:
        """Number of days in the window."""
        return int(self.spend.shape[0])


def spend_matrix(spend: pd.DataFrame) -> tuple[list[tuple[str, str]], pd.DatetimeIndex, np.ndarray]:
    """Daily spend as a ``(T, U)`` matrix over the full date range, missing days as 0."""
    dates = pd.date_range(spend["date"].min(), spend["date"].max(), freq="D")
    wide = spend.pivot_table(index="date", columns=["channel", "campaign_type"], values="spend", aggfunc="sum")
    wide = wide.reindex(dates).fillna(0.0)
    units = [(str(c), str(k)) for c, k in wide.columns]
    return units, dates, wide.to_numpy(dtype=float)


def build_funnel_data(touchpoints: pd.DataFrame | TouchSource, spend: pd.DataFrame, max_sequences: int | None = None,
                      seed: int = 0, unpaid_channels: list[str] | None = None) -> FunnelData:
    """Turn canonical touchpoints (a frame, or a lake's :class:`TouchSource`) and spend into daily event tables.

    Touches outside the spend window are dropped (logged). ``max_sequences`` keeps a
    sample of customers, recorded in ``sample_fraction`` so the fit can scale the market
    back up: those whose seeded hash of the id is smallest
    (:func:`journeynet.data.touchsource.sample_hash`), the same customers from a frame and
    from the files it was read from.
    """
    units, dates, matrix = spend_matrix(spend)
    found = as_source(touchpoints).funnel_rows(dates[0], len(dates), max_sequences, seed)
    if found.outside:
        log.warning("funnel: %d touches fall outside the spend window %s..%s and are left out",
                    found.outside, dates[0].date(), dates[-1].date())
    tp = found.rows
    if tp.empty:
        raise InputError("touchpoints: no touch falls inside the spend data's date range")
    day = ((tp["timestamp"].dt.normalize() - dates[0]) / pd.Timedelta(days=1)).to_numpy().astype(np.int64)
    customer = pd.factorize(tp["customer_id"])[0]
    fraction = 1.0
    if max_sequences is not None and found.n_customers > max_sequences:
        fraction = max_sequences / found.n_customers
    converted = tp["converted"].to_numpy().astype(bool)
    # a purchase closes a sequence: later touches of the same customer start a new one
    order = np.lexsort((tp["timestamp"].to_numpy(), customer))
    customer, day, converted = customer[order], day[order], converted[order]
    prior_conv = np.cumsum(converted) - converted
    new_cust = np.r_[True, customer[1:] != customer[:-1]]
    base = np.maximum.accumulate(np.where(new_cust, prior_conv, 0))
    seq_raw = pd.factorize(pd.Series(customer).astype(str) + ":" + pd.Series(prior_conv - base).astype(str))[0]
    key = _touch_keys(tp.iloc[order], units)
    data = _tables(units, dates, matrix, seq_raw, day, converted, key, fraction, unpaid_channels)
    ids = tp["customer_id"].to_numpy()[order]
    seq_customer = np.empty(data.n_sequences, dtype=object)
    seq_customer[data.seq_order[seq_raw]] = ids
    data.customer = seq_customer
    return data


def _touch_keys(tp: pd.DataFrame, units: list[tuple[str, str]]) -> pd.Series:
    """``"u:<index>"`` for paid units, the unpaid channel name otherwise."""
    pair = tp["channel"].astype(str) + "\x1f" + tp["campaign_type"].astype(str)
    unit_index = {f"{c}\x1f{k}": i for i, (c, k) in enumerate(units)}
    code = pair.map(unit_index)
    unpaid_name = np.where(tp["campaign_type"].astype(str) == "", tp["channel"].astype(str),
                           tp["channel"].astype(str) + "/" + tp["campaign_type"].astype(str))
    return pd.Series(np.where(code.notna(), "u:" + code.fillna(-1).astype(int).astype(str), unpaid_name),
                     index=tp.index)


def _tables(units: list[tuple[str, str]], dates: pd.DatetimeIndex, matrix: np.ndarray, seq: np.ndarray,
            day: np.ndarray, converted: np.ndarray, key: pd.Series, fraction: float,
            known_unpaid: list[str] | None = None) -> FunnelData:
    key = key.to_numpy().astype(str)
    is_paid = np.char.startswith(key, "u:")
    unit = np.where(is_paid, np.char.lstrip(np.where(is_paid, key, "u:0"), "u:"), "0").astype(np.int64)
    seen = sorted(set(key[~is_paid]))
    unpaid_channels = list(known_unpaid or []) + [c for c in seen if c not in (known_unpaid or [])]
    c_index = {c: i for i, c in enumerate(unpaid_channels)}
    chan = np.array([c_index.get(k, -1) for k in key[~is_paid]], dtype=np.int64)
    chan_all = np.full(key.size, -1, dtype=np.int64)
    chan_all[~is_paid] = chan

    # order sequences by first day (the fit grows its active set as a prefix)
    first = pd.Series(day).groupby(seq).min()
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first.to_numpy(), kind="stable")] = np.arange(first.size)
    seq = rank[seq]
    n = first.size
    first_day = np.sort(first.to_numpy())
    conv_day = np.full(n, -1, dtype=np.int64)
    conv_route = np.zeros(n, dtype=np.int64)
    conv_day[seq[converted]] = day[converted]
    conv_route[seq[converted]] = np.where(is_paid[converted], unit[converted], -1 - chan_all[converted])

    # the unpaid session in which a hazard conversion happened is the conversion, not an emission
    emission = ~converted | is_paid
    up = np.unique(np.stack([seq, day, chan_all], 1)[emission & ~is_paid], axis=0)
    pd_ = np.unique(np.stack([seq, day, unit], 1)[is_paid], axis=0)
    # on a conversion day, units after the converting unit in order touched an already-converted customer
    after = (pd_[:, 1] == conv_day[pd_[:, 0]]) & (conv_route[pd_[:, 0]] >= 0) & (pd_[:, 2] > conv_route[pd_[:, 0]])
    paid = np.column_stack([pd_, (~after).astype(np.int64)])
    return FunnelData(units, unpaid_channels, dates, matrix, first_day, conv_day, conv_route, paid, up, fraction,
                      seq_order=rank)
