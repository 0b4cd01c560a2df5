"""Turn canonical touchpoints into encoded journeys, and split them.

A journey is a customer's run of touches that ends at a converting touch
(inclusive, label 1), before a silence longer than ``lookback_days`` (label 0),
or at the customer's last touch (label 0).

Quickstart
----------
>>> import pandas as pd
>>> tp = pd.DataFrame({
...     "customer_id": ["a", "a", "a"],
...     "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
...     "channel": ["email", "google_ads", "direct"],
...     "campaign_type": ["", "search", ""],
...     "converted": [0, 1, 0], "revenue": [0.0, 50.0, 0.0]})
>>> vocab = Vocab.fit(tp)
>>> j = build_journeys(tp, vocab)
>>> len(j), j.label.tolist(), j.lengths.tolist()
(2, [1, 0], [2, 1])
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

PAD, UNK = "<pad>", "<unk>"
_NS_PER_HOUR = 3_600_000_000_000
_NS_PER_DAY = 24 * _NS_PER_HOUR


def _lookup(vocab: list, values: pd.Index | Sequence) -> np.ndarray:
    """Ids of ``values`` in ``vocab``; unknown values get id 1."""
    ids = pd.Index(vocab).get_indexer(pd.Index(values))
    return np.where(ids < 0, 1, ids).astype(np.int64)


@dataclass
class Vocab:
    """Ids for channels, campaign types and units; id 0 is ``<pad>``, id 1 is ``<unk>``.

    ``units`` are ``(channel, campaign_type)`` pairs; the empty campaign type ``""``
    (unpaid channels) is a category like any other. ``paid`` flags units seen in spend.
    """

    channels: list[str]
    campaign_types: list[str]
    units: list[tuple[str, str]]
    paid: list[bool]

    @classmethod
    def fit(cls, touchpoints: pd.DataFrame, spend: pd.DataFrame | None = None) -> Vocab:
        """Build the vocabulary from touchpoints and, when given, the spend's paid units.

        Parameters
        ----------
        touchpoints : pd.DataFrame
            Canonical touchpoints.
        spend : pd.DataFrame, optional
            Canonical spend; its units are added (and flagged paid) even when unseen.

        Returns
        -------
        Vocab
            Sorted names after the two reserved ids.
        """
        frames = [touchpoints[["channel", "campaign_type"]]]
        if spend is not None:
            frames.append(spend[["channel", "campaign_type"]])
        units = pd.concat(frames).drop_duplicates().sort_values(["channel", "campaign_type"])
        pairs = list(zip(units["channel"], units["campaign_type"], strict=True))
        paid_set: set[tuple[str, str]] = set()
        if spend is not None:
            s = spend[["channel", "campaign_type"]].drop_duplicates()
            paid_set = set(zip(s["channel"], s["campaign_type"], strict=True))
        return cls(
            channels=[PAD, UNK, *sorted(set(units["channel"]))],
            campaign_types=[PAD, UNK, *sorted(set(units["campaign_type"]))],
            units=[(PAD, PAD), (UNK, UNK), *pairs],
            paid=[False, False, *[p in paid_set for p in pairs]],
        )

    @property
    def n_channels(self) -> int:
        """Number of channel ids, reserved ids included (an embedding's size)."""
        return len(self.channels)

    @property
    def n_campaigns(self) -> int:
        """Number of campaign-type ids, reserved ids included."""
        return len(self.campaign_types)

    @property
    def n_units(self) -> int:
        """Number of unit ids, reserved ids included."""
        return len(self.units)

    def encode_channels(self, values: Sequence[str] | pd.Series) -> np.ndarray:
        """Encode channel names as int64 ids (unknown -> 1)."""
        return _lookup(self.channels, values)

    def encode_campaigns(self, values: Sequence[str] | pd.Series) -> np.ndarray:
        """Encode campaign types as int64 ids (unknown -> 1)."""
        return _lookup(self.campaign_types, values)

    def encode_units(
        self, channels: Sequence[str] | pd.Series, campaign_types: Sequence[str] | pd.Series
    ) -> np.ndarray:
        """Encode (channel, campaign_type) pairs as int64 unit ids (unknown -> 1)."""
        index = pd.MultiIndex.from_tuples(self.units)
        query = pd.MultiIndex.from_arrays([list(channels), list(campaign_types)])
        ids = index.get_indexer(query)
        return np.where(ids < 0, 1, ids).astype(np.int64)

    def unit_frame(self) -> pd.DataFrame:
        """One row per real unit: ``unit_id, channel, campaign_type, paid``."""
        ch, ct = zip(*self.units[2:], strict=True) if len(self.units) > 2 else ((), ())
        return pd.DataFrame({
            "unit_id": np.arange(2, len(self.units), dtype=np.int64),
            "channel": list(ch), "campaign_type": list(ct), "paid": self.paid[2:],
        })

    def save(self, path: str | Path) -> None:
        """Write the vocabulary as JSON so a checkpoint can encode new files the same way."""
        obj = {"channels": self.channels, "campaign_types": self.campaign_types,
               "units": [list(u) for u in self.units], "paid": self.paid}
        Path(path).write_text(json.dumps(obj, indent=2))

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        """Read a vocabulary written by :meth:`save`."""
        obj = json.loads(Path(path).read_text())
        return cls(obj["channels"], obj["campaign_types"],
                   [tuple(u) for u in obj["units"]], [bool(p) for p in obj["paid"]])


@dataclass
class Journeys:
    """Encoded journeys: per-touch arrays concatenated in journey order, plus per-journey arrays.

    Touch ``k`` of journey ``i`` is at ``offsets[i] + k``.
    """

    channel: np.ndarray  # (n_touch,) int64
    campaign: np.ndarray  # (n_touch,) int64
    unit: np.ndarray  # (n_touch,) int64
    log_dt_prev: np.ndarray  # (n_touch,) float32, log1p hours since the previous touch
    log_dt_end: np.ndarray  # (n_touch,) float32, log1p hours to the journey's last touch
    position: np.ndarray  # (n_touch,) int64, 0-based in the truncated journey
    time: np.ndarray  # (n_touch,) int64 ns since epoch
    offsets: np.ndarray  # (n_journeys + 1,) int64
    label: np.ndarray  # (n_journeys,) int8
    customer_id: np.ndarray  # (n_journeys,) object
    journey: np.ndarray  # (n_journeys,) int64, 0-based order within the customer
    revenue: np.ndarray  # (n_journeys,) float64
    end_time: np.ndarray  # (n_journeys,) int64 ns
    # (n_journeys,) int64, touches before max_len truncation; None: nothing was truncated
    full_length: np.ndarray | None = None
    # (n_journeys, N_HISTORY) float32, the customer's earlier journeys (journeynet.data.history);
    # None: not attached (journey_history computes it from the arrays above)
    history: np.ndarray | None = None
    # (n_journeys, N_CALENDAR) float32, the journey's place in the data window (journeynet.data.calendar);
    # None: not attached (attached_calendar computes it from the journeys' own span)
    calendar: np.ndarray | None = None

    _TOUCH = ("channel", "campaign", "unit", "log_dt_prev", "log_dt_end", "position", "time")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        """Touches per journey, int64 (n_journeys,)."""
        return np.diff(self.offsets)

    @property
    def n_touches(self) -> int:
        """Total number of touches."""
        return int(self.offsets[-1])

    def subset(self, idx: np.ndarray | Sequence[int]) -> Journeys:
        """Journeys ``idx`` (indices or a boolean mask), in that order."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        lens = self.lengths[idx]
        offsets = np.zeros(len(idx) + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        # Touch k of new journey i comes from self.offsets[idx[i]] + k.
        touch = np.repeat(self.offsets[idx] - offsets[:-1], lens) + np.arange(offsets[-1])
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in self._TOUCH:
            kw[name] = kw[name][touch]
        for name in ("label", "customer_id", "journey", "revenue", "end_time", "full_length", "history", "calendar"):
            kw[name] = None if kw[name] is None else kw[name][idx]
        kw["offsets"] = offsets
        return Journeys(**kw)


def _journey_starts(codes: np.ndarray, t: np.ndarray, conv: np.ndarray, gap_ns: int) -> np.ndarray:
    """Flag touches that open a journey: new customer, long silence, or after a conversion."""
    start = np.ones(len(codes), dtype=bool)
    same = codes[1:] == codes[:-1]
    start[1:] = ~same | (np.diff(t) > gap_ns) | (conv[:-1] == 1)
    return start


def _encode(
    touchpoints: pd.DataFrame, order: np.ndarray, vocab: Vocab
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Channel, campaign and unit ids of the touches in ``order``."""
    # Encoding the few distinct names and indexing is much faster than a lookup per touch.
    chan_codes, chan_uniques = pd.factorize(touchpoints["channel"])
    camp_codes, camp_uniques = pd.factorize(touchpoints["campaign_type"])
    chan_codes, camp_codes = chan_codes[order], camp_codes[order]
    unit_lut = vocab.encode_units(
        np.repeat(chan_uniques, len(camp_uniques)), np.tile(camp_uniques, len(chan_uniques))
    ).reshape(len(chan_uniques), len(camp_uniques))
    return (
        vocab.encode_channels(chan_uniques)[chan_codes],
        vocab.encode_campaigns(camp_uniques)[camp_codes],
        unit_lut[chan_codes, camp_codes],
    )


def _touch_features(
    t: np.ndarray, first: np.ndarray, last: np.ndarray, jid: np.ndarray, max_len: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mask of kept touches and their position, log1p hours since previous and to the end."""
    i = np.arange(len(t))
    kept_first = np.maximum(first, last - max_len + 1)
    keep = i >= kept_first[jid]
    dt_prev = np.zeros(len(t), dtype=np.float64)
    dt_prev[1:] = np.diff(t) / _NS_PER_HOUR
    dt_prev[first] = 0.0
    dt_end = (t[last][jid] - t) / _NS_PER_HOUR
    return (
        keep,
        (i - kept_first[jid])[keep].astype(np.int64),
        np.log1p(dt_prev[keep]).astype(np.float32),
        np.log1p(dt_end[keep]).astype(np.float32),
    )


def build_journeys(
    touchpoints: pd.DataFrame, vocab: Vocab, lookback_days: float = 30, max_len: int = 50
) -> Journeys:
    """Cut each customer's touches into journeys and encode them (vectorized).

    Parameters
    ----------
    touchpoints : pd.DataFrame
        Canonical touchpoints (any order; ties in time keep their row order).
    vocab : Vocab
        Encodes channels, campaign types and units (unknown -> 1).
    lookback_days : float
        A silence longer than this ends a journey without conversion.
    max_len : int
        Keep the last ``max_len`` touches of longer journeys.

    Returns
    -------
    Journeys
        ``log_dt_prev`` of a truncated journey's first kept touch is its gap to the
        dropped touch before it, so truncation does not invent a fresh start.
    """
    if max_len < 1:
        raise ValueError(f"data.max_len must be >= 1, got {max_len}")
    codes, customers = pd.factorize(touchpoints["customer_id"].astype(str), sort=True)
    t_all = touchpoints["timestamp"].to_numpy().astype("datetime64[ns]").astype(np.int64)
    d_code, d_t = np.diff(codes), np.diff(t_all)
    if np.all((d_code > 0) | ((d_code == 0) & (d_t >= 0))):
        order = np.arange(len(codes))  # loaded frames come sorted: skip the costly sort
    else:
        order = np.lexsort((t_all, codes))  # stable: equal timestamps keep file order
    codes, t = codes[order], t_all[order]
    conv = touchpoints["converted"].to_numpy().astype(np.int8)[order]
    start = _journey_starts(codes, t, conv, int(lookback_days * _NS_PER_DAY))
    jid = np.cumsum(start) - 1
    first = np.flatnonzero(start)
    last = np.append(first[1:], len(t)) - 1

    keep, position, log_dt_prev, log_dt_end = _touch_features(t, first, last, jid, max_len)
    channel, campaign, unit = _encode(touchpoints, order, vocab)
    revenue = (
        touchpoints["revenue"].to_numpy(dtype=np.float64)[order]
        if "revenue" in touchpoints else np.zeros(len(t))
    )
    cust_of_j = codes[first]  # non-decreasing, so searchsorted finds each customer's first
    journey = np.arange(len(first)) - np.searchsorted(cust_of_j, cust_of_j, side="left")

    lens = np.minimum(last - first + 1, max_len)
    offsets = np.zeros(len(first) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    label = conv[last]
    return Journeys(
        channel=channel[keep],
        campaign=campaign[keep],
        unit=unit[keep],
        log_dt_prev=log_dt_prev,
        log_dt_end=log_dt_end,
        position=position,
        time=t[keep],
        offsets=offsets,
        label=label.astype(np.int8),
        customer_id=np.asarray(customers, dtype=object)[cust_of_j],
        journey=journey.astype(np.int64),
        revenue=np.where(label == 1, np.nan_to_num(revenue[last]), 0.0),
        end_time=t[last],
        full_length=(last - first + 1).astype(np.int64),
    )


def split_keys(customer_id: np.ndarray, group_pattern: str | None = None) -> np.ndarray:
    """The key that keeps journeys together in a customer split.

    Parameters
    ----------
    customer_id : np.ndarray
        Customer id per journey.
    group_pattern : str | None
        Regular expression matched at the start of each id; its first group (or the
        whole match when it has none) is the key. Exports whose ids name a journey
        within a user (``u12_j7``) pass ``'^u[0-9]+'`` so one user never spans splits.

    Returns
    -------
    np.ndarray
        str keys, shape (n_journeys,).
    """
    ids = pd.Series(np.asarray(customer_id).astype(str))
    if group_pattern is None:
        return ids.to_numpy()
    n_groups = re.compile(group_pattern).groups
    if n_groups > 1:
        raise ValueError(f"data.split_group must have at most one group, got {group_pattern!r}")
    group = group_pattern if n_groups == 1 else f"({group_pattern})"
    keys = ids.str.extract(f"^(?:{group})", expand=False)
    if keys.isna().any():
        bad = ids[keys.isna()].iloc[0]
        raise ValueError(f"data.split_group {group_pattern!r} does not match customer_id {bad!r}")
    return keys.to_numpy()


def _customer_masks(
    customer_id: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Test and val masks that keep each customer's journeys together."""
    codes, customers = pd.factorize(pd.Index(np.asarray(customer_id).astype(str)), sort=True)
    perm = np.random.default_rng(seed).permutation(len(customers))
    rank = np.empty_like(perm)
    rank[perm] = np.arange(len(perm))
    n_test = int(round(test_fraction * len(customers)))
    n_val = int(round(val_fraction * len(customers)))
    # Customers are ranked by the shuffle: the first n_test go to test, the next n_val to val.
    r = rank[codes]
    return r < n_test, (r >= n_test) & (r < n_test + n_val)


def _time_masks(
    end_time: np.ndarray, val_fraction: float, test_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Test and val masks for journeys ending in the last shares of the time span."""
    t = end_time.astype(np.float64)
    lo, hi = (t.min(), t.max()) if len(t) else (0.0, 0.0)
    test_cut = hi - test_fraction * (hi - lo)
    val_cut = test_cut - val_fraction * (hi - lo)
    is_test = (t > test_cut) if test_fraction > 0 else np.zeros(len(t), dtype=bool)
    is_val = ((t > val_cut) & ~is_test) if val_fraction > 0 else np.zeros(len(t), dtype=bool)
    return is_test, is_val


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Validation and test shares must be >= 0 and leave some journeys for training."""
    if min(val_fraction, test_fraction) < 0 or val_fraction + test_fraction >= 1:
        raise ValueError(
            "data.val_fraction and data.test_fraction must be >= 0 and sum to less than 1, "
            f"got {val_fraction} and {test_fraction}"
        )


def split_journeys(
    journeys: Journeys,
    val_fraction: float,
    test_fraction: float,
    by: str = "customer",
    seed: int = 0,
    group_pattern: str | None = None,
) -> dict[str, np.ndarray]:
    """Split journey indices into train, val and test.

    Parameters
    ----------
    journeys : Journeys
        The journeys to split.
    val_fraction, test_fraction : float
        Shares of customers (``by="customer"``) or of the time span (``by="time"``).
    by : {"customer", "time"}
        ``customer``: no customer in two splits, shuffled with ``np.random.default_rng(seed)``.
        ``time``: test holds journeys ending in the last ``test_fraction`` of the span, val
        the ``val_fraction`` before it.
    seed : int
        Seed of the customer shuffle.
    group_pattern : str | None
        Split on the part of ``customer_id`` this matches (see :func:`split_keys`).

    Returns
    -------
    dict of str to np.ndarray
        Sorted int64 journey indices under ``train``, ``val`` and ``test``.
    """
    check_fractions(val_fraction, test_fraction)
    if by == "customer":
        keys = split_keys(journeys.customer_id, group_pattern)
        is_test, is_val = _customer_masks(keys, val_fraction, test_fraction, seed)
    elif by == "time":
        is_test, is_val = _time_masks(journeys.end_time, val_fraction, test_fraction)
    else:
        raise ValueError(f"data.split must be 'customer' or 'time', got {by!r}")
    return {
        "train": np.flatnonzero(~is_test & ~is_val).astype(np.int64),
        "val": np.flatnonzero(is_val).astype(np.int64),
        "test": np.flatnonzero(is_test).astype(np.int64),
    }
