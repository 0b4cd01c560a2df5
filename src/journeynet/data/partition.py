"""Journeys as a pure function of one customer partition, and splits by customer hash.

A customer's touches all fall in partition ``hash(customer_id) mod P``, so the journeys
of a partition depend on that partition's rows alone: the same function runs in this
process, in a pool of processes, on Dask workers or under Spark's ``mapInPandas``, and
the union of its outputs is every journey once. The hash is pandas' SipHash of the
id's text (stable across processes, machines and runs, unlike Python's ``hash``).

Quickstart
----------
>>> import pandas as pd
>>> tp = pd.DataFrame({
...     "customer_id": ["a", "a", "b"],
...     "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-01"]),
...     "channel": ["email", "google_ads", "direct"], "campaign_type": ["", "search", ""],
...     "converted": [0, 1, 0], "revenue": [0.0, 50.0, 0.0]})
>>> vocab = Vocab.fit(tp)
>>> parts = [partition_journeys(tp[customer_partition(tp["customer_id"], 2) == p], vocab) for p in (0, 1)]
>>> sum(len(j) for j in parts), sorted(c for j in parts for c in j.customer_id)
(2, ['a', 'b'])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields

import numpy as np
import pandas as pd

from journeynet.data.journeys import Journeys, Vocab, build_journeys, check_fractions, split_keys

CANONICAL = ["customer_id", "timestamp", "channel", "campaign_type", "converted", "revenue"]
# Where a row came from (file, row in file): the tie-break that makes the order of equal
# timestamps independent of the order in which a shuffle delivers rows.
ORIGIN = ["_file", "_row"]
_PARTITION_KEY = "0123456789123456"  # pandas' default SipHash key: ids hash alike everywhere


def customer_hash(customer_id: pd.Series | np.ndarray | Sequence, key: str = _PARTITION_KEY) -> np.ndarray:
    """64-bit hash of each customer id's text, ``(n,)`` uint64; equal ids hash equal anywhere."""
    # hash each distinct id once, as text in an object array, so every input dtype hashes alike
    codes, uniques = pd.factorize(pd.Series(customer_id).astype(str) if not isinstance(customer_id, pd.Series)
                                  else customer_id.astype(str))
    text = np.asarray(uniques, dtype=object)
    return pd.util.hash_array(text, hash_key=key, categorize=False)[codes]


def customer_partition(customer_id: pd.Series | np.ndarray | Sequence, n_partitions: int) -> np.ndarray:
    """Partition of each customer, ``hash(customer_id) mod n_partitions``, int64."""
    if n_partitions < 1:
        raise ValueError(f"data.partitions must be >= 1, got {n_partitions}")
    return (customer_hash(customer_id) % np.uint64(n_partitions)).astype(np.int64)


def customer_fraction(customer_id: pd.Series | np.ndarray | Sequence, seed: int = 0) -> np.ndarray:
    """A uniform number in [0, 1) per customer, fixed by the id and ``seed`` alone, float64."""
    key = f"{int(seed) % 10**12:012d}jnet"  # SipHash takes a 16-byte key
    return customer_hash(customer_id, key).astype(np.float64) / 2.0**64


def hash_split(
    journeys: Journeys, val_fraction: float, test_fraction: float, seed: int = 0, group_pattern: str | None = None
) -> dict[str, np.ndarray]:
    """Train, val and test journey indices by customer hash.

    A customer's split depends on its id and ``seed`` only, so any partition, shard or
    rank computes the same split for its own customers without seeing the others'.
    The shares are those of customers in expectation (not exactly, as with a shuffle).
    ``group_pattern`` (``data.split_group``) hashes the part of the id that names the user
    instead (:func:`journeynet.data.journeys.split_keys`), so one user never spans splits.

    Returns
    -------
    dict of str to np.ndarray
        Sorted int64 journey indices under ``train``, ``val`` and ``test``.
    """
    check_fractions(val_fraction, test_fraction)
    u = customer_fraction(split_keys(np.asarray(journeys.customer_id), group_pattern), seed)
    is_test = u < test_fraction
    is_val = ~is_test & (u < test_fraction + val_fraction)
    return {
        "train": np.flatnonzero(~is_test & ~is_val).astype(np.int64),
        "val": np.flatnonzero(is_val).astype(np.int64),
        "test": np.flatnonzero(is_test).astype(np.int64),
    }


def unit_pairs(touchpoints: pd.DataFrame) -> pd.DataFrame:
    """The distinct ``(channel, campaign_type)`` pairs of a frame: all :meth:`Vocab.fit` needs of it."""
    return touchpoints[["channel", "campaign_type"]].drop_duplicates().reset_index(drop=True)


def order_partition(touchpoints: pd.DataFrame) -> pd.DataFrame:
    """Canonical rows of one partition sorted by customer, time and origin, exact duplicates dropped.

    The result does not depend on the order rows arrived in, which is what lets a
    shuffle deliver them in any order and still give the same journeys to the byte.
    """
    frame = touchpoints.reset_index(drop=True)
    codes = pd.factorize(frame["customer_id"].astype(str), sort=True)[0]
    keys = [frame[c].to_numpy() for c in reversed(ORIGIN) if c in frame]
    order = np.lexsort((*keys, frame["timestamp"].to_numpy(), codes))
    frame = frame[CANONICAL].take(order).reset_index(drop=True)
    # exact duplicates share customer and time, so only rows tied on both need the full comparison
    code, t = codes[order], frame["timestamp"].to_numpy()
    tied = np.zeros(len(frame), dtype=bool)
    tied[1:] = (code[1:] == code[:-1]) & (t[1:] == t[:-1])
    tied[:-1] |= tied[1:]
    if tied.any():
        dup = frame[tied].duplicated()
        if dup.any():
            frame = frame.drop(index=dup.index[dup.to_numpy()]).reset_index(drop=True)
    return frame


def partition_journeys(
    touchpoints: pd.DataFrame, vocab: Vocab, lookback_days: float = 30, max_len: int = 50
) -> Journeys:
    """The journeys of one customer partition: :func:`order_partition`, then ``build_journeys``.

    Parameters
    ----------
    touchpoints : pd.DataFrame
        Canonical touchpoints of whole customers (every touch of each customer present),
        optionally with ``_file`` / ``_row`` origin columns.
    vocab : Vocab
        The vocabulary fitted on all partitions (it must not depend on one partition).
    lookback_days, max_len : float, int
        As in :func:`journeynet.data.journeys.build_journeys`.

    Returns
    -------
    Journeys
        Journeys ordered by customer id (text order), then time.
    """
    return build_journeys(order_partition(touchpoints), vocab, lookback_days=lookback_days, max_len=max_len)


def concat_journeys(parts: Sequence[Journeys]) -> Journeys:
    """Journeys of ``parts`` one after the other (offsets shifted)."""
    parts = list(parts)
    if not parts:
        raise ValueError("concat_journeys needs at least one part")
    kw = {}
    for f in fields(Journeys):
        arrays = [getattr(p, f.name) for p in parts]
        if any(a is None for a in arrays):  # optional arrays: kept only when every part has them
            kw[f.name] = None
        elif f.name == "offsets":
            shift = np.cumsum([0] + [int(a[-1]) for a in arrays[:-1]])
            kw[f.name] = np.concatenate([arrays[0][:1]] + [a[1:] + s for a, s in zip(arrays, shift, strict=True)])
        else:
            kw[f.name] = np.concatenate(arrays)
    return Journeys(**kw)


def sort_by_customer(journeys: Journeys) -> Journeys:
    """Journeys ordered by customer id (text order) then journey number, as one ``build_journeys`` call orders them."""
    order = np.lexsort((journeys.journey, pd.factorize(journeys.customer_id.astype(str), sort=True)[0]))
    return journeys.subset(order)
