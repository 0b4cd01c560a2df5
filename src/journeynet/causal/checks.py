"""Model checks a marketer can read: predicted against observed conversions where it matters.

* **Dark and pulse periods.** For each paid unit, total conversions on the days its spend
  was off (dark) or far above its usual level (pulse), observed against the fitted
  model's prediction, scaled to the observed level (Poisson noise plus the model's own
  spread over its draws); a unit fails when a window misses its 99% interval. A model
  that credits a unit with conversions it only intercepts predicts a drop in its dark
  weeks that the data do not show: the check fails and names the unit.
* **Held-out weeks.** The backtest model, fitted without the last weeks, predicts their
  daily conversions from their actual spend.

Quickstart::

    from journeynet.causal.checks import model_checks
    table, summary = model_checks(result, data, observed)  # result: fit_engine(...)
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from journeynet.causal.data import FunnelData
from journeynet.causal.engine import EngineResult
from journeynet.causal.funnel import propagate_routes
from journeynet.data.touchsource import TouchSource, as_source

log = logging.getLogger(__name__)

Z90 = 1.645
# A unit fails when its window misses the 99% interval: with two windows per unit and a dozen
# units, a 90% rule would flag one healthy unit in most runs.
Z_FAIL = 2.576
PULSE = 1.8  # a day above this multiple of the unit's median positive spend is a pulse


def observed_routes(touchpoints: pd.DataFrame | TouchSource, data: FunnelData) -> np.ndarray:
    """Observed conversions per day and session route ``(T, U + 1)`` (paid units, then unpaid).

    ``touchpoints``: canonical rows, or a :class:`~journeynet.data.touchsource.TouchSource`
    (its conversions counted per day and unit).
    """
    conv = as_source(touchpoints).conversion_routes()
    day = ((conv["timestamp"].dt.normalize() - data.dates[0]) / pd.Timedelta(days=1)).to_numpy()
    inside = (day >= 0) & (day < data.n_days)
    conv, day = conv[inside], day[inside].astype(int)
    index = {u: i for i, u in enumerate(data.units)}
    route = [index.get((c, k), len(data.units)) for c, k in zip(conv["channel"].astype(str),
                                                                 conv["campaign_type"].astype(str), strict=True)]
    out = np.zeros((data.n_days, len(data.units) + 1))
    np.add.at(out, (day, np.asarray(route, dtype=int)), conv["count"].to_numpy(dtype=float))
    return out


def model_checks(result: EngineResult, data: FunnelData, observed: np.ndarray) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Daily predicted-versus-observed table (``model_checks.csv``) and the summary for ``metrics.json``."""
    spend = data.spend
    _, pred, _ = propagate_routes(result.params, spend)  # (T, U + 1)
    spread = np.stack([propagate_routes(d, spend)[1] for d in result.draws]) if result.draws else None
    total_obs, total_pred = observed.sum(1), pred.sum(1)
    total_draws = spread.sum(2) if spread is not None else None
    # the windows test the shape of the prediction, not its level: attribution corrects the level too
    level = total_obs.sum() / max(total_pred.sum(), 1e-9)
    rows = [_series_frame(data.dates, "total", total_obs, total_pred, total_draws, "normal")]
    units: dict[str, Any] = {}
    failing = []
    for u, (channel, campaign) in enumerate(data.units):
        name = f"{channel}/{campaign}"
        s = spend[:, u]
        positive = s[s > 0]
        period = np.where(s <= 0, "dark", np.where(s > PULSE * (np.median(positive) if positive.size else 0.0),
                                                    "pulse", "normal"))
        rows.append(_series_frame(data.dates, name, observed[:, u], pred[:, u],
                                  spread[:, :, u] if spread is not None else None, period))
        checks = {p: _window_check(total_obs, level * total_pred, level * total_draws if spread is not None else None,
                                   period == p, p) for p in ("dark", "pulse")}
        status = "fail" if any(c and not c["inside"] for c in checks.values()) else "ok"
        units[name] = {"status": status, **{p: c for p, c in checks.items() if c}}
        if status == "fail":
            failing.append(name)
            bad = next(c for c in checks.values() if c and not c["inside"])
            log.warning("model check: %s: total conversions on its %s days were %.0f, the model predicts %.0f "
                        "(99%% interval %.0f-%.0f); its effect rests on a model that misses there",
                        name, bad["period"], bad["observed"], bad["predicted"], bad["low_99"], bad["high_99"])
    summary: dict[str, Any] = {"passed": not failing, "failing_units": failing, "units": units,
                               "level_observed_over_predicted": float(level)}
    if result.backtest is not None and result.holdout_start is not None:
        table, summary["backtest"] = _backtest(result, data, total_obs)
        rows.append(table)
    return pd.concat(rows, ignore_index=True), summary


def _series_frame(dates: pd.DatetimeIndex, series: str, obs: np.ndarray, pred: np.ndarray,
                  draws: np.ndarray | None, period: np.ndarray | str) -> pd.DataFrame:
    sd = np.sqrt(pred + (draws.var(0) if draws is not None else 0.0))
    return pd.DataFrame({"date": dates.date, "series": series, "observed": obs, "predicted": pred,
                         "predicted_low": np.maximum(pred - Z90 * sd, 0.0), "predicted_high": pred + Z90 * sd,
                         "period": period})


def _window_check(obs: np.ndarray, pred: np.ndarray, draws: np.ndarray | None, days: np.ndarray,
                  period: str) -> dict | None:
    """Observed against predicted conversions summed over ``days``, with a 90% interval."""
    if not days.any():
        return None
    o, p = float(obs[days].sum()), float(pred[days].sum())
    var = p + (float(draws[:, days].sum(1).var()) if draws is not None else 0.0)
    low, high = max(p - Z_FAIL * np.sqrt(var), 0.0), p + Z_FAIL * np.sqrt(var)
    return {"period": period, "days": int(days.sum()), "observed": o, "predicted": p, "low_99": low,
            "high_99": high, "z": (o - p) / np.sqrt(max(var, 1e-9)), "inside": bool(low <= o <= high)}


def _backtest(result: EngineResult, data: FunnelData, total_obs: np.ndarray) -> tuple[pd.DataFrame, dict]:
    """The held-out weeks predicted by the model fitted without them."""
    start = int(result.holdout_start)
    conv, _, _ = propagate_routes(result.backtest, data.spend)
    held = np.arange(data.n_days) >= start
    frame = _series_frame(data.dates[held], "total", total_obs[held], conv[held], None, "holdout")
    o, p = float(total_obs[held].sum()), float(conv[held].sum())
    inside = (frame["observed"] >= frame["predicted_low"]) & (frame["observed"] <= frame["predicted_high"])
    summary = {"weeks": int(round(held.sum() / 7)), "observed": o, "predicted": p,
               "error_pct": 100.0 * (p - o) / max(o, 1.0), "daily_coverage_90": float(inside.mean())}
    log.info("backtest: the last %d days predicted %.0f conversions, observed %.0f (%+.1f%%)",
             int(held.sum()), p, o, summary["error_pct"])
    return frame, summary
