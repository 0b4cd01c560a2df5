"""Figures for a budget plan: response curves with current and planned points, plan vs current.

Compute, tidy, then plot: these functions take fitted curves and a tidy plan
table and return matplotlib figures (never shown). matplotlib is imported
lazily with the Agg backend so headless runs and imports stay cheap.

Quickstart
----------
>>> import pandas as pd
>>> from journeynet.planning.response import HillCurve
>>> from journeynet.planning.plots import plot_plan_vs_current, plot_response_curves
>>> curves = {("google_ads", "search"): HillCurve(50.0, 1000.0, 0.8)}
>>> fig = plot_response_curves(curves, {("google_ads", "search"): 700.0},
...                            {("google_ads", "search"): 1100.0})
>>> plan = pd.DataFrame({"channel": ["google_ads"], "campaign_type": ["search"],
...                      "spend": [33000.0], "current_spend": [21000.0]})
>>> fig2 = plot_plan_vs_current(plan)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from journeynet.planning.response import HillCurve

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Unit = tuple[str, str]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _label(u: Unit) -> str:
    return f"{u[0]}/{u[1]}" if u[1] else u[0]


def plot_response_curves(
    curves: Mapping[Unit, HillCurve | object],
    current_daily: Mapping[Unit, float] | None,
    planned_daily: Mapping[Unit, float] | None,
    spend_max: Mapping[Unit, float] | None = None,
    bands: Mapping[Unit, list[HillCurve]] | None = None,
) -> Figure:
    """One panel per unit: the daily curve, with the current and planned daily spend marked.

    Parameters
    ----------
    curves : Mapping
        Unit -> ``HillCurve`` (or a ``FittedCurve``, whose ``curve`` is used).
    current_daily, planned_daily : Mapping or None
        Unit -> daily spend to mark.
    spend_max : Mapping or None
        Unit -> highest daily spend seen; drawn as a dotted line where given.
    bands : Mapping or None
        Unit -> refitted or posterior curves; their 5%-95% range is shaded.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    units = sorted(curves)
    ncol = min(3, max(len(units), 1))
    nrow = max(math.ceil(len(units) / ncol), 1)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.2 * nrow), squeeze=False)
    cur, plan, seen = current_daily or {}, planned_daily or {}, spend_max or {}
    for ax, u in zip(axes.flat, units, strict=False):
        c = getattr(curves[u], "curve", curves[u])
        top = max([2.5 * c.k, 1.3 * cur.get(u, 0.0), 1.3 * plan.get(u, 0.0), 1.0])
        s = np.linspace(0.0, top, 200)
        ax.plot(s, c(s), color="0.3", lw=1.5)
        if bands and bands.get(u):
            ens = np.array([b(s) for b in bands[u]])
            ax.fill_between(s, np.percentile(ens, 5, axis=0), np.percentile(ens, 95, axis=0), color="0.3",
                            alpha=0.15, lw=0, label="90% band")
        for pts, color, name in ((cur, "tab:blue", "current"), (plan, "tab:orange", "planned")):
            if u in pts:
                ax.scatter([pts[u]], [c(pts[u])], color=color, zorder=3, label=name)
        if u in seen:
            ax.axvline(seen[u], color="0.6", ls=":", lw=1, label="max seen")
        ax.set_title(_label(u), fontsize=9)
        ax.set_xlabel("daily spend (currency/day)")
        ax.set_ylabel("incremental conversions/day")
    for ax in list(axes.flat)[len(units):]:
        ax.axis("off")
    if units:
        axes.flat[0].legend(fontsize=7)
    fig.suptitle("Response curves: current (scaled) and planned daily spend", fontsize=11)
    fig.tight_layout()
    return fig


def plot_plan_vs_current(plan_df: pd.DataFrame) -> Figure:
    """Draw planned vs current spend per unit as grouped horizontal bars.

    Parameters
    ----------
    plan_df : pandas.DataFrame
        ``plan.csv`` rows: ``channel``, ``campaign_type``, ``spend``, ``current_spend``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    missing = [c for c in ("channel", "campaign_type", "spend", "current_spend")
               if c not in plan_df.columns]
    if missing:
        raise ValueError(f"plan_df needs columns {missing}")
    plt = _pyplot()
    df = plan_df.sort_values(["channel", "campaign_type"]).reset_index(drop=True)
    labels = [_label((c, "" if pd.isna(t) else str(t)))
              for c, t in zip(df.channel, df.campaign_type, strict=True)]
    y = np.arange(len(df))
    fig, ax = plt.subplots(figsize=(7.0, 0.45 * len(df) + 1.5))
    ax.barh(y - 0.2, df["current_spend"], height=0.4, label="current (scaled)", color="tab:blue")
    ax.barh(y + 0.2, df["spend"], height=0.4, label="plan", color="tab:orange")
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("spend over the horizon (currency)")
    ax.set_title("Plan vs current mix scaled to the same budget", fontsize=11)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
