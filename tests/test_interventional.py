"""train.py's interventional step: intervals, model checks, progress lines and the fit cache."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from journeynet.attribution.interventional import interventional
from journeynet.causal.fit import FunnelFitConfig
from journeynet.causal.sample import SimConfig, simulate

SMALL = {"max_iter": 6, "max_sequences": 1500, "refine_iter": 3, "interval_groups": 3, "interval_iter": 2,
         "interval_draws": 6, "holdout_weeks": 2, "log_every": 2}


@pytest.fixture(scope="module")
def world():
    sim = simulate(SimConfig(pool=3000, days=42, seed=2))
    return sim.touchpoints, sim.spend


def run(world, tmp_path, refit=False, **kw):
    tp, spend = world
    cfg = FunnelFitConfig(**{**SMALL, **kw})
    return interventional(cfg, tp, spend, (0.0, 1.0, 2.0), str(tmp_path), refit, response_draws=2)


def test_effects_come_with_intervals_checks_and_draw_curves(world, tmp_path):
    table, extras = run(world, tmp_path)
    assert {"removal_effect_low", "removal_effect_high"} <= set(table.columns)
    assert (table["removal_effect_low"] <= table["removal_effect"] + 1e-9).all()
    assert (table["removal_effect"] <= table["removal_effect_high"] + 1e-9).all()
    checks = extras["checks"]
    assert set(checks) >= {"passed", "failing_units", "units", "backtest"}
    assert checks["backtest"]["weeks"] == 2
    assert set(extras["checks_table"]["period"]) >= {"normal", "dark", "holdout"}
    assert sorted(extras["draw_points"]["draw"].unique()) == [0, 1]


def test_the_fit_logs_its_loss_and_is_reused_from_the_cache(world, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="journeynet"):
        first, _ = run(world, tmp_path)
    assert any("funnel fit: evaluation 2, loss" in r.message for r in caplog.records)
    # the refits' wait is announced before it starts, with what it is doing
    messages = [r.getMessage() for r in caplog.records]
    assert "funnel fit 3/3: 3 customer groups refitted for intervals (2 iterations each, 1 process)" in messages
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="journeynet"):
        second, _ = run(world, tmp_path)
    assert any("reusing the cached fit" in r.message for r in caplog.records)
    np.testing.assert_allclose(first["removal_effect"], second["removal_effect"])
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="journeynet"):
        run(world, tmp_path, refit=True)
    assert not any("reusing" in r.message for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="journeynet"):
        run(world, tmp_path, prior_weight=2.0)  # other settings: another fingerprint
    assert not any("reusing" in r.message for r in caplog.records)


def test_a_calibrated_fit_reuses_the_backtest_and_equals_a_fit_from_scratch(world, tmp_path):
    """The backtest fit is penalty-free, so the calibrated fit borrows it (also through the cache) and
    ends where a calibrated fit of its own would."""
    import json

    from journeynet.attribution.interventional import cached_engine
    from journeynet.causal.calibration import Experiment, ExperimentPenalty
    from journeynet.causal.data import build_funnel_data
    from journeynet.causal.engine import fit_engine

    tp, spend = world
    cfg = FunnelFitConfig(**SMALL)
    data = build_funnel_data(tp, spend, cfg.max_sequences, cfg.seed)
    penalty = ExperimentPenalty([Experiment("t", "", "", (0,), 10, 23, 3, 2.0, 1.0)])
    alone = fit_engine(data, cfg, penalty=penalty)
    cached_engine(data, cfg, tp, spend, str(tmp_path), False)  # uncalibrated, written to the cache
    uncalibrated = cached_engine(data, cfg, tp, spend, str(tmp_path), False)  # read back: no net, its state
    assert uncalibrated.diagnostics["cached"] == 1.0
    borrowed = fit_engine(data, cfg, penalty=penalty, backtest_of=uncalibrated)
    assert json.dumps(borrowed.params.to_dict()) == json.dumps(alone.params.to_dict())
    assert [d.to_dict() for d in borrowed.draws] == [d.to_dict() for d in alone.draws]
    assert borrowed.diagnostics["evaluations"] == alone.diagnostics["full_fit_evaluations"]
