"""Exact answers of a generated world: interventional effects, response, the best plan.

Every figure comes from propagating the true funnel in expectation
(:func:`journeynet.causal.funnel.expected_conversions`), so it carries no Monte-Carlo noise;
``tests/test_simulate.py`` checks it against re-simulation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from journeynet.causal.funnel import FunnelParams, expected_conversions
from journeynet.causal.interventions import channel_effects, removal_effects, response_points

if TYPE_CHECKING:
    from journeynet.causal.sample import SimConfig

def plan_conversions(params: FunnelParams, daily_spend: np.ndarray, days: int, horizon_days: int = 30) -> float:
    """Expected conversions per ``horizon_days`` with a constant daily spend per unit.

    The world runs ``days`` days from its day-0 state with that spend, and the total is
    expressed per horizon, so plans are compared on the same footing as history.
    """
    spend = np.tile(np.asarray(daily_spend, dtype=float), (days, 1))
    return float(expected_conversions(params, spend).sum() * horizon_days / days)


def true_optimum(params: FunnelParams, days: int, total: float = 200_000.0, horizon_days: int = 30,
                 min_channel_share: float = 0.10, min_campaign_share: float = 0.005) -> dict[str, Any]:
    """The best plan under the default constraints, found on the true (non-separable) world."""
    channels = np.array([c for c, _ in params.units])
    groups = [np.flatnonzero(channels == c) for c in dict.fromkeys(channels)]
    scale = total / horizon_days

    def negative(x: np.ndarray) -> float:
        return -plan_conversions(params, x * scale, days, horizon_days)

    cons = [{"type": "eq", "fun": lambda x: x.sum() - 1.0}]
    cons += [{"type": "ineq", "fun": (lambda x, g=g: x[g].sum() - min_channel_share)} for g in groups]
    bounds = [(min_campaign_share, 1.0)] * params.n_units
    best = None
    for x0 in _starts(params.n_units, groups, min_channel_share, min_campaign_share):
        res = minimize(negative, x0, method="SLSQP", bounds=bounds, constraints=cons,
                       options={"maxiter": 300, "ftol": 1e-10})
        if best is None or res.fun < best.fun:
            best = res
    plan = best.x * total
    return {
        "total": total,
        "horizon_days": horizon_days,
        "min_channel_share": min_channel_share,
        "min_campaign_share": min_campaign_share,
        "expected_conversions": -float(best.fun),
        "allocation": {f"{c}/{k}": float(v) for (c, k), v in zip(params.units, plan, strict=True)},
    }


def _starts(n: int, groups: list[np.ndarray], channel_share: float, campaign_share: float) -> list[np.ndarray]:
    """Feasible starting points: equal split, and equal within channel."""
    equal = np.full(n, 1.0 / n)
    by_channel = np.zeros(n)
    for g in groups:
        by_channel[g] = 1.0 / len(groups) / len(g)
    starts = [equal, by_channel]
    return [np.maximum(s, campaign_share) / np.maximum(s, campaign_share).sum() for s in starts]


def last_touch_credit(touchpoints: pd.DataFrame) -> pd.Series:
    """Conversions credited to each (channel, campaign_type) by last touch (the converting touch)."""
    conv = touchpoints[touchpoints["converted"] == 1]
    return conv.groupby(["channel", "campaign_type"]).size().astype(float)


def ground_truth(params: FunnelParams, spend: np.ndarray, touchpoints: pd.DataFrame,
                 cfg: SimConfig) -> dict[str, Any]:
    """Everything a test or benchmark compares against, as a JSON-ready dict."""
    from journeynet.causal.sample import UNITS, config_dict

    effects = removal_effects(params, spend)
    positive = effects["effect"].clip(lower=0.0)
    effects["share"] = positive / positive.sum()
    effects["role"] = [UNITS[(c, k)][0] for c, k in zip(effects["channel"], effects["campaign_type"], strict=True)]
    lt = last_touch_credit(touchpoints)
    observed = float(touchpoints["converted"].sum())
    return {
        "config": config_dict(cfg),
        "params": params.to_dict(),
        "spend": spend.tolist(),
        "observed_conversions": observed,
        "expected_conversions": float(expected_conversions(params, spend).sum()),
        "units": effects.to_dict(orient="records"),
        "channel_effects": channel_effects(params, spend),
        "last_touch": {f"{c}/{k}" if k else c: float(v) for (c, k), v in lt.items()},
        "response_points": response_points(params, spend).to_dict(orient="records"),
        "current_plan_conversions": plan_conversions(params, spend.mean(axis=0), spend.shape[0]),
        "optimum": true_optimum(params, spend.shape[0]),
    }
