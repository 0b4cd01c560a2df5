"""What ``python optimize.py`` does: read a train run, allocate the budget, write the plan and its report.

The plan is compared with the current allocation scaled to the same budget; a plan
that does not beat it is reported as such, never as an improvement. Every file is
staged and published together: a run that fails writes nothing.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from journeynet.errors import InputError
from journeynet.outputs import OutputStage
from journeynet.planning.budget import evaluate_allocation, extrapolation_caps, scaled_current
from journeynet.planning.frontier import budget_frontier, constraint_prices
from journeynet.planning.objectives import ProblemSpec, find_target_total, marginal_return
from journeynet.planning.plantable import check_status, plan_table, unit_name
from journeynet.planning.report import planner_data, render_report, report_context
from journeynet.planning.rundir import TrainRun, load_run
from journeynet.planning.scenario import read_scenario
from journeynet.planning.settings import BudgetSettings
from journeynet.planning.uncertainty import bootstrap_sets, interval_over

log = logging.getLogger(__name__)
Unit = tuple[str, str]


def make_spec(run: TrainRun, settings: BudgetSettings) -> ProblemSpec:
    """The problem's curves, current spend (mean daily spend x horizon) and extrapolation caps."""
    curves = run.hill_curves()
    mean_daily = run.daily.groupby(["channel", "campaign_type"])["spend"].mean()
    current = {u: float(mean_daily.get(u, 0.0)) * settings.horizon_days for u in curves}
    if sum(current.values()) <= 0:
        raise InputError(f"{run.path / 'daily_units.csv'}: no positive spend for the paid units, so there is "
                         "no current mix to compare a plan with")
    spend_max = run.curves.set_index(["channel", "campaign_type"])["spend_max"]
    caps = extrapolation_caps({u: float(spend_max.get(u, 0.0)) for u in curves}, settings.max_extrapolation)
    return ProblemSpec(curves, settings, current, caps, run.revenue_per_conversion())


def _bootstrap_n(cfg: DictConfig) -> int:
    raw = cfg.response.get("bootstrap", 0)
    try:
        n = int(raw)
    except (TypeError, ValueError):
        n = -1
    if n < 0 or str(n) != str(raw).strip():
        raise InputError(f"response.bootstrap must be a whole number >= 0, got {raw!r}")
    return n


def _intervals(cfg: DictConfig, run: TrainRun, spec: ProblemSpec, allocation: dict[Unit, float],
               current_scaled: dict[Unit, float]) -> tuple[dict[str, Any], dict[Unit, list]]:
    """Bootstrap and posterior-draw intervals, and the curve sets that draw the bands."""
    h, w = spec.settings.horizon_days, spec.weights()
    out: dict[str, Any] = {}
    sets: list = []
    n = _bootstrap_n(cfg)
    if n > 0:
        boot = bootstrap_sets(run, n, int(cfg.response.seed))
        out["bootstrap"] = interval_over(boot, allocation, current_scaled, h, w,
                                         f"{len(boot)} curve refits on resampled days")
        sets = boot
    draws = run.draw_curves()
    if draws:
        out["draws"] = interval_over(draws, allocation, current_scaled, h, w,
                                     f"{len(draws)} posterior draws of the attribution engine")
        sets = draws
    best = out.get("draws") or out.get("bootstrap")
    if best:
        out["interval"] = {**best, "what": best["source"]}
    bands = {u: [s[u] for s in sets] for u in allocation} if sets else {}
    return out, bands


def _checks_summary(run: TrainRun, status: dict[Unit, str], allocation: dict[Unit, float]) -> dict[str, Any]:
    mc = (run.metrics or {}).get("model_checks")
    if mc is None and run.checks is None:
        return {"available": False, "note": "model checks are not available for this training run"}
    failing = [unit_name(u) for u, s in status.items() if s == "fail" and allocation.get(u, 0) > 0]
    return {"available": True, "passed": None if mc is None else mc.get("passed"),
            "failing_units": list((mc or {}).get("failing_units") or []), "planned_units_failing": failing,
            "backtest": (mc or {}).get("backtest")}


#: What the engine-draw interval leaves out, measured against generated worlds' truth (RESULTS sections 22, 24, 27).
MODEL_ERROR_NOTE = ("The interval carries the engine's sampling spread and none of its model's error: "
                    "on generated worlds built differently from the engine the promised gain ran 0.9 to 2.1 times "
                    "the true one, while the plan itself stayed within 2.5% of the best allocation.")


def largest_cut(allocation: dict[Unit, float], current_scaled: dict[Unit, float]) -> dict[str, Any] | None:
    """The campaign whose spend the allocation cuts most against the scaled current mix, or None if none is cut."""
    cuts = {u: current_scaled[u] - allocation.get(u, 0.0) for u in current_scaled}
    unit = max(cuts, key=lambda u: cuts[u], default=None)
    if unit is None or cuts[unit] <= 0:
        return None
    return {"unit": unit_name(unit), "current_scaled": float(current_scaled[unit]),
            "plan": float(allocation.get(unit, 0.0))}


def _sentence(what: str, improved: bool, uplift: float | None, interval: dict[str, Any] | None,
              from_engine: bool = False, cut: dict[str, Any] | None = None) -> str:
    if not improved:
        return (f"The {what} does not beat the current mix scaled to the same budget: keep the current mix"
                + ("." if what == "plan" else ", or run the optimizer."))
    # the curves count the conversions paid media cause, not every conversion: say so, or +60% reads as total sales
    text = (f"The {what} is expected to beat the current mix scaled to the same budget by {100 * (uplift or 0):.1f}%"
            " in conversions caused by paid media")
    if interval:
        lo, hi = interval["uplift_90"]
        text += f" (90% interval {100 * lo:+.1f}% to {100 * hi:+.1f}%, over {interval['source']})"
    text += "."
    if interval and from_engine:
        # a marketer reads the interval as the whole uncertainty; the measured bias of the promise is larger
        text += " " + MODEL_ERROR_NOTE
        if cut:
            text += (f" Before counting on the size of the gain, test the largest cut, {cut['unit']} "
                     f"({cut['current_scaled']:,.0f} -> {cut['plan']:,.0f}), with a lift test.")
    return text


def _summary(spec: ProblemSpec, allocation: dict[Unit, float], current_scaled: dict[Unit, float],
             what: str, extra: dict[str, Any]) -> dict[str, Any]:
    s, w = spec.settings, spec.weights()
    conv, base = spec.conversions(allocation), spec.conversions(current_scaled)
    value = sum(conv[u] * w[u] for u in conv)
    base_value = sum(base[u] * w[u] for u in base)
    rev, base_rev = spec.revenue(allocation), spec.revenue(current_scaled)
    improved = value > base_value * (1 + 1e-9)
    cut = largest_cut(allocation, current_scaled)
    uplift = value / base_value - 1 if base_value > 0 else None
    return {"total": float(s.total), "horizon_days": s.horizon_days, "objective": s.objective,
            "constraints": {k: v for k, v in s.__dict__.items()},
            "allocation": [{"channel": u[0], "campaign_type": u[1], "spend": round(allocation[u], 2)}
                           for u in sorted(allocation)],
            "expected_conversions": sum(conv.values()), "current_scaled_expected_conversions": sum(base.values()),
            "expected_revenue": sum(rev.values()) if rev is not None else None,
            "current_scaled_expected_revenue": sum(base_rev.values()) if base_rev is not None else None,
            "uplift": uplift, "uplift_conversions": sum(conv.values()) / sum(base.values()) - 1
            if sum(base.values()) > 0 else None,
            "improves_on_current": bool(improved),
            "verdict": (f"{what} beats the current allocation scaled to the same budget" if improved else
                        f"{what} does NOT beat the current allocation scaled to the same budget: keep the current mix"),
            "largest_cut": cut,
            # the headline interval is the engine draws' whenever there are draws (see _intervals)
            "sentence": _sentence(what, improved, uplift, extra.get("interval"), "draws" in extra, cut), **extra}


def _target(spec: ProblemSpec) -> tuple[ProblemSpec, dict[str, Any] | None]:
    s = spec.settings
    if s.target is None:
        return spec, None
    total = find_target_total(spec, s.target)
    spec = ProblemSpec(spec.curves, s.with_total(total), spec.current, spec.max_daily_spend, spec.value)
    m = marginal_return(spec, total)
    if s.target_cpa is not None:
        setting, reached = f"budget.target_cpa={s.target_cpa:g}", m["cost_per_conversion"]
        sentence = (f"the budget at which one more conversion costs {s.target_cpa:,.2f} is {total:,.2f} "
                    f"(marginal cost there {reached:,.2f}).")
    else:
        setting, reached = f"budget.target_roas={s.target_roas:g}", m["revenue_per_currency"]
        sentence = (f"the budget at which one more unit of spend returns {s.target_roas:g} in revenue is "
                    f"{total:,.2f} (marginal return there {reached:.4g}).")
    log.info("target mode: %s", sentence)
    return spec, {"setting": setting, "total": total, "marginal_reached": reached, "sentence": sentence}


def run_optimize(cfg: DictConfig) -> float:
    """Run the whole ``optimize.py`` job; returns the expected conversions of the plan (or scenario)."""
    run = load_run(cfg.run_dir)
    settings = BudgetSettings.from_config(OmegaConf.to_container(cfg.budget, resolve=True))
    _bootstrap_n(cfg)
    spec = make_spec(run, settings)
    scenario = read_scenario(str(cfg.scenario), spec.curves) if cfg.get("scenario") else None
    spec, target = _target(spec)
    problem = spec.problem(weighted=False)
    try:
        current_scaled = scaled_current(problem)
    except ValueError as err:
        raise InputError(str(err)) from None
    result = spec.solve()
    what = "scenario" if scenario is not None else "plan"
    allocation = scenario if scenario is not None else result.allocation
    violations = evaluate_allocation(problem, allocation)[2] if scenario is not None else []
    extra, bands = _intervals(cfg, run, spec, allocation, current_scaled)
    status = check_status(run.metrics, problem.units)
    extra["model_checks"] = _checks_summary(run, status, allocation)
    if target:
        extra["target"] = target
    summary = _summary(spec, allocation, current_scaled, what, extra)
    per_unit = (extra.get("interval") or {}).get("per_unit")
    spend_max = run.curves.set_index(["channel", "campaign_type"])["spend_max"].to_dict()
    table = plan_table(problem, spec.curves, allocation, current_scaled, spend_max, value=spec.value,
                       intervals=per_unit, checks=status)
    planned_value = result.expected_conversions
    summary["price_of_constraints"] = [] if scenario is not None else \
        constraint_prices(spec, spec.settings.total, planned_value)
    summary["frontier"] = budget_frontier(spec)
    if scenario is not None:
        summary.update(violations=violations, optimal_plan_expected_conversions=sum(
            spec.conversions(result.allocation).values()))
    else:
        summary.update(success=result.success, n_iter=result.n_iter, message=result.message,
                       kkt_residual=result.kkt_residual)
    summary["response_method"] = run.method
    out_dir = Path(cfg.paths.output_dir)
    ctx = report_context(mode=what, summary=summary, table=table, problem=problem, curves=spec.curves, run=run,
                         planner=planner_data(problem, spec.curves, allocation, spec.current, current_scaled,
                                              spec.value),
                         prices=summary["price_of_constraints"], frontier=summary["frontier"], bands=bands,
                         settings=_settings(cfg, run, summary, out_dir), violations=violations)
    with OutputStage(out_dir) as stage:
        stage.write_csv(f"{what}.csv", table)
        stage.write_json(f"{what}.json", summary)
        stage.write_text("report.html", render_report(ctx))
        figs = _plan_figures(stage, problem, table, run, bands) if scenario is None else {}
    _log_result(summary, table, what, out_dir)
    _tensorboard(run, out_dir, figs, summary)
    return float(summary["expected_conversions"])


def _settings(cfg: DictConfig, run: TrainRun, summary: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    files = ["response_curves.csv", "daily_units.csv", "attribution.csv"] + [
        n for n, v in (("response_points.csv", run.points), ("response_draws.csv", run.draws),
                       ("metrics.json", run.metrics), ("model_checks.csv", run.checks)) if v is not None]
    out: dict[str, Any] = {"run_dir": str(run.path), "files read": ", ".join(files),
                           "response curves": f"Hill curves per campaign, method={run.method}",
                           "scenario": cfg.get("scenario") or "", "output dir": str(out_dir)}
    out.update({f"budget.{k}": v for k, v in summary["constraints"].items()})
    out["response.bootstrap"] = cfg.response.get("bootstrap", 0)
    out["optimizer"] = summary.get("message", "projected gradient ascent (plan computed for comparison)")
    try:
        from hydra.core.hydra_config import HydraConfig

        out["command overrides"] = " ".join(HydraConfig.get().overrides.task) or "(none)"
    except ValueError:  # not run through Hydra's entry point
        pass
    return out


def _log_result(summary: dict[str, Any], table: pd.DataFrame, what: str, out_dir: Path) -> None:
    cols = [c for c in ("channel", "campaign_type", "spend", "current_scaled_spend", "expected_conversions",
                        "expected_conversions_low", "expected_conversions_high", "marginal_cost_per_conversion",
                        "binding", "checks") if c in table]
    log.info("%s (budget %.2f over %d days):\n%s", what, summary["total"], summary["horizon_days"],
             table[cols].to_string(index=False))
    log.info("expected conversions caused by paid media %.2f vs %.2f for the current mix scaled: %s",
             summary["expected_conversions"],
             summary["current_scaled_expected_conversions"], summary["sentence"])
    for key in ("bootstrap", "draws"):
        if key in summary:
            b = summary[key]
            log.info("90%% interval over %s: expected conversions %.1f to %.1f, uplift %+.1f%% to %+.1f%%",
                     b["source"], *b["plan_conversions_90"], *(100 * np.asarray(b["uplift_90"])))
    mc = summary["model_checks"]
    if not mc["available"]:
        log.info("model checks: not available for this training run")
    else:
        log.info("model checks: %s%s", {True: "passed", False: "FAILED", None: "no summary"}[mc["passed"]],
                 f"; planned units failing: {', '.join(mc['planned_units_failing'])}"
                 if mc["planned_units_failing"] else "")
    for v in summary.get("violations", []):
        log.warning("scenario breaks a constraint: %s", v)
    log.info("report: %s", out_dir / "report.html")


def _plan_figures(stage: OutputStage, problem: Any, table: pd.DataFrame, run: TrainRun,
                  bands: dict[Unit, list]) -> dict[str, Path]:
    """Write the plan's PNGs; return their final paths by TensorBoard tag."""
    from journeynet.planning.plots import plot_plan_vs_current, plot_response_curves

    h, out_dir = problem.horizon_days, stage.run_dir
    keyed = table.set_index(["channel", "campaign_type"])
    spend_max = run.curves.set_index(["channel", "campaign_type"])["spend_max"].to_dict()
    fig = plot_response_curves(run.hill_curves(), (keyed["current_scaled_spend"] / h).to_dict(),
                               (keyed["spend"] / h).to_dict(), spend_max, bands=bands)
    fig.savefig(stage.path_for("response_curves.png"), dpi=110, bbox_inches="tight")
    fig2 = plot_plan_vs_current(table.assign(current_spend=table["current_scaled_spend"]))
    fig2.savefig(stage.path_for("plan_vs_current.png"), dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    plt.close(fig2)
    return {f"plan/{n}": out_dir / f"{n}.png" for n in ("response_curves", "plan_vs_current")}


def _tensorboard(run: TrainRun, out_dir: Path, figs: dict[str, Path], summary: dict[str, Any]) -> None:
    """Events go beside the train run's own (``<run_dir>/tensorboard/optimize``), so one logdir shows both."""
    from torch.utils.tensorboard import SummaryWriter

    log_dir = run.path / "tensorboard" / "optimize"
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
    except OSError:
        log.warning("%s is not writable; TensorBoard events go to %s instead", log_dir, out_dir / "tensorboard")
        log_dir = out_dir / "tensorboard"
    with SummaryWriter(log_dir=str(log_dir)) as tb:
        for tag, png in figs.items():  # the saved PNGs: drawing the figures again costs seconds
            from matplotlib.image import imread

            tb.add_image(tag, imread(png)[..., :3], dataformats="HWC")
        tb.add_scalar("plan/expected_conversions", float(summary["expected_conversions"]))
        tb.add_scalar("plan/current_scaled_conversions", float(summary["current_scaled_expected_conversions"]))
        if summary.get("uplift") is not None and math.isfinite(summary["uplift"]):
            tb.add_scalar("plan/uplift", float(summary["uplift"]))
        tb.add_text("plan/sentence", summary["sentence"])
    log.info("TensorBoard events: %s", log_dir)
