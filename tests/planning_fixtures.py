"""Hand-written train run dirs for the planner's tests: known curves, no training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from conftest import ROOT

# (channel, campaign_type) -> (beta, k, a, mean daily spend, revenue per conversion)
UNITS = {
    ("google_ads", "search"): (40.0, 1500.0, 0.8, 2500.0, 120.0),
    ("google_ads", "shopping"): (25.0, 900.0, 0.9, 1200.0, 80.0),
    ("meta_ads", "social"): (18.0, 700.0, 0.7, 600.0, 60.0),
    ("microsoft_ads", "search"): (9.0, 400.0, 0.85, 300.0, 100.0),
}


def write_run(path: Path, units: dict | None = None, *, draws: int = 0, checks: bool = False,
              failing: tuple[str, ...] = (), days: int = 60, seed: int = 0) -> Path:
    """Write a train run dir with the files optimize.py reads; curves are exactly ``units``."""
    units = units or UNITS
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    dates = pd.date_range("2024-01-01", periods=days, freq="D")
    daily, curves, att = [], [], []
    for (ch, ct), (beta, k, a, mean, rev) in units.items():
        s = np.round(mean * rng.uniform(0.6, 1.4, days), 2)
        daily.append(pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "channel": ch, "campaign_type": ct,
                                   "spend": s, "exposure": 1.0, "attributed": 1.0}))
        curves.append({"channel": ch, "campaign_type": ct, "beta": beta, "k": k, "a": a, "method": "rollouts",
                       "fit_r2": 0.99, "n_days": days, "spend_min": float(s.min()), "spend_max": float(s.max()),
                       "spend_mean": float(s.mean()), "spend_at_80pct": k * 4 ** (1 / a),
                       "revenue_per_conversion": rev})
        credit = days * beta * (mean / k) ** a / (1 + (mean / k) ** a)
        att.append({"channel": ch, "campaign_type": ct, "paid": True, "attributed_conversions": credit,
                    "removal_effect": credit, "removal_effect_low": 0.8 * credit, "removal_effect_high": 1.2 * credit,
                    "opener_score": 0.3, "closer_score": 0.7, "last_touch": 2 * credit, "first_touch": credit,
                    "linear": credit, "markov": credit, "note": ""})
    att.append({"channel": "direct", "campaign_type": "", "paid": False, "attributed_conversions": 0.0,
                "removal_effect": 0.0, "last_touch": 50.0, "first_touch": 40.0, "linear": 45.0, "markov": 44.0,
                "note": "unpaid: an outcome of intent in the funnel model, not a cause"})
    pd.concat(daily).to_csv(path / "daily_units.csv", index=False)
    pd.DataFrame(curves).to_csv(path / "response_curves.csv", index=False)
    pd.DataFrame(att).to_csv(path / "attribution.csv", index=False)
    metrics: dict = {"test_auc": 0.8}
    if draws:
        rows = []
        for d in range(draws):
            for (ch, ct), (beta, k, a, _, _) in units.items():
                rows.append({"draw": d, "channel": ch, "campaign_type": ct, "beta": beta * rng.lognormal(0, 0.2),
                             "k": k * rng.lognormal(0, 0.1), "a": a})
        pd.DataFrame(rows).to_csv(path / "response_draws.csv", index=False)
    if checks:
        names = [f"{ch}/{ct}" for ch, ct in units]
        metrics["model_checks"] = {"passed": not failing, "failing_units": list(failing),
                                   "backtest": {"holdout_wape": 0.12, "coverage_90": 0.88},
                                   "units": {n: {"status": "fail" if n in failing else "ok"} for n in names}}
        rows = []
        for series in ["total", *names]:
            obs = rng.poisson(20 if series == "total" else 5, days).astype(float)
            period = np.where(np.arange(days) % 20 < 3, "dark", "normal")
            rows.append(pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "series": series, "observed": obs,
                                      "predicted": obs.mean(), "predicted_low": obs.mean() * 0.7,
                                      "predicted_high": obs.mean() * 1.3, "period": period}))
        held = rows[0].iloc[-10:].assign(period="holdout")  # the backtest repeats the total's last days
        pd.concat([*rows, held]).to_csv(path / "model_checks.csv", index=False)
    (path / "metrics.json").write_text(json.dumps(metrics))
    return path


def optimize_cfg(run_dir: Path, out_dir: Path, *overrides: str):
    """The composed optimize.py config (as the entry point builds it) with its output dir set."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="optimize", overrides=[f"run_dir={run_dir}", *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(out_dir)
    return cfg
