"""The oracle's journey probabilities: exact on a hand case, and no summary model ranks journeys better."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from journeynet.data.journeys import Vocab, build_journeys, split_journeys
from journeynet.model.baselines import binary_metrics, fit_baselines
from journeynet.synthetic.catalog import N_LEVELS, POST
from journeynet.synthetic.config import SimConfig
from journeynet.synthetic.oracle import journey_probabilities
from journeynet.synthetic.simulate import simulate
from journeynet.synthetic.world import World, build_world

DAYS = 6


def hand_world() -> World:
    """Two google units (brand search captures, search network closes), fatigue, a season, repeat buyers."""
    w = build_world(SimConfig(days=28, fatigue=True, seasonal=True, season_peak=0.1, season_width_days=3.0))
    keep = [w.units.index(("google_ads", "brand_search")), w.units.index(("google_ads", "search_network"))]
    arrays = {k: getattr(w, k)[keep] for k in ("rho", "impress", "reach_k", "move", "capture_max", "capture_k")}
    arrays["rho"] = arrays["rho"] * 4  # frequent touches make every branch of the day matter
    arrays["impress"] = np.minimum(arrays["impress"] * 4, 0.9 - arrays["rho"])
    fixed = w.drift_fixed.copy()
    fixed[:, POST, 2] = 0.3
    return World(pool=w.pool, pi0=w.pi0, rho=arrays["rho"], impress=arrays["impress"], reach_k=arrays["reach_k"],
                 move=arrays["move"], hazard=w.hazard * 3, drift_fixed=fixed, drift_demand=w.drift_demand,
                 demand=w.demand[:DAYS], unpaid=w.unpaid, session=w.session, capture_max=arrays["capture_max"],
                 capture_k=arrays["capture_k"], fatigue_decay=w.fatigue_decay, units=[w.units[i] for i in keep],
                 roles=[w.roles[i] for i in keep], unpaid_channels=w.unpaid_channels)


def brute_day(world: World, spend: np.ndarray, d: int, states: dict, target: tuple) -> dict:
    """Enumerate every outcome of one day from each state; keep those that produce ``target``."""
    n_u = world.n_units
    reach = 1.0 - np.exp(-spend[d] / world.reach_k)
    cap = world.capture_max * (1.0 - np.exp(-spend[d] / world.capture_k))
    session = []  # (probability, converting row) of a baseline conversion's session
    left = 1.0
    for u in range(n_u):
        session.append((left * cap[u], ("paid", u)))
        left *= 1.0 - cap[u]
    session += [(left * world.session[c], ("unpaid", c)) for c in range(world.session.size)]
    off = world.drift_fixed + world.demand[d] * world.drift_demand
    paid_target, unpaid_target, conv_target = target
    out: dict = {}
    for (k, level, f), prob in states.items():
        q = world.unpaid[:, level]
        p_unpaid = np.prod([q[c] if c in unpaid_target else 1 - q[c] for c in range(q.size)])
        for acts in itertools.product(("touch", "impression", "none"), repeat=n_u):
            p_acts = 1.0
            for u, a in enumerate(acts):
                p_t, p_i = world.rho[u, level] * reach[u], world.impress[u, level] * reach[u]
                p_acts *= {"touch": p_t, "impression": p_i, "none": 1 - p_t - p_i}[a]
            exposed = int(any(a != "none" for a in acts))
            for _path, p_path, lvl, conv in _moves(world, acts, level, f):
                shown = frozenset(u for u, a in enumerate(acts) if a == "touch") - ({conv[1]} if conv else set())
                weight = prob * p_unpaid * p_acts * p_path
                if weight == 0 or shown != paid_target:
                    continue
                h = world.hazard[k, lvl] * world.demand[d] if conv is None else 0.0
                endings = [(1 - h, None)] + [(h * ps, row) for ps, row in session] if conv is None else [(1.0, conv)]
                for p_end, row in endings:
                    if row != conv_target or p_end == 0:
                        continue
                    for nxt, p_next in _next(world, off, k, lvl, f, exposed, row is not None):
                        out[nxt] = out.get(nxt, 0.0) + weight * p_end * p_next
    return out


def _moves(world: World, acts: tuple, level: int, f: int):
    """Every sequence of touch outcomes in unit order: (outcomes, probability, level, converting row)."""
    paths = [((), 1.0, level, None)]
    for u, a in enumerate(acts):
        if a != "touch":
            continue
        grown = []
        for path, p, lvl, conv in paths:
            if conv is not None:
                grown.append((path, p, lvl, conv))
                continue
            for to in range(N_LEVELS + 1):
                pm = world.move[u, f, lvl, to]
                if pm > 0:
                    grown.append((path + (to,), p * pm, lvl if to == N_LEVELS else to,
                                  ("paid", u) if to == N_LEVELS else None))
        paths = grown
    return paths


def _next(world: World, off: np.ndarray, k: int, level: int, f: int, exposed: int, bought: bool):
    n_f = world.n_fatigue
    fatigue = [(min(f + 1, n_f - 1), 1.0)] if exposed else (
        [(f - 1, world.fatigue_decay), (f, 1 - world.fatigue_decay)] if f > 0 else [(0, 1.0)])
    if bought:
        levels = [(POST, 1.0)]
    else:
        row = off[k, level].copy()
        row[level] = 0.0
        row[level] = 1.0 - row.sum()
        levels = [(to, row[to]) for to in range(N_LEVELS) if row[to] > 0]
    return [((k, lv, g), pl * pf) for lv, pl in levels for g, pf in fatigue]


def brute_probability(world: World, spend: np.ndarray, days: list[tuple]) -> float:
    states = {(k, lv, 0): world.pi0[k, lv] for k in range(world.pi0.shape[0]) for lv in range(N_LEVELS)
              if world.pi0[k, lv] > 0}
    for d, target in enumerate(days):
        states = brute_day(world, spend, d, states, target)
    return sum(states.values())


SILENT = (frozenset(), frozenset(), None)


def test_oracle_matches_brute_force_on_a_hand_case():
    world = hand_world()
    spend = np.array([[300.0, 1400.0], [0.0, 1500.0], [300.0, 2000.0], [0.0, 1400.0], [400.0, 1000.0],
                      [300.0, 1400.0]])
    brand, search, direct = ("google_ads", "brand_search"), ("google_ads", "search_network"), ("direct", "")
    # day 1: a search touch and a direct visit; day 2: bought in a brand session (its touch, or capture);
    # day 3: a direct visit after the purchase; day 4: the journey's last touch, on search network
    rows = [(1, search, 0), (1, direct, 0), (2, brand, 1), (3, direct, 0), (4, search, 0)]
    start = pd.Timestamp("2024-01-01")
    tp = pd.DataFrame({
        "customer_id": "c1", "timestamp": [start + pd.Timedelta(days=d, hours=10 + 12 * c) for d, _, c in rows],
        "channel": [u[0] for _, u, _ in rows], "campaign_type": [u[1] for _, u, _ in rows],
        "converted": [c for _, _, c in rows], "revenue": 0.0})
    journeys = SimpleNamespace(customer_id=np.array(["c1"], dtype=object),
                               end_time=tp["timestamp"].to_numpy().astype("datetime64[ns]").astype(np.int64)[-1:])
    truth = {"world": world.to_dict(), "config": {"start": "2024-01-01"}, "spend": spend.tolist()}
    p = journey_probabilities(truth, tp, None, journeys, np.array([0]), lookback_days=1)[0]

    history = [SILENT, (frozenset({1}), frozenset({0}), None), (frozenset(), frozenset(), ("paid", 0)),
               (frozenset(), frozenset({0}), None)]
    converted = brute_probability(world, spend, [*history, (frozenset(), frozenset(), ("paid", 1))])
    not_converted = brute_probability(world, spend, [*history, (frozenset({1}), frozenset(), None), SILENT])
    assert converted > 0 and not_converted > 0
    assert p == pytest.approx(converted / (converted + not_converted), rel=1e-9)


def test_oracle_ranks_journeys_better_than_the_summary_models():
    sim = simulate(SimConfig(pool=6_000, days=56, seed=3, fatigue=True, repeat=True, repeat_rate=0.03), optimum=False)
    vocab = Vocab.fit(sim.touchpoints, sim.spend)
    journeys = build_journeys(sim.touchpoints, vocab)
    splits = split_journeys(journeys, 0.1, 0.2)
    test = splits["test"]
    y = journeys.label[test].astype(int)
    p = journey_probabilities(sim.truth, sim.touchpoints, sim.spend, journeys, test, 30.0)
    assert np.all((p >= 0) & (p <= 1))
    baselines = fit_baselines(journeys, splits, n_channels=vocab.n_channels)
    oracle_auc = binary_metrics(y, p)["auc"]
    assert oracle_auc >= binary_metrics(y, baselines["gbdt"])["auc"]
    assert oracle_auc >= binary_metrics(y, baselines["logistic"])["auc"]


def test_a_last_row_repeating_a_channel_of_its_day_is_certainly_a_conversion():
    """A channel gives a customer at most one non-converting row a day: a journey ending on a second
    direct row of the day must have converted there (the day-resolution oracle used to read the two
    rows as one visit and score such journeys under 1%)."""
    world = hand_world()
    spend = np.full((DAYS, 2), 500.0)
    start = pd.Timestamp("2024-01-01")
    tp = pd.DataFrame({"customer_id": "c1", "timestamp": [start + pd.Timedelta(days=2, hours=h) for h in (9, 17)],
                       "channel": "direct", "campaign_type": "", "converted": [0, 1], "revenue": 0.0})
    one_visit = tp.iloc[[1]].assign(converted=1)
    truth = {"world": world.to_dict(), "config": {"start": "2024-01-01"}, "spend": spend.tolist()}
    p = []
    for frame in (tp, one_visit):
        journeys = SimpleNamespace(customer_id=np.array(["c1"], dtype=object),
                                   end_time=frame["timestamp"].to_numpy().astype("datetime64[ns]").astype(np.int64)[-1:])
        p.append(journey_probabilities(truth, frame, None, journeys, np.array([0]), lookback_days=1)[0])
    assert p[0] == 1.0
    assert 0.0 < p[1] < 1.0  # one direct visit alone may or may not have converted
