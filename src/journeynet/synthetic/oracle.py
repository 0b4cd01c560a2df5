"""The best achievable conversion probability of a journey, under a generated world's true process.

For a journey, compare two hypotheses about its last touch: it converted (H1), or it did
not and the customer then stayed silent until the journey closed (H0: ``lookback_days``
of silence or the end of the data). Both likelihoods include the customer's whole
observed history up to that touch, filtered exactly over the world's finite state
(:mod:`.filtering`), so ``P(converted) = L1 / (L1 + L0)`` is the Bayes-optimal score given
everything observable at day resolution, plus the one within-day fact the world makes decisive:
a channel gives a customer at most one non-converting row a day, so a last row repeating a
channel of its day rules H0 out. No classifier can rank journeys better on average.

Quickstart::

    from journeynet.synthetic.oracle import journey_probabilities
    p = journey_probabilities(sim.truth, sim.touchpoints, sim.spend, journeys, test_idx)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from journeynet.synthetic.filtering import NONE, PAID_CONV, UNPAID_CONV, DayModel, DayObs
from journeynet.synthetic.world import World

_NS_PER_DAY = 86_400 * 10**9


@dataclass
class Histories:
    """Observed days of ``E`` journeys' customers, up to and including each journey's last day."""

    first_day: np.ndarray  # (E,) first day with a row
    final_day: np.ndarray  # (E,) day of the journey's last touch
    close_day: np.ndarray  # (E,) last silent day under H0
    event_seq: np.ndarray  # (n,) journey of each observed day before its final day
    event_day: np.ndarray  # (n,)
    events: DayObs  # (n,)
    final_h1: DayObs  # (E,) the final day with the last touch converting
    final_h0: DayObs  # (E,) the final day with the last touch not converting
    h0_possible: np.ndarray  # (E,) False where the last touch repeats a channel already on its day (see histories)


def likelihoods(world: World, spend: np.ndarray, hist: Histories) -> tuple[np.ndarray, np.ndarray]:
    """``(L1, L0)`` per journey, each relative to the same filtered state at the start of the final day."""
    model = DayModel(world, spend)
    n_e, n_s = hist.first_day.size, int(np.prod(world.pi0.shape)) * world.n_fatigue
    shape = (*world.pi0.shape, world.n_fatigue)
    prior = model.prior(int(hist.final_day.max()) if n_e else 0)
    alpha, beta, l1, l0 = np.zeros((n_e, n_s)), np.zeros((n_e, n_s)), np.zeros(n_e), np.zeros(n_e)
    order = np.argsort(hist.event_day, kind="stable")
    bounds = np.searchsorted(hist.event_day[order], np.arange(world.days + 1))
    for d in range(int(hist.close_day.max()) + 1 if n_e else 0):
        # every row takes the silent step (one dense product); rows with an observed day are then
        # redone from their start-of-day state; rows not started or already final are not read
        alpha[hist.first_day == d] = prior[d] if d < len(prior) else 0.0
        busy = order[bounds[d]:bounds[d + 1]]
        seq = hist.event_seq[busy]
        final = np.flatnonzero(hist.final_day == d)
        start_busy, start_final = alpha[seq].reshape(-1, *shape), alpha[final].reshape(-1, *shape)
        silent = model.silent_matrix(d)
        alpha = alpha @ silent
        if seq.size:
            alpha[seq] = model.step(d, start_busy, hist.events.take(busy)).reshape(seq.size, n_s)
        alpha = _normalized(alpha)
        waiting = hist.final_day < d
        if waiting.any():
            beta = np.where(waiting[:, None], beta @ silent, beta)
        if final.size:
            l1[final] = model.step(d, start_final, hist.final_h1.take(final)).reshape(final.size, n_s).sum(axis=1)
            beta[final] = model.step(d, start_final, hist.final_h0.take(final)).reshape(final.size, n_s)
        closing = hist.close_day == d
        l0[closing] = beta[closing].sum(axis=1)
    return l1, l0


def _normalized(a: np.ndarray) -> np.ndarray:
    total = a.sum(axis=1, keepdims=True)
    return a / np.where(total > 0, total, 1.0)


def journey_probabilities(truth: dict[str, Any], touchpoints: pd.DataFrame, spend: pd.DataFrame | None,
                          journeys: Any, idx: np.ndarray, lookback_days: float = 30.0) -> np.ndarray:
    """True P(converted) for journeys ``idx`` of ``journeys`` (built from ``touchpoints``).

    Parameters
    ----------
    truth
        The generated world's truth (needs ``world`` and ``config.start``).
    touchpoints, spend
        The canonical frames the world generated (``spend`` may be None: the truth's is used).
    journeys
        Any object with per-journey ``customer_id`` and ``end_time`` (int64 ns).
    idx
        Journeys to score.
    lookback_days
        Silence that closes a journey without conversion.
    """
    world = World.from_dict(truth["world"])
    start = pd.Timestamp(truth["config"]["start"])
    matrix = _spend_matrix(world, spend, start) if spend is not None else np.asarray(truth["spend"], dtype=float)
    hist = histories(world, start, touchpoints, journeys, np.asarray(idx), lookback_days)
    l1, l0 = likelihoods(world, matrix, hist)
    l0 = np.where(hist.h0_possible, l0, 0.0)
    total = l1 + l0
    return np.where(total > 0, l1 / np.where(total > 0, total, 1.0), 0.5)


def _spend_matrix(world: World, spend: pd.DataFrame, start: pd.Timestamp) -> np.ndarray:
    day = ((pd.to_datetime(spend["date"]) - start) // pd.Timedelta(days=1)).to_numpy()
    codes = {u: i for i, u in enumerate(world.units)}
    unit = np.array([codes.get((c, k), -1) for c, k in zip(spend["channel"], spend["campaign_type"], strict=True)])
    ok = (unit >= 0) & (day >= 0) & (day < world.days)
    out = np.zeros((world.days, world.n_units))
    np.add.at(out, (day[ok], unit[ok]), spend["spend"].to_numpy(dtype=float)[ok])
    return out


def histories(world: World, start: pd.Timestamp, touchpoints: pd.DataFrame, journeys: Any, idx: np.ndarray,
              lookback_days: float) -> Histories:
    """Each journey's customer history up to its last touch, as observed days."""
    n_u, n_c, n_e = world.n_units, len(world.unpaid_channels), idx.size
    keys = pd.DataFrame({"customer_id": np.asarray(journeys.customer_id)[idx],
                         "end": np.asarray(journeys.end_time, dtype=np.int64)[idx], "seq": np.arange(n_e)})
    tp = touchpoints[touchpoints["customer_id"].isin(set(keys["customer_id"]))]
    rows = tp.assign(row=np.arange(len(tp)), t=tp["timestamp"].to_numpy().astype("datetime64[ns]").astype(np.int64))
    rows = rows.merge(keys, on="customer_id")
    rows = rows[rows["t"] <= rows["end"]].sort_values(["seq", "t", "row"], kind="stable")
    codes = {u: i for i, u in enumerate(world.units)} | {(c, ""): n_u + i for i, c in enumerate(world.unpaid_channels)}
    code = np.array([codes[(c, k)] for c, k in zip(rows["channel"], rows["campaign_type"], strict=True)])
    seq = rows["seq"].to_numpy()
    day = (rows["t"].to_numpy() - start.value) // _NS_PER_DAY
    conv = rows["converted"].to_numpy().astype(bool)
    is_last = np.append(seq[1:] != seq[:-1], True)
    final_day = np.zeros(n_e, dtype=np.int64)
    final_day[seq[is_last]] = day[is_last]
    first_day = np.full(n_e, np.iinfo(np.int64).max)
    np.minimum.at(first_day, seq, day)
    before = day < final_day[seq]
    key = seq[before] * (world.days + 1) + day[before]
    uniq, inv = np.unique(key, return_inverse=True)
    events = _day_obs(uniq.size, inv, code[before], conv[before], n_u, n_c)
    on_final = ~before & ~is_last
    base = _day_obs(n_e, seq[on_final], code[on_final], conv[on_final], n_u, n_c)
    last_seq, last_code = seq[is_last], code[is_last]
    # A paid unit or unpaid channel gives a customer at most one non-converting row a day, so a
    # last row repeating one already on its day is a converting session: H0 is impossible. Read
    # as one observation per channel a day, such a day looked like an ordinary quiet end and the
    # oracle scored conversions the journeys make certain at under 1% (default world, seed 1).
    n_codes = n_u + n_c
    h0_possible = np.ones(n_e, dtype=bool)
    h0_possible[last_seq] = ~np.isin(last_seq * n_codes + last_code, seq[on_final] * n_codes + code[on_final])
    h1, h0 = base.take(np.arange(n_e)), base.take(np.arange(n_e))
    paid = last_code < n_u
    h1.kind[last_seq] = np.where(paid, PAID_CONV, UNPAID_CONV)
    h1.code[last_seq] = np.where(paid, last_code, last_code - n_u)
    h0.kind[last_seq] = NONE
    h0.touched[last_seq[paid], last_code[paid]] = True
    h0.unpaid[last_seq[~paid], last_code[~paid] - n_u] = True
    return Histories(first_day=first_day, final_day=final_day,
                     close_day=np.minimum(final_day + int(lookback_days), world.days - 1),
                     event_seq=uniq // (world.days + 1), event_day=uniq % (world.days + 1), events=events,
                     final_h1=h1, final_h0=h0, h0_possible=h0_possible)


def _day_obs(n: int, at: np.ndarray, code: np.ndarray, conv: np.ndarray, n_u: int, n_c: int) -> DayObs:
    """Observed days from rows: ``at`` is each row's day index in ``0..n-1``."""
    obs = DayObs.silent(n, n_u, n_c)
    paid = code < n_u
    obs.touched[at[paid & ~conv], code[paid & ~conv]] = True
    obs.unpaid[at[~paid & ~conv], code[~paid & ~conv] - n_u] = True
    obs.kind[at[conv]] = np.where(paid[conv], PAID_CONV, UNPAID_CONV)
    obs.code[at[conv]] = np.where(paid[conv], code[conv], code[conv] - n_u)
    return obs
