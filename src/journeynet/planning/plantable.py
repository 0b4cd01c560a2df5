"""The plan table (``plan.csv``): spends, conversions, marginal cost, saturation, binding constraint.

Money is rounded to cents and conversions to two decimals, as a reader sees them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from journeynet.planning.budget import BudgetProblem
from journeynet.planning.response import HillCurve

Unit = tuple[str, str]
_EPS = 0.01  # a cent: within it a bound holds


def unit_name(u: Unit) -> str:
    """``channel/campaign_type``."""
    return f"{u[0]}/{u[1]}"


def _words(src: str, lo: float, hi: float, side: str) -> str:
    if src.startswith("budget.bounds"):
        return "lock" if abs(hi - lo) <= _EPS else f"{'floor' if side == 'lo' else 'cap'} (budget.bounds)"
    return {"budget.min_campaign_share": "campaign floor", "budget.min_channel_share": "channel floor",
            "budget.max_change": "max change", "budget.max_extrapolation": "extrapolation cap"}.get(src, "")


def binding_constraints(problem: BudgetProblem, allocation: Mapping[Unit, float]) -> dict[Unit, str]:
    """The constraint holding each unit where it is, in words ("" when none: free at equal marginal return)."""
    b = problem.box
    x = np.array([allocation[u] for u in b.units])
    csum = np.bincount(b.ch, x, len(b.channels))
    out = {}
    for i, u in enumerate(b.units):
        c = b.ch[i]
        word = ""
        if x[i] <= b.lo[i] + _EPS and b.lo[i] > 0:
            word = _words(b.lo_src[i], b.lo[i], b.hi[i], "lo")
        elif x[i] >= b.hi[i] - _EPS and b.hi_src[i] != "budget.total":
            word = _words(b.hi_src[i], b.lo[i], b.hi[i], "hi")
        elif csum[c] <= b.ch_lo[c] + _EPS and b.ch_lo[c] > 0:
            word = _words(b.ch_lo_src[c], b.ch_lo[c], b.ch_hi[c], "lo")
            word = "channel " + word if word.startswith(("lock", "floor (")) else word
        elif csum[c] >= b.ch_hi[c] - _EPS and b.ch_hi_src[c] != "budget.total":
            word = "channel " + _words(b.ch_hi_src[c], b.ch_lo[c], b.ch_hi[c], "hi")
        out[u] = word
    return out


def check_status(metrics: Mapping[str, Any] | None, units: list[Unit]) -> dict[Unit, str]:
    """Each unit's model-check status from ``metrics.json`` (``ok``, ``fail``; ``n/a`` without checks)."""
    mc = (metrics or {}).get("model_checks")
    if not mc:
        return {u: "n/a" for u in units}
    failing = set(mc.get("failing_units") or [])
    per = mc.get("units") or {}
    out = {}
    for u in units:
        name = unit_name(u)
        status = str((per.get(name) or {}).get("status", "ok" if per or failing else "n/a"))
        out[u] = "fail" if name in failing or status == "fail" else status
    return out


def _cost(curve: HillCurve, daily: float) -> float:
    d = float(curve.derivative(daily))
    return 1.0 / d if d > 0 else math.inf


def plan_table(problem: BudgetProblem, curves: Mapping[Unit, HillCurve], allocation: Mapping[Unit, float],
               current_scaled: Mapping[Unit, float], spend_max: Mapping[Unit, float], *,
               value: Mapping[Unit, float] | None = None, intervals: Mapping[str, list[float]] | None = None,
               checks: Mapping[Unit, str] | None = None) -> pd.DataFrame:
    """One row per paid unit, in the problem's unit order.

    Parameters
    ----------
    problem : BudgetProblem
        The problem solved (its box names the binding constraints).
    curves : Mapping
        Unit -> daily curve in conversions (not weighted by revenue).
    allocation, current_scaled : Mapping
        The plan and the current mix scaled to the same total.
    spend_max : Mapping
        Highest daily spend each curve saw.
    value : Mapping or None
        Revenue per conversion per unit.
    intervals : Mapping or None
        ``channel/campaign_type`` -> [low, high] expected conversions of the plan (90%).
    checks : Mapping or None
        Unit -> model-check status.

    Returns
    -------
    pandas.DataFrame
    """
    h = problem.horizon_days
    binding = binding_constraints(problem, allocation)
    rows = []
    for u in problem.units:
        c, x, cur = curves[u], float(allocation[u]), float(current_scaled[u])
        conv = h * float(c(x / h))
        row = {"channel": u[0], "campaign_type": u[1], "spend": round(x, 2),
               "current_spend": round(float((problem.current or {}).get(u, 0.0)), 2),
               "current_scaled_spend": round(cur, 2), "change": round(x - cur, 2),
               "change_pct": round(100.0 * (x / cur - 1.0), 1) if cur > 0 else None,
               "expected_conversions": round(conv, 2),
               "current_scaled_conversions": round(h * float(c(cur / h)), 2)}
        if intervals:
            lo, hi = intervals.get(unit_name(u), [math.nan, math.nan])
            row.update(expected_conversions_low=round(lo, 2), expected_conversions_high=round(hi, 2))
        if value is not None:
            v = float(value.get(u, 0.0))
            row.update(revenue_per_conversion=round(v, 2), expected_revenue=round(conv * v, 2))
        cost = _cost(c, x / h)
        row.update({
            "marginal_cost_per_conversion": round(cost, 2) if math.isfinite(cost) else None,
            "marginal_conversions_per_1000": round(1000.0 * float(c.derivative(x / h)), 4),
            "share_of_ceiling": round(float(c(x / h)) / c.beta, 4) if c.beta > 0 else None,
            "spend_at_80pct_of_ceiling": round(h * c.spend_at_fraction(0.8), 2),
            "daily_spend": round(x / h, 2), "history_max_daily_spend": round(float(spend_max.get(u, 0.0)), 2),
            "beyond_history": bool(x / h > float(spend_max.get(u, 0.0)) + 0.005),
            "binding": binding[u], "checks": (checks or {}).get(u, "n/a")})
        rows.append(row)
    return pd.DataFrame(rows)
