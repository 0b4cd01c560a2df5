"""Plan quality against the generator's true optimum, per response method and seed.

For each seed: generate a world, fit the funnel, fit the curves three ways
(exposure, rollouts, daily), plan the default budget problem, and score every plan
in the TRUE world (journeynet.causal.sample_truth.plan_conversions). Baselines scored the same
way: the current mix scaled to the budget, and spend proportional to last-touch ROAS.

    PYTHONPATH=src python bench/bench_plan.py --seeds 0 1 2 3 4 --pool 60000
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd
import torch

from journeynet.attribution.tables import funnel_table
from journeynet.causal.data import build_funnel_data
from journeynet.causal.fit import FunnelFitConfig, fit_funnel
from journeynet.causal.interventions import response_points
from journeynet.causal.sample import SimConfig, simulate
from journeynet.causal.sample_truth import plan_conversions
from journeynet.net_free import daily_units
from journeynet.planning.budget import BudgetProblem, allocate_budget, extrapolation_caps, project
from journeynet.planning.response import fit_curves

TOTAL, HORIZON = 200_000.0, 30


def score(params, units, alloc: dict, days: int) -> float:
    daily = np.array([alloc[u] / HORIZON for u in units])
    return plan_conversions(params, daily, days, HORIZON)


def one_seed(seed: int, pool: int, max_iter: int) -> dict:
    sim = simulate(SimConfig(pool=pool, seed=seed))
    t0 = time.perf_counter()
    data = build_funnel_data(sim.touchpoints, sim.spend, 20_000, seed)
    params, _ = fit_funnel(data, FunnelFitConfig(max_iter=max_iter, seed=seed))
    fit_s = time.perf_counter() - t0
    table = funnel_table(params, data.spend, float(sim.touchpoints["converted"].sum()))
    table["paid"] = True
    points = response_points(params, data.spend)
    daily = daily_units(sim.touchpoints, sim.spend, table)
    pooled = {(c, k): v for c, k, v in zip(table.channel, table.campaign_type, table.attributed_conversions,
                                            strict=True)}
    units = list(sim.params.units)
    days = data.n_days
    mean_daily = dict(zip(units, data.spend.mean(axis=0), strict=True))
    current = {u: mean_daily[u] * HORIZON for u in units}
    out = {"seed": seed, "fit_s": fit_s, "optimum": sim.truth["optimum"]["expected_conversions"]}
    curves_any = None
    for method in ("exposure", "rollouts", "daily"):
        fits = fit_curves(daily, pooled, points, method)
        curves = {u: fits[u].curve for u in units}
        caps = extrapolation_caps({u: fits[u].spend_max for u in units}, 3.0)
        problem = BudgetProblem(curves=curves, total=TOTAL, horizon_days=HORIZON, current=current,
                                max_daily_spend=caps)
        res = allocate_budget(problem, raise_on_fail=False)
        out[method] = score(sim.params, units, res.allocation, days)
        curves_any = problem
    scale = TOTAL / sum(current.values())
    out["current_scaled"] = score(sim.params, units, {u: v * scale for u, v in current.items()}, days)
    lt = sim.touchpoints[sim.touchpoints.converted == 1].groupby(["channel", "campaign_type"])["revenue"].sum()
    roas = np.array([lt.get(u, 0.0) / max(current[u], 1e-9) for u in units])
    y = TOTAL * roas / roas.sum()
    x = project(y, curves_any.box, TOTAL)
    out["last_touch_roas"] = score(sim.params, units, dict(zip(units, x, strict=True)), days)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--pool", type=int, default=60_000)
    ap.add_argument("--max-iter", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for s in args.seeds:
        rows.append(one_seed(s, args.pool, args.max_iter))
        print(json.dumps(rows[-1]), flush=True)
    df = pd.DataFrame(rows)
    for col in ("exposure", "rollouts", "daily", "current_scaled", "last_touch_roas"):
        df[f"{col}_pct"] = 100 * df[col] / df["optimum"]
    print(df.round(2).to_string(index=False))
    print(json.dumps({c: float(df[f"{c}_pct"].min()) for c in
                      ("exposure", "rollouts", "daily", "current_scaled", "last_touch_roas")}))


if __name__ == "__main__":
    main()
