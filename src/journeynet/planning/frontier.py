"""The budget frontier and the price of the constraints.

The frontier is the optimal plan's expected conversions (and revenue) at totals from
0.25x to 2x the budget, with the marginal cost of a conversion at each: what the next
10,000 buys. The price of a constraint is what the plan would gain with it relaxed
(e.g. the 10% channel floor), at the same budget.

Quickstart
----------
>>> from journeynet.planning.response import HillCurve
>>> from journeynet.planning.settings import BudgetSettings
>>> from journeynet.planning.objectives import ProblemSpec
>>> from journeynet.planning.frontier import budget_frontier
>>> spec = ProblemSpec({("g", "s"): HillCurve(10.0, 1000.0, 0.8)}, BudgetSettings(total=60000.0))
>>> [round(p["multiple"], 2) for p in budget_frontier(spec)][:3]
[0.25, 0.5, 0.75]
"""

from __future__ import annotations

import math
from typing import Any

from journeynet.errors import InfeasibleError, InputError
from journeynet.planning.objectives import ProblemSpec, marginal_return


def budget_frontier(spec: ProblemSpec, multiples: tuple[float, ...] | None = None) -> list[dict[str, Any]]:
    """Optimal expected conversions and revenue at each multiple of the budget.

    Returns
    -------
    list of dict
        One entry per multiple: ``multiple``, ``total``, ``expected_conversions``,
        ``expected_revenue`` (None without revenue per conversion),
        ``marginal_cost_per_conversion``, ``marginal_conversions_per_1000``,
        ``marginal_revenue_per_currency``, ``feasible`` and ``note``.
    """
    out = []
    for m in multiples or spec.settings.frontier:
        total = round(m * spec.settings.total, 2)
        row: dict[str, Any] = {"multiple": m, "total": total}
        try:
            res = spec.solve(total, quiet=True)
        except (InfeasibleError, InputError) as err:
            out.append({**row, "feasible": False, "note": str(err), "expected_conversions": None,
                        "expected_revenue": None, "marginal_cost_per_conversion": None,
                        "marginal_conversions_per_1000": None, "marginal_revenue_per_currency": None})
            continue
        conv = spec.conversions(res.allocation)
        rev = spec.revenue(res.allocation)
        mr = marginal_return(spec, total)
        out.append({**row, "feasible": True, "note": "",
                    "expected_conversions": sum(conv.values()),
                    "expected_revenue": sum(rev.values()) if rev is not None else None,
                    "marginal_cost_per_conversion": _finite(mr["cost_per_conversion"]),
                    "marginal_conversions_per_1000": 1000.0 * mr["conversions_per_currency"],
                    "marginal_revenue_per_currency": _finite(mr["revenue_per_currency"])})
    return out


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _variants(spec: ProblemSpec) -> list[tuple[str, str, dict[str, Any]]]:
    s = spec.settings
    v = []
    if s.min_channel_share > 0:
        v.append(("channel floor", f"budget.min_channel_share={s.min_channel_share:g}", {"min_channel_share": 0.0}))
    if s.min_campaign_share > 0:
        v.append(("campaign floor", f"budget.min_campaign_share={s.min_campaign_share:g}",
                  {"min_campaign_share": 0.0}))
    if s.min_channel_share > 0 and s.min_campaign_share > 0:
        v.append(("both floors", "budget.min_channel_share=0 budget.min_campaign_share=0",
                  {"min_channel_share": 0.0, "min_campaign_share": 0.0}))
    if s.max_change is not None:
        v.append(("max change", f"budget.max_change={s.max_change:g}", {"max_change": None}))
    if s.bounds:
        v.append(("bounds and locks", "budget.bounds", {"bounds": {}}))
    if spec.max_daily_spend:
        v.append(("extrapolation cap", f"budget.max_extrapolation={s.max_extrapolation:g}",
                  {"max_daily_spend": None}))
    return v


def constraint_prices(spec: ProblemSpec, total: float, planned_value: float) -> list[dict[str, Any]]:
    """What the plan would gain, at the same total, with each constraint relaxed.

    Parameters
    ----------
    spec : ProblemSpec
        The plan's curves and settings.
    total : float
        The plan's total.
    planned_value : float
        The plan's objective value (conversions, or revenue).

    Returns
    -------
    list of dict
        ``constraint``, ``setting``, ``relaxed_value`` (objective with it relaxed),
        ``gain`` and ``gain_pct`` of the plan's value; ``note`` where the relaxed
        problem could not be solved.
    """
    out = []
    for name, setting, overrides in _variants(spec):
        try:
            res = spec.solve(total, quiet=True, **overrides)
        except (InfeasibleError, InputError) as err:
            out.append({"constraint": name, "setting": setting, "relaxed_value": None, "gain": None,
                        "gain_pct": None, "note": str(err)})
            continue
        # relaxing never lowers the optimum; a tiny negative gain is cent rounding
        gain = max(res.expected_conversions - planned_value, 0.0)
        out.append({"constraint": name, "setting": setting, "relaxed_value": res.expected_conversions,
                    "gain": gain, "gain_pct": 100.0 * gain / planned_value if planned_value > 0 else None,
                    "note": ""})
    return out
