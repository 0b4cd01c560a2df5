"""Figures of the engine's model checks (compute in :mod:`journeynet.causal.checks`, draw here).

Quickstart::

    from journeynet.attribution.figures import plot_model_checks
    fig = plot_model_checks(table, summary)  # from causal.checks.model_checks
    fig.savefig("model_checks.png")
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def plot_model_checks(table: pd.DataFrame, summary: dict[str, Any]) -> Any:
    """Daily conversions predicted against observed (held-out weeks shaded), and each unit's windows.

    The lower panel shows, per paid unit, observed conversions on its dark and pulse days
    as a ratio to the model's prediction with the 99% band; a unit outside it is red.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, low) = plt.subplots(2, 1, figsize=(10, 7.5), gridspec_kw={"height_ratios": [1, 1.1]})
    total = table[(table["series"] == "total") & (table["period"] != "holdout")]
    dates = pd.to_datetime(total["date"])
    top.fill_between(dates, total["predicted_low"], total["predicted_high"], color="tab:blue", alpha=0.2,
                     label="model, 90% interval")
    top.plot(dates, total["predicted"], color="tab:blue", lw=1.2, label="model (fitted on all days)")
    top.plot(dates, total["observed"], color="black", lw=0.8, label="observed")
    held = table[(table["series"] == "total") & (table["period"] == "holdout")]
    if len(held):
        hd = pd.to_datetime(held["date"])
        top.axvspan(hd.min(), hd.max(), color="grey", alpha=0.15)
        top.plot(hd, held["predicted"], color="tab:orange", lw=1.5, label="backtest: fitted without these weeks")
    backtest = summary.get("backtest")
    title = "Daily conversions, observed and predicted"
    if backtest:
        title += f" (held-out weeks: {backtest['error_pct']:+.1f}% error)"
    top.set_title(title)
    top.set_ylabel("conversions per day")
    top.legend(loc="upper left", fontsize=8)
    _unit_panel(low, summary)
    fig.tight_layout()
    return fig


def _unit_panel(ax: Any, summary: dict[str, Any]) -> None:
    rows = [(name, c) for name, u in summary.get("units", {}).items() for key, c in u.items() if key != "status"]
    if not rows:
        ax.set_axis_off()
        return
    y = np.arange(len(rows))
    for i, (_, c) in enumerate(rows):
        pred = max(c["predicted"], 1e-9)
        lo, hi, obs = c["low_99"] / pred, c["high_99"] / pred, c["observed"] / pred
        ax.plot([lo, hi], [i, i], color="grey", lw=3, alpha=0.5)
        ax.plot(obs, i, "o", color="tab:red" if not c["inside"] else "tab:green")
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels([f"{name} ({c['period']}, {c['days']} days)" for name, c in rows], fontsize=7)
    ax.set_xlabel("observed / predicted total conversions in the unit's window (bar: 99% interval)")
    failing = summary.get("failing_units") or []
    ax.set_title("Dark and pulse windows per unit" + (f": failing {', '.join(failing)}" if failing else ": all pass"))
