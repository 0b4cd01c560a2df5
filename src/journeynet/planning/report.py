"""``report.html``: the plan as one self-contained page a marketing lead can open offline.

Rendered with jinja2 (autoescape on, so names from user data show as text) from
``templates/report.html.j2``; charts are plain SVG and the live scenario planner is a
few lines of inline JavaScript fed by the same curve parameters and constraint box the
optimizer used, embedded as JSON with ``tojson`` (``<``, ``>``, ``&`` and quotes escaped).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import jinja2
import pandas as pd

from journeynet.outputs import to_jsonable
from journeynet.planning.budget import BudgetProblem
from journeynet.planning.charts import checks_chart, curve_panel, frontier_chart
from journeynet.planning.response import HillCurve
from journeynet.planning.rundir import TrainRun

Unit = tuple[str, str]
CLASSIC = ("last_touch", "first_touch", "linear", "time_decay", "position_based", "markov")
MAX_CHECK_SERIES = 13


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("journeynet.planning", "templates"),
                             autoescape=True, undefined=jinja2.ChainableUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["money"] = lambda v: "" if v is None or (isinstance(v, float) and not math.isfinite(v)) \
        else f"{v:,.2f}"
    env.filters["num"] = lambda v, d=1: "" if v is None or (isinstance(v, float) and not math.isfinite(v)) \
        else f"{v:,.{d}f}"
    env.filters["pct"] = lambda v, d=1: "" if v is None or (isinstance(v, float) and not math.isfinite(v)) \
        else f"{100 * v:+.{d}f}%"
    return env


def planner_data(problem: BudgetProblem, curves: Mapping[Unit, HillCurve], allocation: Mapping[Unit, float],
                 current: Mapping[Unit, float], current_scaled: Mapping[Unit, float],
                 value: Mapping[Unit, float] | None) -> dict[str, Any]:
    """What the in-page planner needs: the optimizer's curves and constraint box, the plan and the current mix."""
    b = problem.box
    units = [{"name": f"{u[0]}/{u[1]}", "channel": u[0], "campaign_type": u[1], "ch": int(b.ch[i]),
              "beta": curves[u].beta, "k": curves[u].k, "a": curves[u].a,
              "value": None if value is None else float(value.get(u, 0.0)),
              "lo": float(b.lo[i]), "hi": float(b.hi[i]), "lo_src": b.lo_src[i], "hi_src": b.hi_src[i],
              "plan": float(allocation[u]), "current": float(current.get(u, 0.0)),
              "current_scaled": float(current_scaled[u])} for i, u in enumerate(b.units)]
    chans = [{"name": c, "lo": float(b.ch_lo[j]), "hi": float(b.ch_hi[j]), "lo_src": b.ch_lo_src[j],
              "hi_src": b.ch_hi_src[j]} for j, c in enumerate(b.channels)]
    return {"units": units, "channels": chans, "total": float(problem.total), "horizon": problem.horizon_days}


def _role(row: pd.Series) -> str:
    o = row.get("opener_score")
    if o is None or not math.isfinite(o):
        return ""
    return "opener" if o >= 0.6 else "closer" if o <= 0.4 else "opener and closer"


def attribution_rows(att: pd.DataFrame) -> tuple[list[dict[str, Any]], list[str]]:
    """Interventional credit (with its 90% interval) beside the classic rules, paid units first."""
    rules = [c for c in CLASSIC if c in att.columns]
    rows = []
    for _, r in att.sort_values(["paid", "attributed_conversions"], ascending=[False, False]).iterrows():
        credit, low, high = r.get("attributed_conversions"), None, None
        re = r.get("removal_effect")
        if "removal_effect_low" in att.columns and re and math.isfinite(re) and re != 0:
            scale = credit / re
            low, high = r["removal_effect_low"] * scale, r["removal_effect_high"] * scale
        rows.append({"name": f"{r['channel']}/{r['campaign_type']}" if r["campaign_type"] else r["channel"],
                     "paid": bool(r["paid"]), "credit": credit if bool(r["paid"]) else None, "low": low, "high": high,
                     "rules": [r.get(c) for c in rules], "opener": r.get("opener_score"), "role": _role(r),
                     "attention_opener": r.get("attention_opener"),
                     "note": r.get("note") if isinstance(r.get("note"), str) else ""})
    return rows, rules


def checks_section(run: TrainRun) -> dict[str, Any]:
    """Model checks from the train run, or ``available: False``."""
    mc = (run.metrics or {}).get("model_checks")
    if mc is None and run.checks is None:
        return {"available": False}
    out: dict[str, Any] = {"available": True, "summary": mc is not None,
                           "passed": None if mc is None else mc.get("passed"),
                           "failing": list((mc or {}).get("failing_units") or []),
                           "backtest": {str(k): f"{v:,.4g}" if isinstance(v, float) else v
                                        for k, v in ((mc or {}).get("backtest") or {}).items()},
                           "charts": []}
    if run.checks is not None:
        checks = run.checks.copy()
        # a backtest repeats its series' dates (predicted by the fit without them): draw it apart
        repeat = checks.duplicated(["series", "date"], keep=False) & (checks["period"] == "holdout")
        checks.loc[repeat, "series"] = checks.loc[repeat, "series"] + " (held-out backtest)"
        series = sorted(checks["series"].unique(), key=lambda s: (not s.startswith("total"), s))[:MAX_CHECK_SERIES]
        for s in series:
            g = checks[checks["series"] == s]
            cols = {"date": g["date"].dt.strftime("%Y-%m-%d"), "observed": g["observed"], "predicted": g["predicted"],
                    "low": g["predicted_low"], "high": g["predicted_high"], "period": g["period"]}
            chart = checks_chart({k: v.tolist() for k, v in cols.items()})
            obs, pred = float(g["observed"].sum()), float(g["predicted"].sum())
            out["charts"].append({"series": s, "chart": chart, "observed": obs, "predicted": pred,
                                  "error": (pred - obs) / obs if obs >= 10 else None,
                                  "status": str(((mc or {}).get("units") or {}).get(s, {}).get("status", ""))})
    return out


def render_report(ctx: Mapping[str, Any]) -> str:
    """The HTML page for a plan or a scenario (see :func:`report_context`)."""
    return _env().get_template("report.html.j2").render(**ctx)


def report_context(*, mode: str, summary: Mapping[str, Any], table: pd.DataFrame, problem: BudgetProblem,
                   curves: Mapping[Unit, HillCurve], run: TrainRun, planner: Mapping[str, Any],
                   prices: Sequence[Mapping[str, Any]], frontier: Sequence[Mapping[str, Any]],
                   bands: Mapping[Unit, Sequence[HillCurve]] | None, settings: Mapping[str, Any],
                   violations: Sequence[str] = ()) -> dict[str, Any]:
    """Everything the template shows, as plain values.

    Parameters
    ----------
    mode : {"plan", "scenario"}
        What the allocation in ``table`` is.
    summary : Mapping
        ``plan.json`` (or ``scenario.json``) content.
    table : pandas.DataFrame
        ``plan.csv`` rows.
    problem, curves, run : BudgetProblem, Mapping, TrainRun
        The problem solved, its conversion curves and the train run.
    planner : Mapping
        :func:`planner_data` output.
    prices, frontier : sequence of Mapping
        Constraint prices and the budget frontier.
    bands : Mapping or None
        Unit -> curve sets for a 90% band on each response curve.
    settings : Mapping
        What the run did, shown verbatim at the end.
    violations : sequence of str
        Constraints a scenario breaks.
    """
    h = problem.horizon_days
    keyed = table.set_index(["channel", "campaign_type"])
    spend_rng = run.curves.set_index(["channel", "campaign_type"])
    panels = []
    for u in problem.units:
        r = keyed.loc[u]
        smin = float(spend_rng.loc[u, "spend_min"]) if "spend_min" in spend_rng else 0.0
        panels.append({"name": f"{u[0]}/{u[1]}", "beyond": bool(r["beyond_history"]),
                       "chart": curve_panel(curves[u], h, float(r["current_scaled_spend"]), float(r["spend"]),
                                            smin, float(spend_rng.loc[u, "spend_max"]),
                                            (bands or {}).get(u))})
    att_rows, rules = attribution_rows(run.attribution)
    objective = summary.get("objective", "conversions")
    return {"mode": mode, "s": to_jsonable(dict(summary)), "rows": to_jsonable(table.to_dict("records")),
            "has_interval": "expected_conversions_low" in table.columns,
            "has_revenue": "expected_revenue" in table.columns, "objective": objective,
            "prices": to_jsonable(list(prices)), "frontier": to_jsonable(list(frontier)),
            "frontier_chart": frontier_chart(frontier), "panels": panels, "attribution": att_rows,
            "rules": rules, "checks": checks_section(run), "settings": to_jsonable(dict(settings)),
            "planner": to_jsonable(dict(planner)), "violations": list(violations),
            "created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
