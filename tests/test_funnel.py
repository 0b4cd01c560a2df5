"""The latent-funnel model: exact propagation, exact interventions, and its maximum-likelihood fit.

Hand-made worlds have answers derived by hand (closed forms) or by an explicit Markov
chain written here independently of :mod:`journeynet.causal.funnel`; the fit is checked on
data generated from the model itself (issue 4: "the funnel model recovers known
parameters on data generated from itself").
"""

from __future__ import annotations

import dataclasses
import itertools
from math import lgamma

import numpy as np
import pandas as pd
import pytest
import torch

from journeynet.attribution.tables import shares, total_variation
from journeynet.causal.data import build_funnel_data
from journeynet.causal.fit import FunnelFitConfig, FunnelNet, fit_funnel
from journeynet.causal.funnel import (
    CONVERTED,
    N_STAGES,
    FunnelParams,
    expected_conversions,
    propagate,
    propagate_routes,
)
from journeynet.causal.interventions import removal_effects
from journeynet.causal.sample import SimConfig, simulate

torch.set_num_threads(1)
S = N_STAGES
IDENTITY_DRIFT = np.eye(S)[None]


def world(**kw) -> FunnelParams:
    """One segment, identity drift, no hazard, one silent unpaid channel, unless overridden."""
    n_units = len(kw.get("rho", [[0, 0, 0]]))
    base = dict(pool=1000.0, pi0=np.array([[1.0, 0.0, 0.0]]), reach_k=np.full(n_units, 100.0),
                reach_a=np.ones(n_units), rho=np.zeros((n_units, S)),
                move=np.tile(np.eye(S, S + 1), (n_units, 1, 1)), drift=IDENTITY_DRIFT.copy(),
                hazard=np.zeros((1, S)), unpaid=np.full((1, S), 0.3), session=np.ones(1),
                units=[("paid", f"u{i}") for i in range(n_units)], unpaid_channels=["direct"])
    base.update(kw)
    return FunnelParams(**base)


# ----- (a) expected_conversions against closed forms --------------------------------------------------------------


def test_opener_then_hazard_matches_the_closed_form():
    """Everyone starts unaware; a touch opens with prob m; the interested convert with hazard h.

    Reach at spend 50 with k=100, a=2 is 50^2 / (50^2 + 100^2) = 0.2, so the daily touch
    probability of the unaware is rho * 0.2 = 0.1 and the daily opening probability q = 0.04.
    With U_t, I_t the unaware/interested at the start of day t:
    U_t = N (1-q)^t, I_t = (1-h) q N ((1-h)^t - (1-q)^t) / (q - h), conversions_t = h (I_t + q U_t).
    """
    n, m, h, days = 1000.0, 0.4, 0.1, 30
    move = np.eye(S, S + 1)[None].copy()
    move[0, 0, :] = [1 - m, m, 0, 0]
    params = world(pool=n, rho=np.array([[0.5, 0.0, 0.0]]), reach_a=np.array([2.0]), move=move,
                   hazard=np.array([[0.0, h, 0.0]]))
    q = 0.5 * 0.2 * m
    t = np.arange(days)
    unaware = n * (1 - q) ** t
    interested = (1 - h) * q * n * ((1 - h) ** t - (1 - q) ** t) / (q - h)
    conv, final = propagate(params, np.full((days, 1), 50.0))
    np.testing.assert_allclose(conv, h * (interested + q * unaware), rtol=1e-12)
    np.testing.assert_allclose(final[0, :2], [n * (1 - q) ** days,
                                              (1 - h) * q * n * ((1 - h) ** days - (1 - q) ** days) / (q - h)])
    assert conv.sum() == pytest.approx(n - unaware[-1] * (1 - q) - final[0, 1], rel=1e-12)


def test_closer_with_two_segments_and_dark_days_matches_the_closed_form():
    """Everyone starts ready; a touch converts with prob c; segments differ in hazard; spend goes dark.

    Per segment k with share w_k: survival over the window is prod_t (1 - p_t c)(1 - h_k),
    so total conversions = N sum_k w_k (1 - prod_t (1 - p_t c)(1 - h_k)).
    """
    n, c, hz, w = 5000.0, 0.3, np.array([0.05, 0.01]), np.array([0.4, 0.6])
    move = np.eye(S, S + 1)[None].copy()
    move[0, 2, :] = [0, 0, 1 - c, c]
    params = world(pool=n, pi0=np.array([[0, 0, w[0]], [0, 0, w[1]]]), rho=np.array([[0.0, 0.0, 0.6]]),
                   move=move, drift=np.tile(np.eye(S), (2, 1, 1)), hazard=np.array([[0, 0, hz[0]], [0, 0, hz[1]]]))
    spend = np.tile([[300.0], [0.0], [100.0]], (7, 1))  # reach 0.75, 0, 0.5
    p = 0.6 * np.tile([0.75, 0.0, 0.5], 7)
    survive = np.prod((1 - p * c)[None] * (1 - hz[:, None]), axis=1)
    assert expected_conversions(params, spend).sum() == pytest.approx(n * (w * (1 - survive)).sum(), rel=1e-12)
    # day 1 is dark: only the hazard converts
    ready_day1 = n * w * (1 - p[0] * c) * (1 - hz)
    assert expected_conversions(params, spend)[1] == pytest.approx((ready_day1 * hz).sum(), rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_propagation_conserves_the_pool_and_chains_through_start(seed):
    """Customers are never created or lost, and propagating in two halves equals one pass."""
    rng = np.random.default_rng(seed)
    params = FunnelParams.example(n_units=3, n_unpaid=2)
    params.pi0 = rng.dirichlet(np.ones(2 * S)).reshape(2, S)
    params.drift = rng.dirichlet(np.ones(S), size=(2, S))
    params.hazard = rng.uniform(0, 0.2, (2, S))
    params.move = rng.dirichlet(np.ones(S + 1), size=(3, S)) * np.triu(np.ones((S, S + 1)))[None]
    params.move /= params.move.sum(-1, keepdims=True)
    spend = rng.uniform(0, 300, (40, 3)) * (rng.random((40, 3)) > 0.2)
    conv, final = propagate(params, spend)
    assert conv.min() >= 0
    assert conv.sum() + final.sum() == pytest.approx(params.pool, rel=1e-12)
    first, mid = propagate(params, spend[:17])
    second, end = propagate(params, spend[17:], start=mid)
    np.testing.assert_allclose(np.r_[first, second], conv, rtol=1e-12)
    np.testing.assert_allclose(end, final, rtol=1e-12)


# ----- (b) interventional removal on a hand-made two-unit world ---------------------------------------------------


def two_unit_world(pi0, hazard, drift) -> FunnelParams:
    """Unit A (0) only opens the unaware; unit B (1) only converts the interested and ready."""
    move = np.tile(np.eye(S, S + 1), (2, 1, 1))
    move[0, 0, :] = [0.5, 0.5, 0.0, 0.0]
    move[1, 1, :] = [0.0, 0.75, 0.0, 0.25]
    move[1, 2, :] = [0.0, 0.0, 0.5, 0.5]
    return world(pool=2000.0, pi0=np.asarray(pi0), rho=np.array([[0.4, 0.0, 0.0], [0.0, 0.6, 0.6]]),
                 reach_k=np.array([100.0, 100.0]), reach_a=np.ones(2), move=move, drift=np.asarray(drift),
                 hazard=np.asarray(hazard), units=[("ch", "A"), ("ch", "B")])


def explicit_chain_conversions(params: FunnelParams, spend: np.ndarray, no_convert: int | None = None) -> float:
    """Total expected conversions from an explicit 4-state chain (unaware, interested, ready, converted).

    The day's transition matrix is built by enumerating which units touch (each with the
    probability of its start-of-day stage), applying their moves in unit order, then the
    hazard, then the drift. ``no_convert`` makes that unit's conversions keep the customer
    in its stage. One segment only.
    """
    r = spend / (spend + params.reach_k)  # exponent 1
    full = np.zeros((params.n_units, S + 1, S + 1))
    for u in range(params.n_units):
        full[u, :S] = params.move[u]
        full[u, S, S] = 1.0
        if u == no_convert:
            for z in range(S):
                full[u, z, z] += full[u, z, S]
                full[u, z, S] = 0.0
    mass = np.r_[params.pool * params.pi0[0], 0.0]
    for d in range(spend.shape[0]):
        day = np.zeros((S + 1, S + 1))
        day[S, S] = 1.0
        for z in range(S):
            for touched in itertools.product([0, 1], repeat=params.n_units):
                prob, v = 1.0, np.eye(S + 1)[z]
                for u, t in enumerate(touched):
                    pu = params.rho[u, z] * r[d, u]
                    prob *= pu if t else 1 - pu
                    if t:
                        v = v @ full[u]
                day[z] += prob * v
        after = mass @ day
        hz = after[:S] * params.hazard[0]
        mass = np.r_[(after[:S] - hz) @ params.drift[0], after[S] + hz.sum()]
    return float(mass[S])


def test_switching_the_opener_off_removes_every_closer_conversion():
    """Nobody is interested without A and nobody converts but through B: both effects are all sales.

    Closed form (no hazard, no drift; B's touch probability is set by the start-of-day stage,
    so a customer opened today converts tomorrow at the earliest): with daily opening
    probability a and daily conversion probability b of the interested,
    U_T = N (1-a)^T, I_T = a N ((1-b)^T - (1-a)^T) / (a - b), conversions = N - U_T - I_T.
    """
    params = two_unit_world([[1.0, 0.0, 0.0]], np.zeros((1, S)), IDENTITY_DRIFT)
    days, n = 40, params.pool
    spend = np.full((days, 2), 100.0)  # reach 0.5 for both
    a, b = 0.4 * 0.5 * 0.5, 0.6 * 0.5 * 0.25
    total = n - n * (1 - a) ** days - a * n * ((1 - b) ** days - (1 - a) ** days) / (a - b)
    assert expected_conversions(params, spend).sum() == pytest.approx(total, rel=1e-12)
    eff = removal_effects(params, spend).set_index("campaign_type")
    assert eff.loc["A", "effect"] == pytest.approx(total, rel=1e-12)
    assert eff.loc["B", "effect"] == pytest.approx(total, rel=1e-12)
    # A converts nobody itself (all opener); B's effect is all conversion on its touches (all closer)
    assert eff.loc["A", "closer_effect"] == pytest.approx(0.0, abs=1e-9)
    assert eff.loc["A", "opener_effect"] == pytest.approx(total, rel=1e-12)
    assert eff.loc["B", "closer_effect"] == pytest.approx(total, rel=1e-12)
    assert eff.loc["B", "opener_effect"] == pytest.approx(0.0, abs=1e-9)


def test_removal_effects_match_an_explicit_markov_chain():
    """Baseline demand (hazard, drift, customers already interested) makes the answer non-trivial."""
    drift = np.array([[[0.97, 0.03, 0.0], [0.05, 0.9, 0.05], [0.0, 0.1, 0.9]]])
    params = two_unit_world([[0.7, 0.2, 0.1]], np.array([[0.0, 0.01, 0.08]]), drift)
    rng = np.random.default_rng(7)
    spend = rng.uniform(20, 400, (35, 2)) * (rng.random((35, 2)) > 0.25)
    factual = explicit_chain_conversions(params, spend)
    assert expected_conversions(params, spend).sum() == pytest.approx(factual, rel=1e-10)
    eff = removal_effects(params, spend)
    for u in range(2):
        off = spend.copy()
        off[:, u] = 0.0
        total = factual - explicit_chain_conversions(params, off)
        closer = factual - explicit_chain_conversions(params, spend, no_convert=u)
        row = eff.iloc[u]
        assert row["effect"] == pytest.approx(total, rel=1e-10)
        assert row["closer_effect"] == pytest.approx(closer, rel=1e-10, abs=1e-9)
        assert row["opener_effect"] == pytest.approx(total - closer, rel=1e-10, abs=1e-9)
    # baseline demand converts without either unit, so B's effect is below all sales, and
    # A's effect is smaller than B's: the already-interested need only B
    assert 0 < eff.iloc[0]["effect"] < eff.iloc[1]["effect"] < factual


# ----- (c) + (d) the fit on data generated from the model ---------------------------------------------------------

FIT_CFG = SimConfig(pool=8000, days=63, seed=3)
# the sampled world is the plain funnel's own family: fit the plain funnel on it
PLAIN = {"capture": False, "demand": False, "signed": False, "wear": False}


@pytest.fixture(scope="module")
def generated():
    sim = simulate(FIT_CFG)
    return sim, build_funnel_data(sim.touchpoints, sim.spend)


@pytest.fixture(scope="module")
def fitted(generated):
    sim, data = generated
    params, diag = fit_funnel(data, FunnelFitConfig(max_iter=40, seed=0, **PLAIN))
    return params, diag


def check_recovery(sim, data, params, max_tv: float) -> None:
    """Pool within 10%, effect shares within ``max_tv`` (and far closer than last touch), roles ordered."""
    assert params.pool == pytest.approx(sim.params.pool, rel=0.10)
    truth = pd.DataFrame(sim.truth["units"])
    est = removal_effects(params, data.spend)
    assert list(zip(est["channel"], est["campaign_type"], strict=True)) == list(
        zip(truth["channel"], truth["campaign_type"], strict=True))
    tv = total_variation(shares(est["effect"]), shares(truth["effect"]))
    lt = pd.Series(sim.truth["last_touch"])
    lt_paid = np.array([lt.get(f"{c}/{k}", 0.0) for c, k in zip(truth["channel"], truth["campaign_type"], strict=True)])
    assert tv <= max_tv, tv
    assert tv < 0.5 * total_variation(shares(lt_paid), shares(truth["effect"]))
    # true openers get a higher opener share than true closers (material units only)
    opener_share = (est["opener_effect"] / est["effect"]).to_numpy()
    material = truth["share"].to_numpy() > 0.01
    openers = opener_share[material & (truth["role"] == "opener").to_numpy()]
    closers = opener_share[material & truth["role"].isin(["closer", "brand"]).to_numpy()]
    assert openers.size >= 2 and closers.size >= 2
    assert openers.min() > closers.max(), (openers, closers)


def test_fit_recovers_pool_effect_shares_and_roles(generated, fitted):
    """About 3,000 sequences: share estimates carry sampling noise of TV ~0.07 (0.066-0.092 over seeds)."""
    sim, data = generated
    params, diag = fitted
    assert np.isfinite(diag["loglik_per_sequence"])
    check_recovery(sim, data, params, max_tv=0.10)


@pytest.mark.slow
def test_fit_recovers_effect_shares_within_008_on_a_larger_world():
    """About 8,700 sequences, 60 L-BFGS iterations (~80 s on one core); measured TV 0.049."""
    sim = simulate(SimConfig(pool=24_000, days=56, seed=1))
    data = build_funnel_data(sim.touchpoints, sim.spend)
    params, _ = fit_funnel(data, FunnelFitConfig(max_iter=60, seed=0, **PLAIN))
    check_recovery(sim, data, params, max_tv=0.08)


def test_true_parameters_beat_perturbed_ones(generated):
    sim, data = generated
    net = FunnelNet(data, n_segments=2)

    def loglik(params: FunnelParams) -> float:
        net.load_params(params)
        with torch.no_grad():
            return float(net.log_likelihood())

    true = sim.params
    best = loglik(true)
    opener = true.units.index(("meta_ads", "social"))
    closer = true.units.index(("google_ads", "search_network"))
    swapped = true.move.copy()
    swapped[[opener, closer]] = swapped[[closer, opener]]
    perturbed = {
        "pool x1.3": dataclasses.replace(true, pool=true.pool * 1.3),
        "pool x0.75": dataclasses.replace(true, pool=true.pool * 0.75),
        "rho x1.5": dataclasses.replace(true, rho=true.rho * 1.5),
        "hazard x2": dataclasses.replace(true, hazard=true.hazard * 2),
        "roles swapped": dataclasses.replace(true, move=swapped),
        "reach half at 2x spend": dataclasses.replace(true, reach_k=true.reach_k * 2),
    }
    for name, params in perturbed.items():
        assert loglik(params) < best - 1.0, name


def test_load_params_round_trips(generated):
    sim, data = generated
    net = FunnelNet(data, n_segments=2)
    net.load_params(sim.params)
    back = net.to_params()
    assert back.pool == pytest.approx(sim.params.pool, rel=1e-9)
    for name in ("pi0", "reach_k", "reach_a", "rho", "move", "drift", "hazard", "unpaid", "session"):
        np.testing.assert_allclose(getattr(back, name), getattr(sim.params, name), atol=1e-9, err_msg=name)
    assert back.units == sim.params.units


# ----- the forward algorithm against a brute-force likelihood ------------------------------------------------------


def brute_force_loglik(params: FunnelParams, data) -> float:
    """Per sequence and per day, written out plainly: emissions, moves in unit order, conversion, drift."""
    p = params.touch_prob(data.spend)

    def emission(t: int, units: set, chans: set) -> np.ndarray:
        e = np.ones(S)
        for u in range(params.n_units):
            e = e * (p[t, u] if u in units else 1 - p[t, u])
        for c in range(params.unpaid.shape[0]):
            e = e * (params.unpaid[c] if c in chans else 1 - params.unpaid[c])
        return e

    def sequence(i: int) -> float:
        a = params.pi0.copy()
        for t in range(data.n_days):
            units = {int(r[2]): int(r[3]) for r in data.paid if r[0] == i and r[1] == t}
            chans = {int(r[2]) for r in data.unpaid if r[0] == i and r[1] == t}
            v = a * emission(t, set(units), chans)
            converts, route = data.conv_day[i] == t, data.conv_route[i]
            for u in sorted(units):
                if converts and route == u:
                    return float((v @ params.move[u][:, CONVERTED]).sum())
                if units[u]:
                    v = v @ params.move[u][:, :S]
            if converts:
                return float((v * params.hazard).sum() * params.session[-1 - route])
            a = np.einsum("ks,kst->kt", v * (1 - params.hazard), params.drift)
        return float(a.sum())

    a = params.pi0.copy()
    for t in range(data.n_days):
        a = np.einsum("ks,kst->kt", a * emission(t, set(), set()) * (1 - params.hazard), params.drift)
    n, pool = data.n_sequences, params.pool
    return (sum(np.log(sequence(i)) for i in range(n)) + (pool - n) * np.log(a.sum())
            + lgamma(pool + 1) - lgamma(pool - n + 1))


def hand_frames():
    """Two paid units (g/a, g/b) over four days and three customers.

    x never converts and is touched on the last day; y converts on b after an a touch the
    same day; z converts in a direct session.
    """
    dates = pd.date_range("2024-01-01", periods=4)
    spend = pd.DataFrame({"date": np.repeat(dates, 2), "channel": "g", "campaign_type": ["a", "b"] * 4,
                          "spend": [100, 50, 0, 80, 120, 40, 60, 60.0]})

    def ts(day: int, hour: int) -> pd.Timestamp:
        return pd.Timestamp("2024-01-01") + pd.Timedelta(days=day, hours=hour)

    rows = [("x", ts(0, 1), "g", "a", 0), ("x", ts(1, 2), "direct", "", 0), ("x", ts(3, 5), "g", "b", 0),
            ("y", ts(1, 1), "g", "b", 0), ("y", ts(2, 1), "g", "a", 0), ("y", ts(2, 2), "g", "b", 1),
            ("z", ts(0, 1), "email", "", 0), ("z", ts(2, 23), "direct", "", 1)]
    tp = pd.DataFrame(rows, columns=["customer_id", "timestamp", "channel", "campaign_type", "converted"])
    return tp, spend


def test_log_likelihood_equals_a_brute_force_computation():
    tp, spend = hand_frames()
    data = build_funnel_data(tp, spend)
    params = FunnelParams.example(n_units=2, n_unpaid=2)
    params.units, params.unpaid_channels = [("g", "a"), ("g", "b")], ["direct", "email"]
    params.drift = np.array([[[0.9, 0.1, 0.0], [0.05, 0.9, 0.05], [0.0, 0.1, 0.9]]])
    params.pool = 50.0
    net = FunnelNet(data, n_segments=1)
    net.load_params(params)
    with torch.no_grad():
        ll = float(net.log_likelihood())
    assert ll == pytest.approx(brute_force_loglik(params, data), abs=1e-6)


# ----- (e) build_funnel_data on a hand-made frame -----------------------------------------------------------------


def edge_frames():
    dates = pd.date_range("2024-03-01", periods=5)
    spend = pd.DataFrame({"date": np.repeat(dates, 2), "channel": ["m", "g"] * 5,
                          "campaign_type": ["social", "search"] * 5, "spend": 10.0})

    def ts(day: int, hour: int) -> pd.Timestamp:
        return pd.Timestamp("2024-03-01") + pd.Timedelta(days=day, hours=hour)

    rows = [
        ("twice", ts(0, 9), "m", "social", 0), ("twice", ts(1, 9), "g", "search", 1),  # buys on a paid touch
        ("twice", ts(2, 9), "email", "", 0), ("twice", ts(3, 23), "direct", "", 1),  # buys again, unpaid session
        ("late", ts(-2, 9), "g", "search", 0), ("late", ts(4, 8), "direct", "", 0),  # first touch before window
        ("late", ts(4, 9), "g", "search", 0), ("late", ts(7, 9), "g", "search", 0),  # last touch after window
        ("same", ts(1, 8), "direct", "", 0), ("same", ts(1, 23), "direct", "", 1),  # direct visit, then buys
        ("after", ts(2, 8), "g", "search", 1), ("after", ts(2, 7), "m", "social", 0),  # social first in time
    ]
    tp = pd.DataFrame(rows, columns=["customer_id", "timestamp", "channel", "campaign_type", "converted"])
    return tp, spend


def test_build_funnel_data_edge_cases():
    tp, spend = edge_frames()
    data = build_funnel_data(tp, spend)
    assert data.units == [("g", "search"), ("m", "social")]  # sorted, as the fit and the generator order them
    assert data.unpaid_channels == ["direct", "email"]
    search, social, direct, email = 0, 1, 0, 1
    # five sequences: "twice" buys twice, so it is two; touches outside the window are gone
    assert data.n_sequences == 5
    assert list(data.first_day) == sorted(data.first_day)
    found = {(int(f), int(c)): i for i, (f, c) in enumerate(zip(data.first_day, data.conv_day, strict=True))}
    seq = {"twice1": found[(0, 1)], "twice2": found[(2, 3)], "late": found[(4, -1)], "same": found[(1, 1)],
           "after": found[(2, 2)]}
    assert len(set(seq.values())) == 5
    assert data.conv_route[seq["twice1"]] == search  # bought on a paid touch: the route is that unit
    assert data.conv_route[seq["twice2"]] == -1 - direct  # bought in a direct session
    assert data.conv_route[seq["same"]] == -1 - direct
    assert data.conv_route[seq["after"]] == search
    paid = {tuple(int(v) for v in r) for r in data.paid}
    unpaid = {tuple(int(v) for v in r) for r in data.unpaid}
    # "after": social comes after search in unit order, so on the day search converted it moved nobody
    assert paid == {(seq["twice1"], 0, social, 1), (seq["twice1"], 1, search, 1), (seq["late"], 4, search, 1),
                    (seq["after"], 2, search, 1), (seq["after"], 2, social, 0)}
    # a converting unpaid session is the conversion, not an emission; the non-converting visits are emissions
    assert unpaid == {(seq["twice2"], 2, email), (seq["late"], 4, direct), (seq["same"], 1, direct)}
    np.testing.assert_array_equal(data.spend, np.full((5, 2), 10.0))
    assert data.sample_fraction == 1.0


def test_units_before_the_converting_unit_still_move():
    """Converting on social (unit 1): a same-day search touch (unit 0) came first in unit order."""
    tp, spend = edge_frames()
    tp = tp[tp["customer_id"] == "after"].copy()
    tp["converted"] = [0, 1]  # now social converts (its touch is made the day's last)
    tp["timestamp"] = [pd.Timestamp("2024-03-03 07:00"), pd.Timestamp("2024-03-03 08:00")]
    data = build_funnel_data(tp, spend)
    assert data.conv_route.tolist() == [1] and data.conv_day.tolist() == [2]
    assert {tuple(int(v) for v in r) for r in data.paid} == {(0, 2, 0, 1), (0, 2, 1, 1)}


def test_build_funnel_data_sampling_is_deterministic_for_a_seed(generated):
    sim, _ = generated
    a = build_funnel_data(sim.touchpoints, sim.spend, max_sequences=500, seed=4)
    b = build_funnel_data(sim.touchpoints, sim.spend, max_sequences=500, seed=4)
    c = build_funnel_data(sim.touchpoints, sim.spend, max_sequences=500, seed=5)
    for name in ("first_day", "conv_day", "conv_route", "paid", "unpaid"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.paid, c.paid)
    n_customers = sim.touchpoints["customer_id"].nunique()
    assert a.sample_fraction == pytest.approx(500 / n_customers)
    assert a.n_sequences == 500  # generated customers buy at most once: one sequence each


def test_fit_is_deterministic_for_a_seed(generated):
    _, data = generated
    cfg = FunnelFitConfig(max_iter=4, seed=3)
    a, _ = fit_funnel(data, cfg)
    b, _ = fit_funnel(data, cfg)
    np.testing.assert_array_equal(a.move, b.move)
    np.testing.assert_array_equal(a.rho, b.rho)
    assert a.pool == b.pool
    pd.testing.assert_frame_equal(removal_effects(a, data.spend), removal_effects(b, data.spend))


def test_a_stack_of_spend_schedules_propagates_as_each_one_alone():
    params = FunnelParams.example(n_units=3, n_unpaid=1)
    params.wear, params.capture = 0.3, np.array([0.5, 0.0, 2.0])
    params.demand_hazard = np.sin(np.arange(40) / 6.0)
    params.demand_arrival = 0.5 * np.cos(np.arange(40) / 5.0)
    rng = np.random.default_rng(0)
    stack = rng.gamma(2.0, 50.0, size=(4, 40, 3)) * (rng.random((4, 40, 3)) > 0.2)
    together = propagate_routes(params, stack)
    for b in range(4):
        alone = propagate_routes(params, stack[b])
        for part_together, part_alone in zip(together, alone, strict=True):
            np.testing.assert_allclose(part_together[b], part_alone, rtol=1e-12)
