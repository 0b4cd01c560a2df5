"""What ``train.py`` computes without the trained net: the summary baselines, the funnel engine, the curves.

It runs in a second process while the net trains (:class:`journeynet.background.Background`),
so this module imports neither Lightning nor the net: the process starts in about half
the time.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from journeynet.attribution.interventional import interventional
from journeynet.causal.fit import FunnelFitConfig
from journeynet.data.touchsource import TouchSource, as_source
from journeynet.model.baselines import fit_baselines
from journeynet.outputs import write_csv_file, write_json_file
from journeynet.planning.response import HillCurve, curves_frame, fit_curves
from journeynet.planning.revenue import revenue_per_conversion
from journeynet.preflight import SettingError

__all__ = ["daily_units", "fit_summary_baselines", "funnel_effects", "net_free_work", "response_outputs"]


def fit_summary_baselines(journeys: Any, splits: dict[str, np.ndarray], seed: int,
                          n_channels: int) -> tuple[dict[str, np.ndarray], float]:
    """The baselines' test probabilities and the seconds they took."""
    t0 = time.perf_counter()
    baseline_p = fit_baselines(journeys, splits, seed=seed, n_channels=n_channels)
    return baseline_p, time.perf_counter() - t0


def net_free_work(cfg: DictConfig, inputs: Any, journeys: Any, splits: dict[str, np.ndarray],
                  n_channels: int, input_copies: dict[str, Path] | None = None) -> dict[str, Any]:
    """What does not need the trained net: the summary baselines, the funnel engine's fits, the curves.

    Runs in a second process while the net trains (:class:`journeynet.background.Background`,
    which sets that process's threads). ``input_copies`` are the staged paths of
    :func:`write_input_copies` (a generated world's inputs and truth), written here too.
    """
    baselines = fit_summary_baselines(journeys, splits, cfg.seed, n_channels)
    funnel = funnel_effects(cfg, inputs)
    if input_copies:
        write_input_copies(inputs, input_copies)
    return {"baselines": baselines, "funnel": funnel}


INPUT_COPIES = ("touchpoints.csv", "spend.csv", "ground_truth.json")
MULTIPLE_ONE = "response.spend_multiples must include 1 when response.method is exposure or daily (the engine's draws)"


def write_input_copies(inputs: Any, paths: dict[str, Path]) -> None:
    """A generated world's touchpoints, spend and truth, kept in the run dir (``paths``: by name)."""
    write_csv_file(paths["touchpoints.csv"], inputs.touchpoints)  # 1.6M rows: 5 s
    write_csv_file(paths["spend.csv"], inputs.spend)
    write_json_file(paths["ground_truth.json"], inputs.truth)


def funnel_effects(cfg: DictConfig, inputs: Any) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """The interventional engine's table and by-products, or None without spend or with engine=none."""
    a = cfg.attribution
    if inputs.spend is None or a.engine != "funnel":
        return None
    fit_cfg = FunnelFitConfig(**OmegaConf.to_container(a.funnel, resolve=True))
    table, extras = interventional(fit_cfg, inputs.touches, inputs.spend, tuple(cfg.response.spend_multiples),
                                   a.get("cache_dir"), bool(a.get("refit", False)), int(a.get("response_draws", 20)),
                                   experiments=getattr(inputs, "experiments", None))
    extras.update(response_outputs(inputs, table, extras, cfg.response.method))
    return table, extras


def response_outputs(inputs: Any, funnel: pd.DataFrame, extras: dict[str, Any], method: str) -> dict[str, Any]:
    """The frames of ``daily_units.csv``, ``response_curves.csv`` and ``response_draws.csv``.

    Keys ``daily``, ``curves``, ``draws``. ``funnel`` is the engine's table: one row per
    paid unit with its ``attributed_conversions``.
    """
    daily = daily_units(inputs.touches, inputs.spend, funnel)
    pooled = _pooled(funnel, daily)
    fits = fit_curves(daily, pooled, extras["points"], method)
    revenue = revenue_per_conversion(inputs.touches, set(fits))
    draws = None
    if extras["draw_points"] is not None:
        draws = response_draws(daily, pooled, extras["draw_points"], method, {u: f.curve for u, f in fits.items()},
                               funnel, extras["spend_matrix"].shape[0])
    return {"daily": daily, "curves": curves_frame(fits, revenue), "draws": draws}


def daily_units(touchpoints: pd.DataFrame | TouchSource, spend: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Per paid unit and day: spend, exposure (touches delivered) and per-day attributed credit.

    The per-day credit spreads a unit's pooled effect over days in proportion to its
    last-touch conversions that day: the noisy signal the ``daily`` curve method uses.
    ``touchpoints``: canonical rows, or a :class:`~journeynet.data.touchsource.TouchSource`
    (its counts per day and unit).
    """
    keys = ["date", "channel", "campaign_type"]
    counts = as_source(touchpoints).daily_counts().set_index(keys)
    touches = counts["exposure"]
    last = counts.loc[counts["last_touch"] > 0, "last_touch"]
    daily = spend[keys + ["spend"]].merge(touches, on=keys, how="left").merge(last, on=keys, how="left")
    daily[["exposure", "last_touch"]] = daily[["exposure", "last_touch"]].fillna(0.0)
    daily["attributed"] = spread_credit(daily, table.set_index(["channel", "campaign_type"])["attributed_conversions"])
    return daily


def spread_credit(daily: pd.DataFrame, pooled: pd.Series | dict) -> np.ndarray:
    """Each unit's pooled credit spread over its days by their share of its last-touch conversions."""
    lt_total = daily.groupby(["channel", "campaign_type"])["last_touch"].transform("sum")
    units = pd.Series(list(zip(daily["channel"], daily["campaign_type"], strict=True)))
    unit_pool = units.map(pooled).to_numpy()
    days = daily.groupby(["channel", "campaign_type"])["date"].transform("size")
    share = np.where(lt_total > 0, daily["last_touch"] / lt_total.where(lt_total > 0, 1), 1.0 / days)
    return np.nan_to_num(unit_pool.astype(float)) * share


def response_draws(daily: pd.DataFrame, pooled: dict[tuple[str, str], float], draw_points: pd.DataFrame,
                   method: str, near: dict[tuple[str, str], HillCurve] | None = None,
                   funnel: pd.DataFrame | None = None, n_days: int | None = None) -> pd.DataFrame:
    """One fitted curve per unit and draw of the engine: the plan's interval carries the engine's uncertainty.

    ``near``: the point fit's curves, where each draw's fit starts (see :func:`fit_curves`).
    Methods ``exposure`` and ``daily`` fit on a unit's credit, not on the rollouts: each
    draw's credit is the point's plus that draw's removal effect about the draws' mean
    (read off its rollout at spend multiple 1 over ``n_days``, scaled as the ``funnel``
    table scales effects), so their draws differ as the engine's do.
    """
    shifts = None if method == "rollouts" else draw_credit_shifts(funnel, draw_points, n_days)
    frames = []
    for draw, pts in draw_points.groupby("draw"):
        credit, days = pooled, daily
        if shifts is not None:
            credit = {u: v + float(shifts.get((draw, *u), 0.0)) for u, v in pooled.items()}
            if method == "daily":
                days = daily.assign(attributed=spread_credit(daily, credit))
        fits = fit_curves(days, credit, pts.drop(columns="draw"), method, near=near)
        frames.append(curves_frame(fits).assign(draw=int(draw)))
    out = pd.concat(frames, ignore_index=True)
    return out[["draw", *[c for c in out.columns if c != "draw"]]]


def draw_credit_shifts(funnel: pd.DataFrame | None, draw_points: pd.DataFrame, n_days: int | None) -> pd.Series:
    """Per (draw, channel, campaign_type): the draw's attributed credit minus the point fit's.

    A draw's removal effect is its rollout at spend multiple 1 (mean incremental
    conversions per day) times ``n_days``; centred on the draws' mean as
    :func:`journeynet.attribution.tables.funnel_table` centres its interval, and scaled by
    the table's observed / model-expected ratio.
    """
    if funnel is None or n_days is None:
        raise ValueError("draws for the exposure and daily methods need the funnel table and the number of days")
    at_one = draw_points[np.isclose(draw_points["spend_multiple"], 1.0)]
    if at_one.empty:
        raise SettingError(MULTIPLE_ONE)
    effect = at_one.set_index(["draw", "channel", "campaign_type"])["expected_conversions"] * n_days
    centred = effect - effect.groupby(["channel", "campaign_type"]).transform("mean")
    raw = funnel["removal_effect"].to_numpy(float)
    ok = np.abs(raw) > 1e-12
    scale = float(np.median(funnel["attributed_conversions"].to_numpy(float)[ok] / raw[ok])) if ok.any() else 1.0
    return centred * scale


def _pooled(funnel: pd.DataFrame, daily: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Each spend unit's attributed conversions over the window (0 for a unit the engine left out)."""
    value = {(c, k): float(v) for c, k, v in zip(funnel["channel"], funnel["campaign_type"],
                                                  funnel["attributed_conversions"].fillna(0.0), strict=True)}
    return {u: value.get(u, 0.0) for u in zip(daily["channel"], daily["campaign_type"], strict=True)}
