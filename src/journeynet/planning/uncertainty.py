"""Intervals on the plan: over refitted curves (bootstrap) and over the engine's posterior draws.

The bootstrap (``response.bootstrap=N``) resamples days and refits the curves: it shows
how much the curve fit moves. ``response_draws.csv`` holds one fitted curve set per
posterior draw of the attribution engine: it carries the engine's own uncertainty.
Both are summarised the same way: the plan and the current mix scaled to the same budget
are scored under every curve set, and the 5%-95% range of each figure is reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from journeynet.planning.response import HillCurve, bootstrap_curves
from journeynet.planning.rundir import TrainRun

Unit = tuple[str, str]


def _q(v: Sequence[float]) -> list[float]:
    return [float(np.nanpercentile(v, 5)), float(np.nanpercentile(v, 95))]


def interval_over(curve_sets: Sequence[Mapping[Unit, HillCurve]], allocation: Mapping[Unit, float],
                  current_scaled: Mapping[Unit, float], horizon: int,
                  weights: Mapping[Unit, float] | None = None, source: str = "") -> dict[str, Any]:
    """5%-95% ranges of the plan's value, the uplift and each unit's conversions over curve sets.

    Parameters
    ----------
    curve_sets : sequence of Mapping
        Unit -> daily curve, one mapping per replicate or draw.
    allocation, current_scaled : Mapping
        The plan and the current mix scaled to the same budget (over the horizon).
    horizon : int
        Days.
    weights : Mapping or None
        Value per conversion per unit when the objective is revenue (the uplift is then in revenue).
    source : str
        Where the curve sets come from, reported as is.

    Returns
    -------
    dict
        ``source``, ``replicates``, ``plan_conversions_90``, ``plan_value_90``, ``uplift_90``,
        ``uplift_positive_share`` and ``per_unit`` (unit name -> [low, high] conversions).
    """
    w = weights or {}
    plan_c, plan_v, uplift, per = [], [], [], {u: [] for u in allocation}
    for curves in curve_sets:
        conv = {u: horizon * float(curves[u](allocation[u] / horizon)) for u in allocation if u in curves}
        base = {u: horizon * float(curves[u](current_scaled[u] / horizon)) for u in current_scaled if u in curves}
        value = sum(c * w.get(u, 1.0) for u, c in conv.items())
        base_value = sum(c * w.get(u, 1.0) for u, c in base.items())
        plan_c.append(sum(conv.values()))
        plan_v.append(value)
        uplift.append(value / base_value - 1 if base_value > 0 else np.nan)
        for u, c in conv.items():
            per[u].append(c)
    up = np.asarray(uplift, dtype=float)
    return {"source": source, "replicates": len(plan_c), "plan_conversions_90": _q(plan_c),
            "plan_value_90": _q(plan_v), "uplift_90": _q(up),
            "uplift_positive_share": float(np.mean(up[np.isfinite(up)] > 0)) if np.isfinite(up).any() else None,
            "per_unit": {f"{u[0]}/{u[1]}": _q(v) for u, v in per.items() if v}}


def bootstrap_sets(run: TrainRun, n: int, seed: int) -> list[dict[Unit, HillCurve]]:
    """Curve sets refitted on ``n`` day resamples, the way the run fitted its curves."""
    att = run.attribution
    paid = att[att["paid"] & np.isfinite(att["attributed_conversions"])]
    pooled = {(c, k): float(v) for c, k, v in zip(paid["channel"], paid["campaign_type"],
                                                  paid["attributed_conversions"], strict=True)}
    daily = run.daily.copy()
    reps = bootstrap_curves(daily, pooled, run.points, run.method, n, seed)
    return [{u: f.curve for u, f in fits.items()} for fits in reps]
