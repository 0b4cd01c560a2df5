"""Exact answers of a generated world: removal effects, roles, captured sessions, response, the best plan.

Every figure is a difference of expected conversions of the whole pool propagated
exactly (:func:`journeynet.synthetic.propagate.propagate`), so it carries no Monte-Carlo
noise (``effect_se`` is 0) and is smooth in spend.

Quickstart::

    from journeynet.synthetic.simulate import SimConfig, simulate
    from journeynet.synthetic.truth import plan_conversions
    sim = simulate(SimConfig(pool=5_000, days=56))
    plan_conversions(sim.truth, sim.spend_matrix.mean(axis=0))  # per 30 days
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from journeynet.synthetic.propagate import propagate
from journeynet.synthetic.variants import Variant, variant_outcomes
from journeynet.synthetic.world import World

SPEND_MULTIPLES = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0)


def as_world(truth_or_world: dict[str, Any] | World) -> World:
    """The world of a truth dict (or the world itself)."""
    if isinstance(truth_or_world, World):
        return truth_or_world
    return World.from_dict(truth_or_world["world"])


def removal_effects(world: World, spend: np.ndarray) -> pd.DataFrame:
    """Per paid unit: conversions lost when it is switched off, its opener/closer split and captured sessions.

    ``closer_effect_true`` is the drop when the unit's touches can no longer convert
    directly but still move intent; ``opener_effect_true`` the rest. A harmful unit's
    effect is negative, never clipped.
    """
    n_u = world.n_units
    factual_run = propagate(world, spend)
    factual = factual_run.conversions.sum()
    variants = [Variant(u, 0.0) for u in range(n_u)] + [Variant(u, 1.0, convert_off=True) for u in range(n_u)]
    total = variant_outcomes(world, spend, variants).conversions.sum(axis=1)
    captured = (factual_run.baseline[0][:, None] * world.capture_prob(spend)).sum(axis=0)
    rows = []
    for u, (channel, campaign) in enumerate(world.units):
        effect, closer = factual - total[u], factual - total[n_u + u]
        rows.append((channel, campaign, world.roles[u], effect, 0.0, effect - closer, closer, captured[u]))
    df = pd.DataFrame(rows, columns=["channel", "campaign_type", "role", "effect", "effect_se",
                                     "opener_effect_true", "closer_effect_true", "captured_conversions"])
    positive = df["effect"].clip(lower=0.0)
    df.insert(5, "share", df["effect"] / positive.sum() if positive.sum() > 0 else 0.0)
    return df


def channel_effects(world: World, spend: np.ndarray) -> dict[str, float]:
    """Conversions lost when every unit of a paid channel is switched off together."""
    channels = list(dict.fromkeys(c for c, _ in world.units))
    plans = np.repeat(spend[None], len(channels) + 1, axis=0)
    for i, channel in enumerate(channels):
        plans[i + 1][:, [c == channel for c, _ in world.units]] = 0.0
    total = propagate(world, plans).conversions.sum(axis=1)
    return {c: float(total[0] - total[i + 1]) for i, c in enumerate(channels)}


def response_points(world: World, spend: np.ndarray, multiples: tuple[float, ...] = SPEND_MULTIPLES) -> pd.DataFrame:
    """Mean incremental conversions per day of each unit with its history scaled, the others at history.

    ``expected_conversions`` is relative to the unit switched off (multiple 0), so it is
    0 at multiple 0 and the unit's removal effect per day at multiple 1.
    """
    days = spend.shape[0]
    scales = (0.0, *multiples)
    variants = [Variant(u, m) for u in range(world.n_units) for m in scales]
    total = variant_outcomes(world, spend, variants).conversions.sum(axis=1).reshape(world.n_units, len(scales))
    rows = []
    for u, (channel, campaign) in enumerate(world.units):
        for m, tot in zip(multiples, total[u, 1:], strict=True):
            rows.append((channel, campaign, m, float(spend[:, u].mean() * m), float((tot - total[u, 0]) / days)))
    return pd.DataFrame(rows, columns=["channel", "campaign_type", "spend_multiple", "daily_spend",
                                       "expected_conversions"])


def plan_conversions(truth_or_world: dict[str, Any] | World, daily_spend: np.ndarray,
                     horizon_days: int = 30) -> float:
    """Expected conversions per ``horizon_days`` of a constant daily spend per unit.

    The world runs its whole window from its day-0 state with that spend (its demand
    curve included), and the total is expressed per horizon, so plans are compared on
    the same footing as history.
    """
    world = as_world(truth_or_world)
    plan = np.asarray(daily_spend, dtype=float).reshape(1, 1, world.n_units)
    return float(propagate(world, plan).conversions.sum() * horizon_days / world.days)


def true_optimum(world: World, total: float = 200_000.0, horizon_days: int = 30, min_channel_share: float = 0.10,
                 min_campaign_share: float = 0.005) -> dict[str, Any]:
    """The best plan under the default constraints, found by SLSQP on the true (non-separable) world."""
    n_u = world.n_units
    channels = np.array([c for c, _ in world.units])
    groups = [np.flatnonzero(channels == c) for c in dict.fromkeys(channels)]
    scale = total / horizon_days
    per = horizon_days / world.days / 1000.0  # thousands of conversions keep SLSQP's steps well scaled
    step = 1e-6

    def value_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        plans = np.repeat(x[None], n_u + 1, axis=0) + np.vstack([np.zeros(n_u), np.eye(n_u) * step])
        conv = propagate(world, plans[:, None, :] * scale).conversions.sum(axis=1) * per
        return -conv[0], -(conv[1:] - conv[0]) / step

    cons = [{"type": "eq", "fun": lambda x: x.sum() - 1.0, "jac": lambda x: np.ones_like(x)}]
    for g in groups:
        mask = np.zeros(n_u)
        mask[g] = 1.0
        cons.append({"type": "ineq", "fun": (lambda x, m=mask: m @ x - min_channel_share),
                     "jac": (lambda x, m=mask: m)})
    best = None
    for x0 in _starts(n_u, groups, min_campaign_share):
        res = minimize(value_and_grad, x0, jac=True, method="SLSQP", bounds=[(min_campaign_share, 1.0)] * n_u,
                       constraints=cons, options={"maxiter": 300, "ftol": 1e-10})
        if best is None or res.fun < best.fun:
            best = res
    plan = np.clip(best.x, min_campaign_share, None)
    plan = plan / plan.sum() * total
    return {
        "total": total,
        "horizon_days": horizon_days,
        "min_channel_share": min_channel_share,
        "min_campaign_share": min_campaign_share,
        "expected_conversions": plan_conversions(world, plan / horizon_days, horizon_days),
        "equal_split_conversions": plan_conversions(world, np.full(n_u, total / n_u / horizon_days), horizon_days),
        "allocation": {f"{c}/{k}": float(v) for (c, k), v in zip(world.units, plan, strict=True)},
        "success": bool(best.success),
    }


def _starts(n: int, groups: list[np.ndarray], campaign_share: float) -> list[np.ndarray]:
    """Feasible starting points: equal split, and equal within channel."""
    equal = np.full(n, 1.0 / n)
    by_channel = np.zeros(n)
    for g in groups:
        by_channel[g] = 1.0 / len(groups) / len(g)
    return [np.maximum(s, campaign_share) / np.maximum(s, campaign_share).sum() for s in (equal, by_channel)]


def last_touch_credit(touchpoints: pd.DataFrame) -> dict[str, float]:
    """Conversions credited to each unit (``channel/campaign``, or the channel when unpaid) by last touch."""
    conv = touchpoints[touchpoints["converted"] == 1]
    counts = conv.groupby(["channel", "campaign_type"]).size().astype(float)
    return {f"{c}/{k}" if k else c: float(v) for (c, k), v in counts.items()}


def ground_truth(world: World, spend: np.ndarray, touchpoints: pd.DataFrame, config: dict[str, Any],
                 optimum: bool = True) -> dict[str, Any]:
    """Everything a test or benchmark compares against, as a JSON-ready dict."""
    units = removal_effects(world, spend)
    out = {
        "config": config,
        "world": world.to_dict(),
        "spend": spend.tolist(),
        "observed_conversions": float(touchpoints["converted"].sum()),
        "expected_conversions": float(propagate(world, spend).conversions.sum()),
        "units": units.to_dict(orient="records"),
        "channel_effects": channel_effects(world, spend),
        "last_touch": last_touch_credit(touchpoints),
        "demand": world.demand.tolist(),
    }
    if optimum:
        out["response_points"] = response_points(world, spend).to_dict(orient="records")
        out["current_plan_conversions"] = plan_conversions(world, spend.mean(axis=0))
        out["optimum"] = true_optimum(world)
    return out
