import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from journeynet.errors import InfeasibleError, JourneynetError
from journeynet.planning.budget import (
    AllocationResult,
    BudgetProblem,
    OptimizationError,
    allocate_budget,
    evaluate_allocation,
    extrapolation_caps,
    project,
    scaled_current,
)
from journeynet.planning.response import HillCurve

G, M, B = "google_ads", "meta_ads", "microsoft_ads"


def cents(x: float) -> int:
    return round(x * 100)


def check_plan(problem: BudgetProblem, res: AllocationResult) -> None:
    """Every constraint to the cent."""
    alloc = res.allocation
    assert sum(cents(v) for v in alloc.values()) == cents(problem.total)
    assert all(abs(v * 100 - round(v * 100)) < 1e-6 for v in alloc.values())
    _, _, viol = evaluate_allocation(problem, alloc)
    assert viol == []


def solve_slsqp(problem: BudgetProblem) -> tuple[np.ndarray, float]:
    """Reference optimum by SLSQP on the budget-share scale (x / total), with exact gradients."""
    b, H, T = problem.box, problem.horizon_days, problem.total
    beta, k, a = problem.params()

    def neg(u):
        r = (np.maximum(u * T, 1e-12) / H / k) ** a
        return -(H * beta * r / (1 + r)).sum() / (H * beta.sum())

    def jac(u):
        s = np.maximum(u * T, 1e-12) / H
        r = (s / k) ** a
        return -(beta * a * r / (s * (1 + r) ** 2)) * T / (H * beta.sum())

    cons = [{"type": "eq", "fun": lambda u: u.sum() - 1.0, "jac": lambda u: np.ones_like(u)}]
    for c in range(len(b.channels)):
        m = b.ch == c
        cons.append({"type": "ineq", "fun": lambda u, m=m, c=c: u[m].sum() - b.ch_lo[c] / T,
                     "jac": lambda u, m=m: m.astype(float)})
        cons.append({"type": "ineq", "fun": lambda u, m=m, c=c: b.ch_hi[c] / T - u[m].sum(),
                     "jac": lambda u, m=m: -m.astype(float)})
    best = None
    for x0 in (np.full(len(b.lo), 1.0 / len(b.lo)), (b.lo + b.hi) / 2 / T):
        r = minimize(neg, x0, jac=jac, method="SLSQP",
                     bounds=list(zip(b.lo / T, b.hi / T, strict=True)),
                     constraints=cons, options={"ftol": 1e-15, "maxiter": 2000})
        if best is None or r.fun < best.fun:
            best = r
    return best.x * T, -best.fun * H * beta.sum()


def test_identical_campaigns_split_equally():
    curves = {(G, t): HillCurve(50.0, 1000.0, 0.8) for t in ("search", "shopping", "pmax")}
    res = allocate_budget(BudgetProblem(curves, total=90_000.0, min_channel_share=0.0))
    assert res.success
    assert all(v == pytest.approx(30_000.0, abs=0.01) for v in res.allocation.values())


def test_worthless_channel_sits_at_its_floor():
    curves = {(G, "search"): HillCurve(80.0, 2000.0, 0.9), (M, ""): HillCurve(1e-6, 2000.0, 0.9)}
    p = BudgetProblem(curves, total=100_000.0)
    res = allocate_budget(p)
    assert res.allocation[(M, "")] == pytest.approx(10_000.0, abs=0.01)
    check_plan(p, res)


def test_zero_slope_curve_gets_only_its_floor():
    curves = {(G, "search"): HillCurve(80.0, 2000.0, 0.9), (G, "shopping"): HillCurve(0.0, 1.0, 1.0),
              (M, ""): HillCurve(40.0, 2000.0, 0.9)}
    p = BudgetProblem(curves, total=100_000.0)
    res = allocate_budget(p)
    assert res.allocation[(G, "shopping")] == pytest.approx(500.0, abs=0.01)


def test_locked_campaign_keeps_its_amount():
    curves = {(G, "search"): HillCurve(80.0, 2000.0, 0.9), (G, "shopping"): HillCurve(5.0, 900.0, 0.7),
              (M, ""): HillCurve(40.0, 2000.0, 0.9)}
    p = BudgetProblem(curves, total=100_000.0, bounds={"google_ads/shopping": (12_345.67, 12_345.67)})
    res = allocate_budget(p)
    assert res.allocation[(G, "shopping")] == 12_345.67
    check_plan(p, res)


def test_locked_channel_and_max_change():
    curves = {(G, "search"): HillCurve(80.0, 2000.0, 0.9), (G, "shopping"): HillCurve(30.0, 900.0, 0.7),
              (M, ""): HillCurve(40.0, 2000.0, 0.9), (B, "search"): HillCurve(10.0, 300.0, 0.6)}
    cur = {(G, "search"): 40_000.0, (G, "shopping"): 20_000.0, (M, ""): 25_000.0,
           (B, "search"): 15_000.0}
    p = BudgetProblem(curves, total=100_000.0, bounds={"meta_ads": (25_000.0, 25_000.0)},
                      current=cur, max_change=0.3)
    res = allocate_budget(p)
    assert res.allocation[(M, "")] == 25_000.0
    check_plan(p, res)
    base, _, viol = evaluate_allocation(p, scaled_current(p))
    assert viol == [] and res.expected_conversions >= base - 1e-9


def test_equal_marginal_return_inside_bounds():
    rng = np.random.default_rng(3)
    curves = {(G if i < 3 else M, f"t{i}"): HillCurve(rng.uniform(20, 90), rng.uniform(500, 3000),
                                                     rng.uniform(0.5, 0.95)) for i in range(6)}
    p = BudgetProblem(curves, total=150_000.0, min_channel_share=0.0)
    res = allocate_budget(p)
    b = p.box
    inner = [u for i, u in enumerate(p.units)
             if b.lo[i] + 1 < res.allocation[u] < b.hi[i] - 1]
    assert len(inner) >= 2
    marg = [curves[u].derivative(res.allocation[u] / p.horizon_days) for u in inner]
    assert max(marg) == pytest.approx(min(marg), rel=1e-5)


@pytest.mark.parametrize("seed", range(5), ids=[f"seed{s}" for s in range(5)])
def test_agrees_with_slsqp_on_small_concave_problems(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 7))
    curves = {((G, M, B)[i % 3], f"t{i}"): HillCurve(rng.uniform(5, 100), rng.uniform(200, 4000),
                                                   rng.uniform(0.4, 1.0)) for i in range(n)}
    p = BudgetProblem(curves, total=float(rng.uniform(2e4, 3e5)))
    res = allocate_budget(p)
    x_ref, f_ref = solve_slsqp(p)
    prm = p.params()
    r = (res_x := np.array([res.allocation[u] for u in p.units])) / p.horizon_days / prm[1]
    f_ours = float((p.horizon_days * prm[0] * r ** prm[2] / (1 + r ** prm[2])).sum())
    assert res_x.sum() == pytest.approx(p.total)
    assert f_ours >= f_ref * (1 - 1e-6)
    assert abs(f_ours - f_ref) <= 1e-6 * f_ref + 1e-9 * p.total  # cent rounding


@pytest.mark.parametrize("seed", range(6), ids=[f"seed{s}" for s in range(6)])
def test_projection_is_exact(seed):
    rng = np.random.default_rng(seed)
    n = 7
    curves = {((G, M, B)[i % 3], f"t{i}"): HillCurve(1.0, 1.0, 1.0) for i in range(n)}
    p = BudgetProblem(curves, total=1000.0, min_channel_share=0.2, min_campaign_share=0.02,
                      bounds={"google_ads/t0": (50.0, 120.0), "meta_ads": (0.0, 260.0)})
    b = p.box
    y = rng.normal(140, 200, n)
    w = rng.uniform(0.2, 5.0, n) if seed % 2 else np.ones(n)
    x = project(y, b, p.total, w)
    cons = [{"type": "eq", "fun": lambda v: v.sum() - p.total}]
    for c in range(len(b.channels)):
        m = b.ch == c
        cons += [{"type": "ineq", "fun": lambda v, m=m, c=c: v[m].sum() - b.ch_lo[c]},
                 {"type": "ineq", "fun": lambda v, m=m, c=c: b.ch_hi[c] - v[m].sum()}]
    ref = minimize(lambda v: ((v - y) ** 2 / w).sum(), np.clip(y, b.lo, b.hi), method="SLSQP",
                   jac=lambda v: 2 * (v - y) / w, bounds=list(zip(b.lo, b.hi, strict=True)),
                   constraints=cons, options={"ftol": 1e-15, "maxiter": 500})
    assert np.allclose(x, ref.x, atol=1e-5)
    assert x.sum() == pytest.approx(p.total, abs=1e-9)


units_st = st.lists(
    st.tuples(st.floats(0.0, 200.0), st.floats(10.0, 5000.0), st.floats(0.3, 2.5),
              st.sampled_from([G, M, B]), st.floats(0.0, 1.0)),
    min_size=1, max_size=8)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(units=units_st, total=st.floats(0.0, 1e6), share=st.floats(0.0, 0.3),
       lock=st.booleans())
def test_every_plan_meets_every_constraint_to_the_cent(units, total, share, lock):
    total = round(total, 2)
    curves = {(ch, f"t{i}"): HillCurve(b, k, a) for i, (b, k, a, ch, _) in enumerate(units)}
    first = f"{units[0][3]}/t0"
    bounds = {first: (round(units[0][4] * total * 0.2, 2),) * 2} if lock else \
        {first: (0.0, units[0][4] * total)}
    try:
        p = BudgetProblem(curves, total=total, min_channel_share=share,
                          min_campaign_share=share / 10, bounds=bounds)
    except InfeasibleError:
        return
    res = allocate_budget(p)
    check_plan(p, res)


def curves3():
    return {(G, "search"): HillCurve(50.0, 1000.0, 0.8), (M, ""): HillCurve(40.0, 800.0, 0.9),
            (B, "search"): HillCurve(10.0, 500.0, 0.7)}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(min_channel_share=0.4),
         r"^infeasible: budget\.min_channel_share=0\.4 x 3 paid channels = 1\.2 of budget\.total > 1$"),
        (dict(min_campaign_share=0.5, min_channel_share=0.0),
         r"^infeasible: budget\.min_campaign_share=0\.5 x 3 campaigns = 1\.5 of budget\.total > 1$"),
        (dict(bounds={"google_ads/search": (1000.0, 5000.0)}),
         r"^infeasible: campaign caps in channel google_ads sum to 5,000\.00 < its floor "
         r"10,000\.00 \(budget\.min_channel_share\)$"),
        (dict(bounds={"meta_ads": (70_000.0, 70_000.0), "google_ads": (50_000.0, 50_000.0)}),
         r"^infeasible: channel and campaign floors and locked amounts sum to 130,000\.00 > "
         r"budget\.total=100,000\.00$"),
        (dict(bounds={"meta_ads": (0.0, 20_000.0), "google_ads": (0.0, 20_000.0),
                      "microsoft_ads": (0.0, 20_000.0)}),
         r"^infeasible: budget\.bounds caps sum to 60,000\.00 < budget\.total=100,000\.00$"),
        (dict(bounds={"google_ads/search": (100.0, 200.0)}, min_channel_share=0.0,
              min_campaign_share=0.01),
         r"^infeasible: google_ads/search floor 1,000\.00 \(budget\.min_campaign_share\) exceeds "
         r"its cap 200\.00 \(budget\.bounds\['google_ads/search'\]\)$"),
    ],
    ids=["channel_shares", "campaign_shares", "campaign_cap_below_channel_floor",
         "locked_over_total", "caps_under_total", "campaign_floor_above_cap"],
)
def test_infeasible_inputs_give_one_clear_line(kwargs, match):
    with pytest.raises(InfeasibleError, match=match):
        BudgetProblem(curves3(), total=100_000.0, **kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(total=-1.0), r"budget\.total must be"),
     (dict(total=1.0, min_channel_share=1.5), r"budget\.min_channel_share must be in \[0, 1\]"),
     (dict(total=1.0, bounds={"tiktok": (0.0, 1.0)}), r"unknown channel or campaign 'tiktok'"),
     (dict(total=1.0, horizon_days=0), r"budget\.horizon_days"),
     (dict(total=1.0, max_change=0.2), r"max_change needs the current")],
    ids=["negative_total", "share_above_one", "unknown_bound_name", "zero_horizon",
         "max_change_without_current"],
)
def test_bad_fields_raise_value_error_naming_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BudgetProblem(curves3(), **kwargs)


def test_zero_total_budget_gives_zeros():
    res = allocate_budget(BudgetProblem(curves3(), total=0.0))
    assert all(v == 0.0 for v in res.allocation.values()) and res.expected_conversions == 0.0


def test_extrapolation_cap_binds_and_yields_to_floor():
    curves = {(G, "search"): HillCurve(100.0, 5000.0, 1.0), (M, ""): HillCurve(10.0, 5000.0, 1.0)}
    caps = extrapolation_caps({(G, "search"): 100.0, (M, ""): 5.0}, 3.0)
    with pytest.warns(UserWarning, match=r"meta_ads/.*the floor wins"):
        p = BudgetProblem(curves, total=100_000.0, max_daily_spend=caps)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p2 = BudgetProblem(curves, total=10_000.0, max_daily_spend={(G, "search"): 300.0},
                           min_channel_share=0.0, min_campaign_share=0.0)
    assert allocate_budget(p2).allocation[(G, "search")] == pytest.approx(9000.0)
    assert allocate_budget(p).allocation[(M, "")] >= 10_000.0


def test_s_shaped_curves_multistart_beats_single_start():
    # S-curves: a campaign with a high ceiling hidden behind a knee
    curves = {(G, "a"): HillCurve(300.0, 2000.0, 2.5), (G, "b"): HillCurve(20.0, 100.0, 1.0),
              (M, ""): HillCurve(15.0, 150.0, 1.0)}
    p = BudgetProblem(curves, total=60_000.0, min_channel_share=0.05, min_campaign_share=0.005)
    res = allocate_budget(p)
    # brute force over a fine feasible grid (units sorted: google a, google b, meta)
    xa, xb = np.meshgrid(np.linspace(0, p.total, 601), np.linspace(0, p.total, 601))
    xm = p.total - xa - xb
    ok = (xa >= 300) & (xb >= 300) & (xm >= 3000) & (xa + xb >= 3000)
    val = sum(30 * curves[u](x / 30) for u, x in zip(p.units, (xa, xb, xm), strict=True))
    assert res.expected_conversions >= val[ok].max() * 0.9999


def test_failure_is_loud_unless_asked():
    p = BudgetProblem({(G, f"t{i}"): HillCurve(10.0 + i, 1000.0, 0.7) for i in range(5)},
                      total=50_000.0, min_channel_share=0.0)
    with pytest.raises(OptimizationError, match="budget optimizer failed"):
        allocate_budget(p, max_iter=1, tol=1e-30)
    res = allocate_budget(p, max_iter=1, tol=1e-30, raise_on_fail=False)
    assert not res.success and issubclass(OptimizationError, JourneynetError)
    assert math.isclose(sum(res.allocation.values()), 50_000.0)


def test_plan_figures_are_returned_not_shown():
    import pandas as pd

    from journeynet.planning.plots import plot_plan_vs_current, plot_response_curves

    p = BudgetProblem(curves3(), total=100_000.0, current={u: 1.0 for u in curves3()})
    res = allocate_budget(p)
    cur = scaled_current(p)
    fig = plot_response_curves(p.curves, {u: v / 30 for u, v in cur.items()},
                               {u: v / 30 for u, v in res.allocation.items()})
    assert len([ax for ax in fig.axes if ax.has_data()]) == 3
    plan = pd.DataFrame([{"channel": u[0], "campaign_type": u[1], "spend": v,
                          "current_spend": cur[u]} for u, v in res.allocation.items()])
    assert len(plot_plan_vs_current(plan).axes) == 1


# --- objectives, target mode, frontier, binding constraints -------------------------------

def _spec(curves, value=None, **settings):
    from journeynet.planning.objectives import ProblemSpec
    from journeynet.planning.settings import BudgetSettings

    return ProblemSpec(curves, BudgetSettings(**settings), value=value)


@pytest.mark.parametrize("a,target", [(1.0, 300.0), (1.0, 120.0), (0.6, 250.0)], ids=["a1-cpa300", "a1-cpa120",
                                                                                    "a0.6-cpa250"])
def test_target_cpa_finds_the_budget_where_one_more_conversion_costs_x(a, target):
    from scipy.optimize import brentq

    from journeynet.planning.objectives import find_target_total, marginal_return

    curve = HillCurve(10.0, 1000.0, a)
    spec = _spec({(G, "s"): curve, (M, ""): curve, (B, "s"): curve}, min_channel_share=0.0, min_campaign_share=0.0,
                 target_cpa=target)
    # known answer: identical curves split evenly, so the daily spend s per unit solves f'(s) = 1 / X
    s = brentq(lambda x: curve.derivative(x) - 1.0 / target, 1e-6, 1e7)
    total = find_target_total(spec, 1.0 / target)
    assert total == pytest.approx(3 * 30 * s, rel=0.005)
    assert marginal_return(spec, total)["cost_per_conversion"] == pytest.approx(target, rel=0.005)


def test_target_roas_with_revenue_matches_the_equivalent_cpa():
    from journeynet.planning.objectives import find_target_total

    curve = HillCurve(10.0, 1000.0, 1.0)
    curves = {(G, "s"): curve, (M, ""): curve}
    by_cpa = find_target_total(_spec(curves, min_channel_share=0.0, min_campaign_share=0.0, target_cpa=300.0),
                               1 / 300.0)
    spec = _spec(curves, value={u: 90.0 for u in curves}, min_channel_share=0.0, min_campaign_share=0.0,
                 objective="revenue", target_roas=0.3)  # 90 revenue per conversion / 300 per conversion
    assert find_target_total(spec, 0.3) == pytest.approx(by_cpa, rel=0.005)


def test_revenue_objective_gives_more_to_the_unit_worth_more_per_conversion():
    curve = HillCurve(20.0, 1500.0, 0.8)
    curves = {(G, "s"): curve, (G, "t"): curve}
    value = {(G, "s"): 150.0, (G, "t"): 50.0}
    by_conv = _spec(curves, value, total=90_000.0, min_channel_share=0.0).solve()
    by_rev = _spec(curves, value, total=90_000.0, min_channel_share=0.0, objective="revenue").solve()
    assert by_conv.allocation[(G, "s")] == pytest.approx(by_conv.allocation[(G, "t")], abs=0.02)
    assert by_rev.allocation[(G, "s")] > 1.5 * by_rev.allocation[(G, "t")]


def test_revenue_objective_without_revenue_per_conversion_is_one_line():
    with pytest.raises(JourneynetError, match="needs revenue per conversion"):
        _spec({(G, "s"): HillCurve(1.0, 1.0, 1.0)}, objective="revenue")


@pytest.mark.parametrize("seed", range(3), ids=[f"seed{s}" for s in range(3)])
def test_frontier_is_non_decreasing_and_concave_on_concave_curves(seed):
    from journeynet.planning.frontier import budget_frontier

    rng = np.random.default_rng(seed)
    curves = {((G, M, B)[i % 3], f"t{i}"): HillCurve(rng.uniform(5, 60), rng.uniform(300, 3000),
                                                   rng.uniform(0.4, 1.0)) for i in range(6)}
    spec = _spec(curves, total=120_000.0, frontier=tuple(np.linspace(0.25, 2.0, 8)))
    f = budget_frontier(spec)
    t = np.array([p["total"] for p in f])
    y = np.array([p["expected_conversions"] for p in f])
    assert all(p["feasible"] for p in f)
    assert np.all(np.diff(y) > 0)
    slopes = np.diff(y) / np.diff(t)
    assert np.all(np.diff(slopes) <= 1e-9 * slopes.max())
    cost = [p["marginal_cost_per_conversion"] for p in f]
    assert cost == sorted(cost)  # each extra conversion costs more as the budget grows


def test_binding_column_names_each_constraint_in_words():
    from journeynet.planning.plantable import binding_constraints

    curves = {(G, "search"): HillCurve(80.0, 2000.0, 0.9), (G, "shopping"): HillCurve(0.01, 900.0, 0.7),
              (G, "pmax"): HillCurve(60.0, 900.0, 0.7), (M, ""): HillCurve(1.0, 2000.0, 0.9),
              (B, "search"): HillCurve(50.0, 300.0, 0.6)}
    cur = {u: 20_000.0 for u in curves}
    p = BudgetProblem(curves, total=100_000.0, current=cur, max_change=None,
                      bounds={"google_ads/pmax": (7_000.0, 7_000.0), "microsoft_ads/search": (0.0, 12_000.0)})
    res = allocate_budget(p)
    words = binding_constraints(p, res.allocation)
    assert words == {(G, "search"): "", (G, "shopping"): "campaign floor", (G, "pmax"): "lock",
                     (M, ""): "channel floor", (B, "search"): "cap (budget.bounds)"}


def test_price_of_the_channel_floor_is_what_relaxing_it_gains():
    from journeynet.planning.frontier import constraint_prices

    curves = {(G, "search"): HillCurve(80.0, 2000.0, 0.9), (M, ""): HillCurve(1.0, 2000.0, 0.9)}
    spec = _spec(curves, total=100_000.0)
    plan = spec.solve()
    prices = {p["constraint"]: p for p in constraint_prices(spec, 100_000.0, plan.expected_conversions)}
    free = spec.solve(min_channel_share=0.0)
    assert prices["channel floor"]["gain"] == pytest.approx(free.expected_conversions - plan.expected_conversions)
    assert prices["channel floor"]["gain"] > 0
    assert prices["campaign floor"]["gain"] == pytest.approx(0.0, abs=1e-6)
