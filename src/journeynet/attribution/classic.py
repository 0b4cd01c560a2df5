"""Classic (rule-based and Markov removal) attribution, credited per unit id.

Every model returns a float array of length ``n_units`` (index = unit id, the
``(channel, campaign_type)`` id of :class:`journeynet.data.journeys.Vocab`) holding the
conversions credited to that unit. Only converting journeys hand out credit, so each
array sums to the number of converting journeys that have at least one touch. The
Markov model builds its chain from all journeys, converting or not, and is scaled to
that same total.

Journeys are duck-typed: any object with the per-touch arrays ``unit`` and ``time``
(int64 ns) and the per-journey arrays ``offsets`` (``n_journeys + 1``) and ``label``
works, as :class:`journeynet.data.journeys.Journeys` does. Everything is vectorized over
touches; the only Python loop is the one over units in the Markov removal.

Quickstart
----------
>>> from types import SimpleNamespace
>>> import numpy as np
>>> day = 86_400 * 10**9
>>> j = SimpleNamespace(
...     unit=np.array([2, 3, 4, 2, 3, 4]),
...     time=np.array([0, 1, 2, 0, 0, 1]) * day,
...     offsets=np.array([0, 3, 4, 6]),
...     label=np.array([1, 0, 0], dtype=np.int8),
... )
>>> last_touch(j, n_units=5).tolist()
[0.0, 0.0, 0.0, 0.0, 1.0]
>>> markov_removal_effects(j, n_units=5).tolist()
[0.0, 0.0, 0.5, 1.0, 1.0]
>>> classic_credit(j, n_units=5)["markov"].round(2).tolist()
[0.0, 0.0, 0.2, 0.4, 0.4]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

__all__ = [
    "MODELS",
    "classic_credit",
    "first_touch",
    "last_touch",
    "linear",
    "markov_removal",
    "markov_removal_effects",
    "position_based",
    "time_decay",
]

MODELS = ("last_touch", "first_touch", "linear", "time_decay", "position_based", "markov")
"""Column order of :func:`classic_credit`."""

_NS_PER_DAY = 86_400 * 10**9
_PAD_ID = 0
# Above this many transient states (only reached at order > 1) sparse LU fills in badly and
# the Markov absorption switches to a batched fixed-point iteration.
_DIRECT_MAX_STATES = 2_000
_TOL = 1e-13
_MAX_ITER = 100_000


@dataclass(frozen=True)
class _Touches:
    """Flattened, validated view of a journeys object (internal)."""

    unit: np.ndarray  # (n_touch,) int64
    time: np.ndarray  # (n_touch,) int64 ns
    seg: np.ndarray  # (n_touch,) int64 journey index of each touch
    pos: np.ndarray  # (n_touch,) int64 0-based position within its journey
    lengths: np.ndarray  # (n_journeys,) int64
    converted: np.ndarray  # (n_journeys,) bool

    @property
    def is_first(self) -> np.ndarray:
        return self.pos == 0

    @property
    def is_last(self) -> np.ndarray:
        return self.pos == self.lengths[self.seg] - 1

    @property
    def touch_converted(self) -> np.ndarray:
        return self.converted[self.seg]

    @property
    def n_conversions(self) -> int:
        # Empty converting journeys have nobody to credit, so they are not counted.
        return int(np.count_nonzero(self.converted & (self.lengths > 0)))


def _touches(journeys: Any, n_units: int) -> _Touches:
    """Validate the duck-typed journeys and precompute per-touch indices."""
    unit = np.asarray(journeys.unit, dtype=np.int64)
    time = np.asarray(journeys.time).astype(np.int64)
    offsets = np.asarray(journeys.offsets, dtype=np.int64)
    label = np.asarray(journeys.label)
    if offsets.ndim != 1 or offsets.size < 1 or offsets[0] != 0 or offsets[-1] != unit.size:
        raise ValueError(
            f"offsets must start at 0 and end at n_touch={unit.size}, "
            f"got {offsets[:1].tolist()}...{offsets[-1:].tolist()}"
        )
    lengths = np.diff(offsets)
    if np.any(lengths < 0):
        raise ValueError("offsets must be non-decreasing, got a negative journey length")
    if label.shape != lengths.shape:
        raise ValueError(f"label must have n_journeys={lengths.size} entries, got {label.shape}")
    if time.shape != unit.shape:
        raise ValueError(f"time must have n_touch={unit.size} entries, got {time.shape}")
    if unit.size and (unit.min() < 0 or unit.max() >= n_units):
        raise ValueError(f"unit ids must lie in [0, n_units={n_units}), got [{unit.min()}, {unit.max()}]")
    if np.any(unit == _PAD_ID):
        # Journeys are concatenated, not padded: a pad id in a touch means broken encoding.
        raise ValueError(f"unit id {_PAD_ID} is '<pad>' and cannot be a touch")
    seg = np.repeat(np.arange(lengths.size), lengths)
    pos = np.arange(unit.size) - offsets[:-1][seg]
    return _Touches(unit, time, seg, pos, lengths, label.astype(bool))


def _credit(t: _Touches, weight: np.ndarray, n_units: int) -> np.ndarray:
    """Sum per-touch weights of converting journeys into per-unit credit."""
    w = np.where(t.touch_converted, weight, 0.0)
    return np.bincount(t.unit, weights=w, minlength=n_units).astype(np.float64)


def last_touch(journeys: Any, n_units: int) -> np.ndarray:
    """Give each conversion to the last touch of its journey.

    Parameters
    ----------
    journeys : Journeys-like
        Object with ``unit``, ``time``, ``offsets`` and ``label`` arrays.
    n_units : int
        Length of the output (vocabulary size, pad and unknown included).

    Returns
    -------
    np.ndarray
        ``(n_units,)`` float64 credited conversions per unit id.
    """
    t = _touches(journeys, n_units)
    return _credit(t, t.is_last.astype(np.float64), n_units)


def first_touch(journeys: Any, n_units: int) -> np.ndarray:
    """Give each conversion to the first touch of its journey.

    Parameters
    ----------
    journeys : Journeys-like
        Object with ``unit``, ``time``, ``offsets`` and ``label`` arrays.
    n_units : int
        Length of the output.

    Returns
    -------
    np.ndarray
        ``(n_units,)`` float64 credited conversions per unit id.
    """
    t = _touches(journeys, n_units)
    return _credit(t, t.is_first.astype(np.float64), n_units)


def linear(journeys: Any, n_units: int) -> np.ndarray:
    """Split each conversion equally over the touches of its journey.

    A unit touched twice in one journey receives two shares.

    Parameters
    ----------
    journeys : Journeys-like
        Object with ``unit``, ``time``, ``offsets`` and ``label`` arrays.
    n_units : int
        Length of the output.

    Returns
    -------
    np.ndarray
        ``(n_units,)`` float64 credited conversions per unit id.
    """
    t = _touches(journeys, n_units)
    return _credit(t, 1.0 / t.lengths[t.seg], n_units)


def time_decay(journeys: Any, n_units: int, half_life_days: float = 7.0) -> np.ndarray:
    """Split each conversion with weights halving every ``half_life_days`` before conversion.

    The conversion time is taken as the time of the journey's last touch (the touch that
    carries the conversion in the touchpoints frame), so the last touch has raw weight 1
    and a touch ``d`` days earlier ``2 ** (-d / half_life_days)``; weights are then
    normalized to sum to 1 within the journey.

    Parameters
    ----------
    journeys : Journeys-like
        Object with ``unit``, ``time`` (int64 ns), ``offsets`` and ``label`` arrays.
    n_units : int
        Length of the output.
    half_life_days : float, default 7.0
        Days after which a touch's weight halves; must be positive.

    Returns
    -------
    np.ndarray
        ``(n_units,)`` float64 credited conversions per unit id.
    """
    if not half_life_days > 0:
        raise ValueError(f"half_life_days must be > 0, got {half_life_days}")
    t = _touches(journeys, n_units)
    last_idx = np.flatnonzero(t.is_last)  # one per non-empty journey, in journey order
    t_conv = np.zeros(t.lengths.size, dtype=np.int64)
    t_conv[t.seg[last_idx]] = t.time[last_idx]
    # Subtract in int64 first: ns since epoch do not fit a float64 mantissa exactly.
    age_days = (t_conv[t.seg] - t.time).astype(np.float64) / _NS_PER_DAY
    raw = np.exp2(-age_days / half_life_days)  # the last touch has weight 1, so sums are >= 1
    norm = np.bincount(t.seg, weights=raw, minlength=t.lengths.size)
    return _credit(t, raw / norm[t.seg], n_units)


def position_based(journeys: Any, n_units: int, first: float = 0.4, last: float = 0.4) -> np.ndarray:
    """U-shaped split: ``first`` to the first touch, ``last`` to the last, rest to the middle.

    Conventions for short journeys: a one-touch journey gives the whole conversion to
    that touch; a two-touch journey has no middle, so the middle share is spread in
    proportion, i.e. ``first / (first + last)`` and ``last / (first + last)`` (50/50 at
    the 40/20/40 default, and 50/50 when both are 0). With three or more touches the
    middle touches share ``1 - first - last`` equally.

    Parameters
    ----------
    journeys : Journeys-like
        Object with ``unit``, ``time``, ``offsets`` and ``label`` arrays.
    n_units : int
        Length of the output.
    first, last : float, default 0.4
        Shares of the first and last touch; non-negative with ``first + last <= 1``.

    Returns
    -------
    np.ndarray
        ``(n_units,)`` float64 credited conversions per unit id.
    """
    if first < 0 or last < 0 or first + last > 1:
        raise ValueError(f"need first >= 0, last >= 0 and first + last <= 1, got first={first}, last={last}")
    t = _touches(journeys, n_units)
    n = t.lengths[t.seg]
    middle = (1.0 - first - last) / np.maximum(n - 2, 1)
    w = np.where(t.is_first, first, np.where(t.is_last, last, middle))
    two_first = first / (first + last) if first + last > 0 else 0.5
    w = np.where(n == 2, np.where(t.is_first, two_first, 1.0 - two_first), w)
    w = np.where(n == 1, 1.0, w)
    return _credit(t, w, n_units)


def _markov_states(t: _Touches, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Map each touch to a chain state: the tuple of its last ``order`` units.

    Positions before the journey start are filled with -1, so "A at the start" and
    "A after B" are different states when ``order > 1``.

    Returns
    -------
    tuple of np.ndarray
        ``state`` ``(n_touch,)`` 0-based state id of each touch, and ``tuples``
        ``(n_states, order)`` the units of each state (-1 = before the start).
    """
    lags = np.full((t.unit.size, order), -1, dtype=np.int64)  # (n_touch, order)
    for j in range(order):
        ok = t.pos >= j
        lags[ok, j] = t.unit[np.flatnonzero(ok) - j]
    base = int(t.unit.max(initial=0)) + 2  # digits -1..max shifted to 0..max+1
    if order * np.log2(base) < 62:
        # Row-wise np.unique is slow (it sorts structured rows): pack each tuple into one
        # int64 key in base ``base`` and unique that instead.
        key = (lags + 1) @ (base ** np.arange(order, dtype=np.int64))
        uniq, state = np.unique(key, return_inverse=True)
        tuples = (uniq[:, None] // base ** np.arange(order, dtype=np.int64)) % base - 1
        return state.reshape(-1), tuples
    tuples, state = np.unique(lags, axis=0, return_inverse=True)
    return state.reshape(-1), tuples


def _transitions(t: _Touches, order: int) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Transition probabilities among transient states, counted over all journeys.

    Returns
    -------
    tuple
        ``q`` ``(n_t, n_t)`` sparse transient-to-transient probabilities (row 0 is
        start), ``r`` ``(n_t,)`` probability of converting next, and the state
        ``tuples`` ``(n_t - 1, order)``.
    """
    state, tuples = _markov_states(t, order)
    n_t = tuples.shape[0] + 1  # transient states: 0 = start, 1.. = touch states
    conv, null = n_t, n_t + 1
    s = state + 1
    # Each touch moves to the next touch of its journey, or to conv/null after the last.
    dst = np.where(t.is_last, np.where(t.touch_converted, conv, null), np.roll(s, -1))
    src = np.concatenate([np.zeros(np.count_nonzero(t.is_first), dtype=np.int64), s])
    dst = np.concatenate([s[t.is_first], dst])
    # coo -> csr sums duplicate (src, dst) pairs: these are the transition counts.
    counts = sp.coo_matrix((np.ones(src.size), (src, dst)), shape=(n_t + 2, n_t + 2)).tocsr()
    out = np.asarray(counts.sum(axis=1)).ravel()[:n_t]
    inv_out = np.divide(1.0, out, out=np.zeros_like(out), where=out > 0)
    prob = (sp.diags(inv_out) @ counts[:n_t]).tocsr()  # (n_t, n_t + 2) row-stochastic
    return prob[:, :n_t].tocsr(), prob[:, conv].toarray().ravel(), tuples


def _absorb(q: sp.csr_matrix, r: np.ndarray, alive: np.ndarray) -> np.ndarray:
    """Conversion probability from start for each column of the ``alive`` mask.

    A dead state is redirected to null, which is the same as pinning its conversion
    probability at 0: its rows of ``Q`` and ``r`` are zeroed, so any transition into it
    ends the journey.

    Parameters
    ----------
    q, r
        Transient transition matrix ``(n_t, n_t)`` and conversion vector ``(n_t,)``.
    alive : np.ndarray
        ``(n_t, n_cols)`` bool, one chain variant per column.

    Returns
    -------
    np.ndarray
        ``(n_cols,)`` conversion probabilities from start.
    """
    n_t = q.shape[0]
    if n_t <= _DIRECT_MAX_STATES:
        # Small chains (always the case at order 1): exact sparse LU per variant.
        eye = sp.identity(n_t, format="csc")
        return np.array([np.atleast_1d(spsolve((eye - sp.diags(a * 1.0) @ q).tocsc(), a * r))[0] for a in alive.T])
    # Large higher-order chains: LU fill-in explodes, so iterate x <- alive*(Qx + r) for
    # all variants at once. It increases monotonically to the fixed point from below.
    rr = alive * r[:, None]  # (n_t, n_cols)
    x = rr.copy()
    for _ in range(_MAX_ITER):
        x_new = alive * (q @ x) + rr
        if np.max(np.abs(x_new - x)) < _TOL:
            return x_new[0]
        x = x_new
    raise RuntimeError(f"Markov absorption did not converge in {_MAX_ITER} iterations")


def _conversion_probabilities(t: _Touches, n_units: int, order: int) -> tuple[float, np.ndarray]:
    """Conversion probability from start, then with each unit removed.

    Returns
    -------
    tuple
        Base probability and ``(n_units,)`` probabilities with the unit removed (equal
        to the base for units that never occur).
    """
    q, r, tuples = _transitions(t, order)
    present = np.unique(t.unit)
    # Column 0 is the intact chain; column k removes every state containing present[k-1].
    contains = (tuples[:, :, None] == present[None, None, :]).any(axis=1)  # (n_s, n_present)
    alive = np.vstack(
        [np.ones((1, present.size + 1), bool), np.hstack([np.ones((tuples.shape[0], 1), bool), ~contains])]
    )
    p = _absorb(q, r, alive)
    removed = np.full(n_units, p[0])
    removed[present] = p[1:]
    return float(p[0]), removed


def markov_removal_effects(journeys: Any, n_units: int, order: int = 1) -> np.ndarray:
    """Compute each unit's removal effect in a Markov chain built from all journeys.

    States are start, one per unit (per ``order``-tuple of units for ``order > 1``),
    conversion and null. Transition probabilities are consecutive-pair counts over all
    non-empty journeys, converting or not, normalized per source state. The removal
    effect of a unit is ``1 - P(conv | unit removed) / P(conv)``, where removal
    redirects every state containing the unit to null.

    Parameters
    ----------
    journeys : Journeys-like
        Object with ``unit``, ``time``, ``offsets`` and ``label`` arrays.
    n_units : int
        Length of the output.
    order : int, default 1
        Markov order: how many preceding units define a state.

    Returns
    -------
    np.ndarray
        ``(n_units,)`` float64 removal effects in ``[0, 1]``; 0 for units that never
        occur, and all zeros when nothing converts.
    """
    if not (isinstance(order, int | np.integer) and order >= 1):
        raise ValueError(f"order must be an integer >= 1, got {order!r}")
    t = _touches(journeys, n_units)
    if t.n_conversions == 0:
        return np.zeros(n_units)
    base, removed = _conversion_probabilities(t, n_units, int(order))
    # Clip tiny negatives from the linear solve: removing a state never raises P(conv).
    return np.clip(1.0 - removed / base, 0.0, 1.0)


def markov_removal(journeys: Any, n_units: int, order: int = 1) -> np.ndarray:
    """Credit units by Markov removal effect, scaled to the number of conversions.

    Parameters
    ----------
    journeys : Journeys-like
        Object with ``unit``, ``time``, ``offsets`` and ``label`` arrays.
    n_units : int
        Length of the output.
    order : int, default 1
        Markov order, see :func:`markov_removal_effects`.

    Returns
    -------
    np.ndarray
        ``(n_units,)`` float64 credited conversions per unit id: removal effects
        normalized to sum to the number of converting (non-empty) journeys.
    """
    effects = markov_removal_effects(journeys, n_units, order=order)
    total = effects.sum()
    if total == 0:
        return effects
    n_conv = _touches(journeys, n_units).n_conversions
    return effects / total * n_conv


def classic_credit(journeys: Any, n_units: int, half_life_days: float = 7.0) -> pd.DataFrame:
    """Tabulate the credit of every classic model side by side.

    Parameters
    ----------
    journeys : Journeys-like
        Object with ``unit``, ``time``, ``offsets`` and ``label`` arrays.
    n_units : int
        Number of rows (vocabulary size, pad and unknown included).
    half_life_days : float, default 7.0
        Half-life of :func:`time_decay`.

    Returns
    -------
    pd.DataFrame
        Index ``unit`` (ids ``0..n_units-1``), columns :data:`MODELS` (``position_based``
        at 40/20/40, ``markov`` first order); each column sums to the number of
        converting journeys.
    """
    cols = {
        "last_touch": last_touch(journeys, n_units),
        "first_touch": first_touch(journeys, n_units),
        "linear": linear(journeys, n_units),
        "time_decay": time_decay(journeys, n_units, half_life_days=half_life_days),
        "position_based": position_based(journeys, n_units),
        "markov": markov_removal(journeys, n_units),
    }
    return pd.DataFrame(cols, index=pd.RangeIndex(n_units, name="unit"), columns=list(MODELS))
