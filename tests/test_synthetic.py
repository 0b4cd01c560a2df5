"""The generated world: its sampler agrees with its exact propagator, and each mechanism does what it says.

Monte-Carlo error: customers are independent and identically distributed given spend
(their day-0 cell is drawn i.i.d.), so a total over the pool has standard error
``sqrt(pool * var(per-customer count))``, estimated from the sampled customers.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from journeynet.synthetic.config import SimConfig
from journeynet.synthetic.propagate import propagate
from journeynet.synthetic.sampler import PAID, sample_events
from journeynet.synthetic.simulate import simulate
from journeynet.synthetic.truth import plan_conversions, response_points
from journeynet.synthetic.world import build_world, spend_history

ALL_ON = SimConfig(pool=12_000, days=42, seed=5, world="many_units", capture=True, seasonal=True, fatigue=True,
                   harmful=True, repeat=True, repeat_rate=0.05, season_peak=0.5, season_width_days=6.0)


def world_and_spend(cfg: SimConfig):
    world = build_world(cfg)
    return world, spend_history(cfg, world, np.random.default_rng(cfg.seed))


def per_customer_total(events: dict[str, np.ndarray], mask: np.ndarray, pool: int) -> tuple[float, float]:
    """Total of a per-customer count and its Monte-Carlo standard error."""
    counts = np.bincount(events["customer"][mask], minlength=pool).astype(float)
    return float(counts.sum()), float(np.sqrt(pool * counts.var(ddof=1)))


@pytest.fixture(scope="module")
def all_on():
    world, spend = world_and_spend(ALL_ON)
    runs = [sample_events(world, spend, np.random.default_rng(100 + r)) for r in range(3)]
    return world, spend, runs


def test_sampler_mean_matches_the_exact_propagator(all_on):
    world, spend, runs = all_on
    exact = propagate(world, spend)
    captured_exact = (exact.baseline[0][:, None] * world.capture_prob(spend)).sum(axis=0)
    pool = int(world.pool)
    checks = {"touch": [], "baseline": [], "first_half": [], "captured": []}
    for ev in runs:
        paid = ev["kind"] == PAID
        touch_conv = ev["converted"] & paid & ~ev["captured"]
        base_conv = ev["converted"] & ~touch_conv
        checks["touch"].append(per_customer_total(ev, touch_conv, pool))
        checks["baseline"].append(per_customer_total(ev, base_conv, pool))
        checks["first_half"].append(per_customer_total(ev, ev["converted"] & (ev["day"] < 21), pool))
        top = int(np.argmax(captured_exact))
        checks["captured"].append(per_customer_total(ev, ev["captured"] & (ev["code"] == top), pool))
    expected = {"touch": exact.touch.sum(), "baseline": exact.baseline.sum(),
                "first_half": exact.conversions[0, :21].sum(), "captured": captured_exact.max()}
    for name, vals in checks.items():
        mean = np.mean([v for v, _ in vals])
        se = np.sqrt(np.mean([s ** 2 for _, s in vals]) / len(vals))
        assert abs(mean - expected[name]) < 4.0 * se, (name, mean, expected[name], se)
    assert expected["touch"] > 50 and expected["captured"] > 20  # the checks have power


def test_capture_moves_credit_not_conversions():
    on = SimConfig(pool=5_000, days=42, seed=3)
    off = dataclasses.replace(on, capture=False)
    sim_on, sim_off = simulate(on, optimum=False), simulate(off, optimum=False)
    assert sim_on.truth["expected_conversions"] == pytest.approx(sim_off.truth["expected_conversions"], rel=1e-12)
    conv = [s.touchpoints.loc[s.touchpoints["converted"] == 1] for s in (sim_on, sim_off)]
    # same draws: the very same customers buy on the very same days, only the session differs
    days = [sorted(zip(c["customer_id"], c["timestamp"].dt.normalize(), strict=True)) for c in conv]
    assert days[0] == days[1]
    brand = [s.truth["last_touch"].get("google_ads/brand_search", 0.0) for s in (sim_on, sim_off)]
    assert brand[0] > 5 * max(brand[1], 1.0)
    effects = [pd.DataFrame(s.truth["units"]).set_index("campaign_type")["effect"] for s in (sim_on, sim_off)]
    pd.testing.assert_series_equal(effects[0], effects[1], rtol=1e-12)


def test_brand_unit_is_a_trap_for_last_touch():
    sim = simulate(SimConfig(pool=8_000, days=56, seed=2), optimum=False)
    units = pd.DataFrame(sim.truth["units"]).set_index(["channel", "campaign_type"])
    brand = units.loc[("google_ads", "brand_search")]
    last_touch = sim.truth["last_touch"]["google_ads/brand_search"]
    assert brand["role"] == "brand" and abs(brand["effect"]) < 0.02 * units["effect"].clip(lower=0).sum()
    assert last_touch > 10 * max(brand["effect"], 1.0)
    assert brand["captured_conversions"] > 0.5 * last_touch


def test_harmful_unit_has_a_negative_effect():
    cfg = SimConfig(pool=5_000, days=42, seed=1, harmful=True)
    world, spend = world_and_spend(cfg)
    sim = simulate(cfg, optimum=False)
    units = pd.DataFrame(sim.truth["units"])
    harmful = units[units["role"] == "harmful"]
    assert len(harmful) == 1 and harmful["effect"].iloc[0] < 0 and harmful["share"].iloc[0] < 0
    assert harmful["effect"].iloc[0] < -0.2 * units.loc[units["role"] == "opener", "effect"].max()
    # spending more on it loses more
    pts = pd.DataFrame(response_points(world, spend))
    curve = pts[pts["campaign_type"] == harmful["campaign_type"].iloc[0]]["expected_conversions"].to_numpy()
    assert np.all(np.diff(curve) < 0)


def test_fatigue_lowers_the_marginal_effect_of_extra_spend():
    marginal, effect = {}, {}
    for fatigue in (False, True):
        cfg = SimConfig(pool=5_000, days=42, seed=4, fatigue=fatigue)
        world, spend = world_and_spend(cfg)
        pts = response_points(world, spend, (1.0, 2.0)).set_index(["campaign_type", "spend_multiple"])
        pts = pts["expected_conversions"].unstack()
        marginal[fatigue] = (pts[2.0] - pts[1.0]) / pts[1.0]  # extra from doubling, per unit of history
        effect[fatigue] = pts[1.0]
    for unit in ("social", "search_network"):
        assert 0 < marginal[True][unit] < 0.95 * marginal[False][unit]
        assert effect[True][unit] < 0.8 * effect[False][unit]


def test_seasonal_demand_peaks_with_spend():
    cfg = SimConfig(pool=2_000, days=84, seed=0, seasonal=True)
    world, spend = world_and_spend(cfg)
    assert world.demand.max() == pytest.approx(1 + cfg.season_amplitude, rel=0.01)
    assert np.corrcoef(world.demand, spend.sum(axis=1))[0, 1] > 0.5
    flat = build_world(dataclasses.replace(cfg, seasonal=False))
    assert np.all(flat.demand == 1.0)
    # demand, not spend, raises conversions in the peak: with spend held flat they still rise
    flat_spend = np.tile(spend.mean(axis=0), (cfg.days, 1))
    daily = propagate(world, flat_spend).conversions[0]
    peak = int(np.argmax(world.demand))
    assert daily[peak - 3:peak + 4].mean() > 1.3 * daily[7:21].mean()


def test_repeat_purchases_appear_only_when_switched_on():
    buyers = {}
    for repeat in (False, True):
        cfg = SimConfig(pool=5_000, days=70, seed=6, repeat=repeat, repeat_rate=0.05)
        tp = simulate(cfg, optimum=False).touchpoints
        buyers[repeat] = tp[tp["converted"] == 1].groupby("customer_id").size()
    assert buyers[False].max() == 1
    assert (buyers[True] > 1).sum() > 10


def test_truth_is_deterministic_for_a_seed():
    cfg = SimConfig(pool=2_000, days=35, seed=9, fatigue=True, harmful=True)
    a, b = simulate(cfg), simulate(cfg)
    assert a.truth == b.truth
    pd.testing.assert_frame_equal(a.touchpoints, b.touchpoints)
    assert simulate(dataclasses.replace(cfg, seed=10)).truth["units"] != a.truth["units"]


def test_optimum_beats_equal_split_and_meets_constraints():
    sim = simulate(SimConfig(pool=3_000, days=35, seed=1, harmful=True))
    opt = sim.truth["optimum"]
    alloc = pd.Series(opt["allocation"])
    assert alloc.sum() == pytest.approx(200_000.0)
    assert alloc.min() >= 0.005 * 200_000.0 - 1e-6
    channel = alloc.groupby(alloc.index.str.split("/").str[0]).sum()
    assert channel.min() >= 0.10 * 200_000.0 - 1e-3
    assert opt["expected_conversions"] > opt["equal_split_conversions"]
    mix = sim.spend_matrix.mean(axis=0)
    assert opt["expected_conversions"] > plan_conversions(sim.truth, mix / mix.sum() * 200_000.0 / 30)
    # the optimum is a local maximum: moving budget from a unit above its floor to another never helps
    x = alloc.to_numpy() / 30
    room = (channel / 30 - 0.10 * 200_000.0 / 30).reindex(alloc.index.str.split("/").str[0]).to_numpy()
    free = np.flatnonzero((x > 0.005 * 200_000.0 / 30 + 10.0) & (room > 10.0))
    assert free.size >= 2
    for i, j in [(i, j) for i in range(x.size) for j in free if i != j][:12]:
        moved = x.copy()
        moved[i] += 5.0
        moved[j] -= 5.0
        assert plan_conversions(sim.truth, moved) <= opt["expected_conversions"] * (1 + 1e-5)


def test_truth_units_and_response_points_are_consistent():
    sim = simulate(SimConfig(pool=3_000, days=35, seed=8))
    units = pd.DataFrame(sim.truth["units"])
    np.testing.assert_allclose(units["opener_effect_true"] + units["closer_effect_true"], units["effect"])
    pts = pd.DataFrame(sim.truth["response_points"])
    at_one = pts[pts["spend_multiple"] == 1.0].set_index("campaign_type")["expected_conversions"]
    np.testing.assert_allclose(at_one.loc[units["campaign_type"]].to_numpy() * 35, units["effect"], rtol=1e-9)
    assert set(pts["spend_multiple"]) == {0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0}
    assert len(sim.truth["demand"]) == 35 and sim.units == [tuple(u) for u in sim.truth["world"]["units"]]


def test_synthetic_never_imports_the_engine():
    code = ("import sys, journeynet.synthetic.simulate, journeynet.synthetic.oracle; "
            "print([m for m in sys.modules if m.startswith('journeynet.causal')])")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "[]"


def test_bad_config_names_the_field():
    with pytest.raises(ValueError, match="synthetic.world must be one of"):
        SimConfig(world="nowhere")
    with pytest.raises(ValueError, match="synthetic.dark_weeks"):
        SimConfig(days=28, dark_weeks=5)


def test_one_unit_variants_match_full_propagation():
    from journeynet.synthetic.variants import Variant, variant_outcomes

    world, spend = world_and_spend(dataclasses.replace(ALL_ON, days=30))
    variants = [Variant(2, 0.0), Variant(7, 1.7), Variant(10, 1.0, convert_off=True), Variant(14, 0.3)]
    got = variant_outcomes(world, spend, variants).conversions.sum(axis=1)
    for v, total in zip(variants, got, strict=True):
        changed = spend.copy()
        changed[:, v.unit] *= v.scale
        off = np.arange(world.n_units) == v.unit if v.convert_off else None
        assert total == pytest.approx(propagate(world, changed, convert_off=off).conversions.sum(), rel=1e-10)


def test_the_clock_does_not_give_a_conversion_away():
    """A converting session is the last of its customer's day, but not at a tell-tale hour."""
    from sklearn.metrics import roc_auc_score

    tp = simulate(SimConfig(pool=4000, days=56, seed=3), optimum=False).touchpoints
    hour = tp["timestamp"].dt.hour + tp["timestamp"].dt.minute / 60
    assert 0.4 < roc_auc_score(tp["converted"], hour) < 0.6
    day = tp["timestamp"].dt.normalize()
    last = tp.groupby([tp["customer_id"], day])["timestamp"].transform("max") == tp["timestamp"]
    assert last[tp["converted"] == 1].all()
