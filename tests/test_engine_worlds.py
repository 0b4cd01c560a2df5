"""The engine on generated worlds it did not write (journeynet.synthetic), against the previous engine.

Slow: each test fits the engine twice on a world of tens of thousands of customers. The
figures per preset and seed are in bench/RESULTS.md (bench/bench_engine.py).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from journeynet.attribution.tables import shares, total_variation
from journeynet.causal.data import build_funnel_data
from journeynet.causal.engine import fit_engine
from journeynet.causal.fit import FunnelFitConfig
from journeynet.causal.interventions import unit_effects
from journeynet.synthetic.simulate import SimConfig, simulate

PLAIN = {"capture": False, "demand": False, "signed": False, "wear": False}
FIT = FunnelFitConfig(max_iter=80, max_sequences=10_000, refine_iter=20, interval_groups=0)


def shares_of(sim, mechanisms: dict) -> tuple[np.ndarray, np.ndarray, list]:
    truth = pd.DataFrame(sim.truth["units"])
    data = build_funnel_data(sim.touchpoints, sim.spend, FIT.max_sequences, 0)
    params = fit_engine(data, replace(FIT, **mechanisms)).params
    order = [data.units.index((c, k)) for c, k in zip(truth.channel, truth.campaign_type, strict=True)]
    return unit_effects(params, data.spend)[order], truth["effect"].to_numpy(), list(truth["role"])


@pytest.mark.slow
def test_brand_capture_world_full_engine_against_the_previous_one():
    sim = simulate(SimConfig(world="brand_trap", pool=40_000, seed=1), optimum=False)
    full, true, roles = shares_of(sim, {})
    plain, _, _ = shares_of(sim, PLAIN)
    brand = [i for i, r in enumerate(roles) if r == "brand"]
    tv_full, tv_plain = total_variation(shares(full), shares(true)), total_variation(shares(plain), shares(true))
    assert tv_full < 0.5 * tv_plain, (tv_full, tv_plain)
    assert abs(shares(full)[brand].sum() - shares(true)[brand].sum()) < 0.03
    assert shares(plain)[brand].sum() > 5 * shares(true)[brand].sum()  # the previous engine funds the interceptor


@pytest.mark.slow
def test_harmful_world_gets_a_negative_effect_the_previous_engine_cannot_give():
    sim = simulate(SimConfig(harmful=True, capture=False, pool=40_000, seed=1), optimum=False)
    full, true, _ = shares_of(sim, {})
    plain, _, _ = shares_of(sim, PLAIN)
    harmful = np.flatnonzero(true < 0)
    assert harmful.size == 1
    assert full[harmful[0]] < 0 and plain[harmful[0]] >= 0
