"""What the plan maximizes (conversions or revenue) and the target-return mode.

Revenue is conversions valued at each unit's revenue per conversion, so a revenue plan
is the conversion optimizer run on curves scaled by that value. Target mode looks for
the total budget at which the optimal plan's marginal return (extra conversions, or
revenue, per extra unit of budget) falls to the target, under the same constraints.

Quickstart
----------
>>> from journeynet.planning.response import HillCurve
>>> from journeynet.planning.settings import BudgetSettings
>>> from journeynet.planning.objectives import ProblemSpec, find_target_total
>>> spec = ProblemSpec({("g", "s"): HillCurve(10.0, 1000.0, 1.0), ("m", ""): HillCurve(10.0, 1000.0, 1.0)},
...                    BudgetSettings(min_channel_share=0.0, min_campaign_share=0.0))
>>> total = find_target_total(spec, 1 / 300.0)  # marginal cost per conversion 300
>>> round(total / 2 / 30)  # each unit: 10 * 1000 / (s + 1000)**2 = 1/300 at s = sqrt(3e6) - 1000
732
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq

from journeynet.errors import InfeasibleError, InputError
from journeynet.planning.budget import AllocationResult, BudgetProblem, allocate_budget
from journeynet.planning.response import HillCurve
from journeynet.planning.settings import BudgetSettings

log = logging.getLogger(__name__)
Unit = tuple[str, str]


@dataclass(frozen=True)
class ProblemSpec:
    """Curves, settings and history that build a :class:`BudgetProblem` at any total.

    Parameters
    ----------
    curves : Mapping
        Unit -> daily Hill curve in conversions.
    settings : BudgetSettings
        Constraints, objective and total.
    current : Mapping or None
        Current spend per unit over the horizon.
    max_daily_spend : Mapping or None
        Extrapolation cap per unit (daily).
    value : Mapping or None
        Revenue per conversion per unit; used when the objective is revenue.
    """

    curves: Mapping[Unit, HillCurve]
    settings: BudgetSettings
    current: Mapping[Unit, float] | None = None
    max_daily_spend: Mapping[Unit, float] | None = None
    value: Mapping[Unit, float] | None = None
    weighted: dict[Unit, HillCurve] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.settings.objective == "revenue" and self.value is None:
            raise InputError("budget.objective=revenue needs revenue per conversion per unit, which this run "
                             "lacks (response_curves.csv has no revenue_per_conversion column): retrain with "
                             "touchpoints that carry revenue")
        w = self.weights()
        object.__setattr__(self, "weighted", {u: HillCurve(c.beta * w[u], c.k, c.a) for u, c in self.curves.items()})

    def weights(self) -> dict[Unit, float]:
        """Value of one conversion per unit in the objective (1 for conversions)."""
        if self.settings.objective != "revenue":
            return {u: 1.0 for u in self.curves}
        return {u: float((self.value or {}).get(u, 0.0)) for u in self.curves}

    def problem(self, total: float | None = None, *, weighted: bool = True, **overrides: object) -> BudgetProblem:
        """The problem at ``total`` (default: the settings'), with settings overridden by name."""
        s = self.settings
        bounds = overrides.get("bounds", s.bounds)
        max_change = overrides.get("max_change", s.max_change)
        caps = overrides.get("max_daily_spend", self.max_daily_spend)
        try:
            return BudgetProblem(curves=self.weighted if weighted else self.curves,
                                 total=float(s.total if total is None else total), horizon_days=s.horizon_days,
                                 min_channel_share=float(overrides.get("min_channel_share", s.min_channel_share)),
                                 min_campaign_share=float(overrides.get("min_campaign_share", s.min_campaign_share)),
                                 bounds=bounds or None, current=self.current, max_change=max_change,
                                 max_daily_spend=caps)
        except ValueError as err:  # the problem's own checks name the setting
            raise InputError(str(err)) from None

    def solve(self, total: float | None = None, quiet: bool = False, **overrides: object) -> AllocationResult:
        """The optimal plan (in the objective's units) at ``total``."""
        if not quiet:
            return allocate_budget(self.problem(total, **overrides))
        with warnings.catch_warnings():  # the plan itself already warned about soft caps
            warnings.simplefilter("ignore")
            return allocate_budget(self.problem(total, **overrides))

    def conversions(self, allocation: Mapping[Unit, float]) -> dict[Unit, float]:
        """Expected conversions per unit over the horizon at ``allocation``."""
        h = self.settings.horizon_days
        return {u: h * float(c(allocation.get(u, 0.0) / h)) for u, c in self.curves.items()}

    def revenue(self, allocation: Mapping[Unit, float]) -> dict[Unit, float] | None:
        """Expected revenue per unit (None without revenue per conversion)."""
        if self.value is None:
            return None
        conv = self.conversions(allocation)
        return {u: conv[u] * float(self.value.get(u, 0.0)) for u in conv}


def marginal_return(spec: ProblemSpec, total: float, rel: float = 0.005, **overrides: object) -> dict[str, float]:
    """Extra conversions (and revenue) per extra unit of budget for the optimal plan at ``total``.

    A central difference of the optimal value over +-``rel`` of the total: it is the
    multiplier of the budget constraint whatever other constraint binds (a unit-level
    derivative is not, where floors or caps hold units still).
    """
    h = max(rel * total, 1.0)
    lo = max(total - h, 0.0)
    ends = []
    for t in (lo, total + h):
        try:
            res = spec.solve(t, quiet=True, **overrides)
        except InfeasibleError:
            res = spec.solve(total, quiet=True, **overrides)
            t = total
        conv = spec.conversions(res.allocation)
        rev = spec.revenue(res.allocation)
        ends.append((t, sum(conv.values()), sum(rev.values()) if rev is not None else math.nan))
    dt = ends[1][0] - ends[0][0]
    dconv = (ends[1][1] - ends[0][1]) / dt
    drev = (ends[1][2] - ends[0][2]) / dt
    return {"conversions_per_currency": dconv, "revenue_per_currency": drev,
            "cost_per_conversion": 1.0 / dconv if dconv > 0 else math.inf}


def _objective_slope(spec: ProblemSpec, total: float) -> float:
    m = marginal_return(spec, total)
    return m["revenue_per_currency"] if spec.settings.objective == "revenue" else m["conversions_per_currency"]


def find_target_total(spec: ProblemSpec, target: float, tol: float = 1e-4) -> float:
    """The total budget at which the optimal plan's marginal return equals ``target``.

    Parameters
    ----------
    spec : ProblemSpec
        Curves and constraints (the settings' total is the starting guess).
    target : float
        Conversions per currency unit (``1 / target_cpa``) or revenue per unit (``target_roas``).
    tol : float
        Relative tolerance on the total.

    Returns
    -------
    float
        The total, in cents.

    Raises
    ------
    InputError
        The marginal return never reaches the target between the smallest feasible
        budget and 1,000 times the given one (the message gives the range reached).
    """
    if spec.settings.target_cpa is not None:
        what, shown = "budget.target_cpa", lambda v: f"{1 / v:,.2f} per conversion" if v > 0 else "unbounded"
    else:
        what, shown = "budget.target_roas", lambda v: f"{v:,.4g} revenue per unit"
    start = max(spec.settings.total, 1.0)
    g = lambda t: math.log(max(_objective_slope(spec, t), 1e-300)) - math.log(target)  # noqa: E731
    lo, hi = start, start
    g_lo = g_hi = g(start)
    for _ in range(40):  # marginal return falls with budget on concave curves: widen until it brackets
        if g_lo >= 0 and g_hi <= 0:
            break
        if g_lo < 0:
            nxt = lo / 2
            try:
                g_nxt = g(nxt)
            except InfeasibleError:
                break
            lo, g_lo = nxt, g_nxt
        if g_hi > 0:
            if hi > 1000 * start:
                break
            hi, g_hi = hi * 2, g(hi * 2)
    if not (g_lo >= 0 >= g_hi):
        raise InputError(f"{what} is not reached: the plan's marginal return runs from "
                         f"{shown(math.exp(g_lo) * target)} at a budget of {lo:,.2f} to "
                         f"{shown(math.exp(g_hi) * target)} at {hi:,.2f}")
    if g_lo == 0 or lo == hi:
        return round(lo, 2)
    found = brentq(lambda x: g(math.exp(x)), math.log(lo), math.log(hi), xtol=tol)
    return round(float(np.exp(found)), 2)
