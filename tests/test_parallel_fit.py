"""The data-parallel funnel fit: rank terms sum to the single-process likelihood; 2 gloo processes fit the same.

Both entry points are covered: touchpoint frames dealt by customer (``fit_funnel_processes``)
and the engine's full fit on a ``FunnelData`` dealt by ``sequence_partition``
(``attribution.funnel.processes``).
"""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from journeynet.causal.calibration import Experiment, ExperimentPenalty
from journeynet.causal.data import build_funnel_data
from journeynet.causal.engine import fit_engine
from journeynet.causal.fit import FunnelFitConfig, fit_funnel, make_net
from journeynet.causal.parallel import (
    PoolTerm,
    _WholeNet,
    fit_funnel_processes,
    fit_rank,
    sequence_partition,
    unpaid_channel_names,
)
from journeynet.causal.sample import SimConfig, simulate
from journeynet.data.partition import customer_partition

CFG = FunnelFitConfig(max_iter=6, max_sequences=None, seed=0)


def world(n_customers=500, days=42, seed=0):
    """Canonical touchpoints and daily spend: three paid units, three unpaid channels."""
    rng = np.random.default_rng(seed)
    units = [("google_ads", "search"), ("google_ads", "shopping"), ("meta_ads", "social"), ("email", ""),
             ("direct", ""), ("organic_search", "")]
    n = n_customers * 3
    u = rng.choice(len(units), n, p=[0.25, 0.15, 0.2, 0.15, 0.15, 0.1])
    tp = pd.DataFrame({
        "customer_id": [f"c{c:04d}" for c in rng.integers(0, n_customers, n)],
        "timestamp": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, days * 24, n), unit="h"),
        "channel": [units[i][0] for i in u], "campaign_type": [units[i][1] for i in u],
        "converted": (rng.random(n) < 0.06).astype(np.int8), "revenue": 0.0,
    }).sort_values(["customer_id", "timestamp"], kind="stable").reset_index(drop=True)
    dates = pd.date_range("2024-01-01", periods=days, freq="D")
    spend = pd.concat([pd.DataFrame({"date": dates, "channel": c, "campaign_type": k,
                                     "spend": rng.gamma(4.0, 25.0, days)}) for c, k in units[:3]], ignore_index=True)
    return tp, spend


def test_rank_terms_sum_to_the_single_process_likelihood_and_gradient():
    tp, spend = world()
    full = build_funnel_data(tp, spend, None)
    assert unpaid_channel_names(tp, spend) == list(full.unpaid_channels)
    net = make_net(full, CFG)
    (-net.log_likelihood()).backward()
    part = customer_partition(tp["customer_id"], 3)
    total = 0.0
    nets = []
    for r in range(3):
        data = build_funnel_data(tp[part == r], spend, None, 0, unpaid_channel_names(tp, spend))
        assert 0 < data.n_sequences < full.n_sequences
        rank_net = make_net(data, CFG)
        with torch.no_grad():
            for (_, a), (_, b) in zip(net.named_parameters(), rank_net.named_parameters(), strict=True):
                b.copy_(a)
        nets.append(rank_net)
        total = total + rank_net.sequence_log_likelihood().sum()
    assert sum(n.data.n_sequences for n in nets) == full.n_sequences
    total = total + PoolTerm(nets[0], CFG, full.n_sequences)()
    assert float(total.detach()) == pytest.approx(float(net.log_likelihood().detach()), rel=1e-12)
    (-total).backward()
    # the summed gradient of the rank nets is the single net's gradient
    for (name, a), *bs in zip(net.named_parameters(), *(n.named_parameters() for n in nets), strict=True):
        if a.grad is None:
            continue
        g = sum(b[1].grad for b in bs if b[1].grad is not None)
        assert torch.allclose(g, a.grad, rtol=1e-9, atol=1e-10), name


def test_one_rank_fit_is_the_single_process_fit():
    tp, spend = world(300, 28)
    full = build_funnel_data(tp, spend, None)
    ref = make_net(full, CFG)
    init = {k: v.detach().numpy().copy() for k, v in ref.named_parameters()}
    single, d1 = fit_funnel(full, CFG, net=ref, quiet=True)
    one, d2 = fit_rank(full, CFG, init)
    assert d2["evaluations"] == d1["evaluations"]
    assert one.pool == pytest.approx(single.pool, rel=1e-9)
    for name in ("pi0", "rho", "move", "hazard", "unpaid", "capture"):
        np.testing.assert_allclose(getattr(one, name), getattr(single, name), rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.slow
def test_two_gloo_processes_fit_the_parameters_of_one():
    """Same customers, same start: equal within 1e-6 (the sums differ only in floating-point order).

    Slow: two fresh interpreters importing torch (~90 s on a busy 2-core box, 20 s of CPU).
    """
    tp, spend = world()
    full = build_funnel_data(tp, spend, None)
    ref = make_net(full, CFG)
    init = {k: v.detach().numpy().copy() for k, v in ref.named_parameters()}
    single, d1 = fit_funnel(full, CFG, net=ref, quiet=True)
    pair, d2 = fit_funnel_processes(tp, spend, CFG, processes=2, init=init, threads=1)
    assert d2["ranks"] == 2 and d2["sequences"] == full.n_sequences
    assert d2["evaluations"] == d1["evaluations"]
    assert pair.pool == pytest.approx(single.pool, rel=1e-6)
    for name in ("pi0", "reach_k", "reach_a", "rho", "move", "drift", "hazard", "unpaid", "session", "capture"):
        np.testing.assert_allclose(getattr(pair, name), getattr(single, name), rtol=1e-6, atol=1e-9, err_msg=name)
    np.testing.assert_allclose(pair.demand_hazard, single.demand_hazard, rtol=1e-6, atol=1e-9)
    assert d2["loglik_per_sequence"] == pytest.approx(d1["loglik_per_sequence"], rel=1e-9)


def sampled_world():
    """A small generated world through ``build_funnel_data`` with a sample (``sample_fraction`` < 1)."""
    sim = simulate(SimConfig(pool=3000, days=42))
    data = build_funnel_data(sim.touchpoints, sim.spend, 800, 0)
    assert data.sample_fraction < 1 and data.customer is not None
    return data


PENALTY = ExperimentPenalty([Experiment("x", "paid", "unit_1", (1,), 14, 27, 3, 10.0, 2.0)])


def test_processes_must_be_at_least_one():
    with pytest.raises(ValueError) as err:
        FunnelFitConfig(processes=0)
    assert str(err.value) == "attribution.funnel.processes must be >= 1, got 0"


def test_sequence_subsets_and_the_whole_view_sum_to_the_full_objective():
    """Subsets dealt by customer hash, rank 0's pool term and a penalty on the whole view: the full objective."""
    data = sampled_world()
    cfg = FunnelFitConfig(n_segments=2, seed=0)
    part = sequence_partition(data, 2)
    assert set(np.unique(part)) == {0, 1}
    for c in np.unique(data.customer):  # a customer's sequences all go to one process
        assert np.unique(part[data.customer == c]).size == 1
    net = make_net(data, cfg)
    (-(net.log_likelihood() - PENALTY(net))).backward()
    nets = []
    for r in range(2):
        rank_net = make_net(data.subset(part == r), cfg)
        with torch.no_grad():
            for (_, a), (_, b) in zip(net.named_parameters(), rank_net.named_parameters(), strict=True):
                b.copy_(a)
        nets.append(rank_net)
    whole = _WholeNet(nets[0], data.n_sequences, data.sample_fraction)
    assert float(PENALTY(whole).detach()) == pytest.approx(float(PENALTY(net).detach()), rel=1e-12)
    assert float(PENALTY(nets[0]).detach()) != pytest.approx(float(PENALTY(net).detach()), rel=1e-3)  # the view matters
    total = sum(n.sequence_log_likelihood().sum() for n in nets) + PoolTerm(nets[0], cfg, data.n_sequences)()
    assert float(total.detach()) == pytest.approx(float(net.log_likelihood().detach()), rel=1e-12)
    (-(total - PENALTY(whole))).backward()
    for (name, a), *bs in zip(net.named_parameters(), *(n.named_parameters() for n in nets), strict=True):
        if a.grad is None:
            continue
        g = sum(b[1].grad for b in bs if b[1].grad is not None)
        assert torch.allclose(g, a.grad, rtol=1e-9, atol=1e-10), name


@pytest.mark.slow
def test_engine_full_fit_on_two_processes_is_the_full_fit_on_one():
    """``fit_engine`` with ``processes=2``: the same full fit, draws and diagnostics as ``processes=1``.

    A sampled world (the pool scales by ``sample_fraction``) with a lift-test penalty (rank 0
    adds it on the whole view) and two group refits (the parent continues from the
    processes' parameters). Equal within 1e-6 relative: only the order of floating-point sums
    differs (measured: 1e-11 on the pool). Slow: two fresh interpreters importing torch
    (~20 s at load 2 on 2 cores, more on a busy box); the fitting itself is about a second.
    """
    data = sampled_world()
    cfg = FunnelFitConfig(n_segments=2, max_iter=5, refine_iter=5, holdout_weeks=0, interval_groups=2,
                          interval_iter=2, interval_draws=3, seed=0)
    one = fit_engine(data, cfg, penalty=PENALTY)
    two = fit_engine(data, replace(cfg, processes=2), penalty=PENALTY)
    assert two.diagnostics["processes"] == 2 and two.diagnostics["sequences"] == data.n_sequences
    assert two.diagnostics["evaluations"] == one.diagnostics["evaluations"]
    assert two.diagnostics["loglik_per_sequence"] == pytest.approx(one.diagnostics["loglik_per_sequence"], rel=1e-9)
    assert len(two.draws) == len(one.draws) == 3
    for a, b in [(two.params, one.params), *zip(two.draws, one.draws, strict=True)]:
        assert a.pool == pytest.approx(b.pool, rel=1e-6)
        for name in ("pi0", "reach_k", "reach_a", "rho", "move", "drift", "hazard", "unpaid", "session", "capture",
                     "demand_hazard"):
            np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-6, atol=1e-9, err_msg=name)


def test_full_state_restarts_the_interval_refits_of_the_fit():
    """``EngineResult.full_state`` is the full fit: loaded into a net it gives the fitted parameters, and
    the group refits from it, on the same customer groups, give the run's draws (what bench_intervals relies on)."""
    from journeynet.causal.engine import interval_draws
    from journeynet.causal.fit import load_state
    from journeynet.causal.parallel import whole_params

    data = sampled_world()
    cfg = FunnelFitConfig(n_segments=2, max_iter=5, refine_iter=5, holdout_weeks=0, interval_groups=2,
                          interval_iter=2, interval_draws=3, seed=0)
    result = fit_engine(data, cfg)
    full = make_net(data, cfg)
    load_state(full, result.full_state)
    np.testing.assert_allclose(whole_params(full, data.n_sequences, data.sample_fraction).move, result.params.move,
                               rtol=1e-12)
    rng = np.random.default_rng(cfg.seed)
    rng.random(data.n_sequences)  # fit_engine's draw of the backtest customers comes first
    again = interval_draws(data, full, cfg, rng)
    assert len(again) == len(result.draws) == 3
    for a, b in zip(again, result.draws, strict=True):
        assert a.pool == pytest.approx(b.pool, rel=1e-9)
        np.testing.assert_allclose(a.move, b.move, rtol=1e-9, atol=1e-12)


def test_interval_refits_on_two_processes_give_the_draws_of_one():
    """``interval_processes=2``: a spawned helper refits half the customer groups (with the lift-test
    penalty, scaled to its group) and the draws are exactly those of one process; the full fit is untouched."""
    data = sampled_world()
    cfg = FunnelFitConfig(n_segments=2, max_iter=5, refine_iter=5, holdout_weeks=0, interval_groups=4,
                          interval_iter=3, interval_draws=5, seed=0)
    one = fit_engine(data, cfg, penalty=PENALTY)
    two = fit_engine(data, replace(cfg, interval_processes=2), penalty=PENALTY)
    assert len(two.draws) == len(one.draws) == 5
    assert two.params.pool == one.params.pool
    spread = np.std([d.move for d in one.draws], axis=0)
    assert spread.max() > 1e-4  # the refits moved: equal draws are not equal starting points
    for a, b in zip(two.draws, one.draws, strict=True):
        assert a.pool == b.pool
        for name in ("move", "reach_k", "capture", "hazard", "demand_hazard"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_interval_processes_must_be_at_least_one():
    with pytest.raises(ValueError, match="attribution.funnel.interval_processes must be >= 1, got 0"):
        FunnelFitConfig(interval_processes=0)
