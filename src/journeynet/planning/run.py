"""What ``python optimize.py`` does: read a train run, allocate the budget, write the plan.

The plan is compared with the current allocation scaled to the same budget; a plan
that does not beat it is reported as such, never as an improvement.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from journeynet.data.inputs import read_table
from journeynet.errors import InputError
from journeynet.outputs import OutputStage
from journeynet.planning.budget import (
    BudgetProblem,
    allocate_budget,
    evaluate_allocation,
    extrapolation_caps,
    scaled_current,
)
from journeynet.planning.response import HillCurve, bootstrap_curves

log = logging.getLogger(__name__)
Unit = tuple[str, str]


def load_run(run_dir: str | None) -> dict[str, Any]:
    """Curves, daily history and rollout points of a ``train.py`` run dir."""
    if not run_dir:
        raise InputError("run_dir is not set: pass run_dir=DIR (a train.py run directory)")
    path = Path(run_dir)
    if not path.is_dir():
        raise InputError(f"run_dir not found: {run_dir}")
    curves_path = path / "response_curves.csv"
    if not curves_path.exists():
        raise InputError(f"{curves_path}: no response curves in this run; train.py writes them only with "
                         "spend data (data.spend=PATH)")
    curves = read_table(curves_path, "response curves")
    daily = read_table(path / "daily_units.csv", "daily units")
    daily["date"] = pd.to_datetime(daily["date"])
    points = read_table(path / "response_points.csv", "response points") \
        if (path / "response_points.csv").exists() else None
    attribution = read_table(path / "attribution.csv", "attribution")
    for df in (curves, daily, attribution) + ((points,) if points is not None else ()):
        df["campaign_type"] = df["campaign_type"].fillna("").astype(str)
    return {"curves": curves, "daily": daily, "points": points, "attribution": attribution}


def hill_curves(curves: pd.DataFrame) -> dict[Unit, HillCurve]:
    """``response_curves.csv`` rows as curve objects."""
    return {(r.channel, r.campaign_type): HillCurve(float(r.beta), float(r.k), float(r.a))
            for r in curves.itertuples()}


def build_problem(cfg: DictConfig, run: dict[str, Any], curves: dict[Unit, HillCurve]) -> BudgetProblem:
    """The budget problem of ``cfg.budget`` on these curves, with the current spend and caps."""
    b = cfg.budget
    daily = run["daily"]
    mean_daily = daily.groupby(["channel", "campaign_type"])["spend"].mean()
    current = {u: float(mean_daily.get(u, 0.0)) * b.horizon_days for u in curves}
    spend_max = run["curves"].set_index(["channel", "campaign_type"])["spend_max"]
    caps = extrapolation_caps({u: float(spend_max.get(u, 0.0)) for u in curves}, b.max_extrapolation)
    bounds = {k: tuple(v) for k, v in (OmegaConf.to_container(b.bounds) or {}).items()}
    return BudgetProblem(curves=curves, total=float(b.total), horizon_days=int(b.horizon_days),
                         min_channel_share=float(b.min_channel_share), min_campaign_share=float(b.min_campaign_share),
                         bounds=bounds or None, current=current, max_change=b.max_change, max_daily_spend=caps)


def plan_table(problem: BudgetProblem, allocation: dict[Unit, float], per_unit: dict[Unit, float],
               current_scaled: dict[Unit, float]) -> pd.DataFrame:
    """``plan.csv``: one row per paid unit."""
    h = problem.horizon_days
    rows = []
    for u, curve in problem.curves.items():
        x = allocation[u]
        rows.append({"channel": u[0], "campaign_type": u[1], "spend": round(x, 2),
                     "expected_conversions": per_unit[u], "current_spend": (problem.current or {}).get(u, 0.0),
                     "current_scaled_spend": current_scaled[u],
                     "current_scaled_conversions": h * float(curve(current_scaled[u] / h)),
                     "marginal_conversions_per_1000": 1000.0 * float(curve.derivative(x / h)),
                     "spend_at_80pct_of_ceiling": h * curve.spend_at_fraction(0.8),
                     "daily_spend": x / h})
    return pd.DataFrame(rows)


def bootstrap_interval(cfg: DictConfig, run: dict[str, Any], allocation: dict[Unit, float],
                       current_scaled: dict[Unit, float], horizon: int) -> dict[str, Any]:
    """90% intervals of the plan's conversions and uplift over refitted curves."""
    r = cfg.response
    pooled = {(c, k): float(v) for c, k, v, p in run["attribution"][["channel", "campaign_type",
                                                                     "attributed_conversions", "paid"]].itertuples(
        index=False) if bool(p) and np.isfinite(v)}
    method = str(run["curves"]["method"].iloc[0])  # refit the way the run fitted its curves
    reps = bootstrap_curves(run["daily"], pooled, run["points"], method, int(r.bootstrap), int(r.seed))
    plan_c, uplift = [], []
    for fits in reps:
        p = sum(horizon * float(fits[u].curve(allocation[u] / horizon)) for u in allocation if u in fits)
        c = sum(horizon * float(fits[u].curve(current_scaled[u] / horizon)) for u in current_scaled if u in fits)
        plan_c.append(p)
        uplift.append(p / c - 1 if c > 0 else np.nan)
    q = lambda v: [float(np.nanpercentile(v, 5)), float(np.nanpercentile(v, 95))]  # noqa: E731
    return {"replicates": len(reps), "plan_conversions_90": q(plan_c), "uplift_90": q(uplift)}


def run_optimize(cfg: DictConfig) -> float:
    """Run the whole ``optimize.py`` job; returns the plan's expected conversions."""
    run = load_run(cfg.run_dir)
    curves = hill_curves(run["curves"])
    problem = build_problem(cfg, run, curves)
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    current_scaled = scaled_current(problem)
    base_total, _, _ = evaluate_allocation(problem, current_scaled)
    with OutputStage(out_dir) as stage:
        if cfg.get("scenario"):
            return _scenario(stage, cfg, problem)
        result = allocate_budget(problem)
        table = plan_table(problem, result.allocation, result.per_unit_conversions, current_scaled)
        improved = result.expected_conversions > base_total * (1 + 1e-9)
        summary = {
            "total": float(problem.total), "horizon_days": problem.horizon_days,
            "constraints": OmegaConf.to_container(cfg.budget, resolve=True),
            "expected_conversions": result.expected_conversions,
            "current_scaled_expected_conversions": base_total,
            "uplift": result.expected_conversions / base_total - 1 if base_total > 0 else None,
            "improves_on_current": bool(improved),
            "verdict": ("plan beats the current allocation scaled to the same budget" if improved else
                        "plan does NOT beat the current allocation scaled to the same budget: keep the current mix"),
            "success": result.success, "n_iter": result.n_iter, "message": result.message,
            "kkt_residual": result.kkt_residual, "response_method": str(run["curves"]["method"].iloc[0]),
        }
        if int(cfg.response.bootstrap) > 0:
            summary["bootstrap"] = bootstrap_interval(cfg, run, result.allocation, current_scaled,
                                                      problem.horizon_days)
        stage.write_csv("plan.csv", table)
        stage.write_json("plan.json", summary)
        _plan_figures(stage, problem, table, run)
    log.info("plan (budget %.2f over %d days):\n%s", problem.total, problem.horizon_days,
             table[["channel", "campaign_type", "spend", "current_scaled_spend", "expected_conversions",
                    "marginal_conversions_per_1000"]].round(2).to_string(index=False))
    log.info("expected conversions %.1f vs %.1f for the current mix scaled (%s)", result.expected_conversions,
             base_total, summary["verdict"])
    return float(result.expected_conversions)


def _scenario(stage: OutputStage, cfg: DictConfig, problem: BudgetProblem) -> float:
    """Score a user's allocation file and list the constraints it breaks."""
    sc = read_table(cfg.scenario, "scenario")
    missing = [c for c in ("channel", "campaign_type", "spend") if c not in sc.columns]
    if missing:
        raise InputError(f"scenario file {cfg.scenario}: missing column(s) {', '.join(missing)}; "
                         f"expected channel, campaign_type, spend; found {', '.join(map(str, sc.columns))}")
    sc["campaign_type"] = sc["campaign_type"].fillna("").astype(str)
    alloc = {(r.channel, r.campaign_type): float(r.spend) for r in sc.itertuples()}
    total, per_unit, violations = evaluate_allocation(problem, alloc)
    table = pd.DataFrame([{"channel": u[0], "campaign_type": u[1], "spend": alloc.get(u, 0.0),
                           "expected_conversions": v} for u, v in per_unit.items()])
    stage.write_csv("scenario.csv", table)
    stage.write_json("scenario.json", {"expected_conversions": total, "violations": violations})
    for v in violations:
        log.warning("scenario breaks a constraint: %s", v)
    log.info("scenario expected conversions %.1f over %d days", total, problem.horizon_days)
    return float(total)


def _plan_figures(stage: OutputStage, problem: BudgetProblem, table: pd.DataFrame, run: dict[str, Any]) -> None:
    from journeynet.planning.plots import plot_plan_vs_current, plot_response_curves

    h = problem.horizon_days
    keyed = table.set_index(["channel", "campaign_type"])
    spend_max = run["curves"].set_index(["channel", "campaign_type"])["spend_max"].to_dict()
    fig = plot_response_curves(problem.curves, (keyed["current_scaled_spend"] / h).to_dict(),
                               (keyed["spend"] / h).to_dict(), spend_max)
    fig.savefig(stage.path_for("response_curves.png"), dpi=110, bbox_inches="tight")
    fig2 = plot_plan_vs_current(table.assign(current_spend=table["current_scaled_spend"]))
    fig2.savefig(stage.path_for("plan_vs_current.png"), dpi=110, bbox_inches="tight")
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(log_dir=str(Path(stage.run_dir) / "tensorboard")) as tb:
        tb.add_figure("plan/response_curves", fig, close=False)
        tb.add_figure("plan/plan_vs_current", fig2, close=False)
        tb.add_scalar("plan/expected_conversions", float(table["expected_conversions"].sum()))
        tb.add_scalar("plan/current_scaled_conversions", float(table["current_scaled_conversions"].sum()))
