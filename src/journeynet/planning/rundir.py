"""Read and validate everything ``optimize.py`` takes from a ``train.py`` run dir.

Every file is checked before any output is written: a corrupt or incomplete file
stops the run with one line that names the file (and the column or row), never a
traceback from deep inside the optimizer.

Files read: ``response_curves.csv`` (required), ``daily_units.csv`` (required: the
current spend), ``attribution.csv`` (required), ``response_points.csv``,
``response_draws.csv``, ``metrics.json`` and ``model_checks.csv`` (each optional).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from journeynet.data.inputs import read_table
from journeynet.errors import InputError
from journeynet.planning.response import HillCurve

log = logging.getLogger(__name__)
Unit = tuple[str, str]
CURVE_PARAMS = ("beta", "k", "a")
CHECK_COLUMNS = ("date", "series", "observed", "predicted", "predicted_low", "predicted_high", "period")
CHECK_PERIODS = ("normal", "dark", "pulse", "holdout")


@dataclass
class TrainRun:
    """What a train run offers the planner, validated."""

    path: Path
    curves: pd.DataFrame
    daily: pd.DataFrame
    attribution: pd.DataFrame
    points: pd.DataFrame | None = None
    draws: pd.DataFrame | None = None
    metrics: dict[str, Any] | None = None
    checks: pd.DataFrame | None = None

    @property
    def method(self) -> str:
        """The response-curve method the run used."""
        return str(self.curves["method"].iloc[0]) if "method" in self.curves else "unknown"

    def hill_curves(self) -> dict[Unit, HillCurve]:
        """``response_curves.csv`` rows as curve objects."""
        return {(r.channel, r.campaign_type): HillCurve(float(r.beta), float(r.k), float(r.a))
                for r in self.curves.itertuples()}

    def draw_curves(self) -> list[dict[Unit, HillCurve]]:
        """One curve set per posterior draw of ``response_draws.csv`` (empty without it)."""
        if self.draws is None:
            return []
        return [{(r.channel, r.campaign_type): HillCurve(float(r.beta), float(r.k), float(r.a))
                 for r in g.itertuples()} for _, g in self.draws.groupby("draw", sort=True)]

    def revenue_per_conversion(self) -> dict[Unit, float] | None:
        """Revenue per conversion per unit, or None when the run did not record it."""
        if "revenue_per_conversion" not in self.curves:
            return None
        return {(r.channel, r.campaign_type): float(r.revenue_per_conversion) for r in self.curves.itertuples()}


def _need(df: pd.DataFrame, cols: tuple[str, ...] | list[str], path: Path) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}; found "
                         f"{', '.join(map(str, df.columns[:12]))}")


def _units(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df["channel"] = df["channel"].astype(str)
    df["campaign_type"] = df["campaign_type"].fillna("").astype(str)
    return df


def numeric_column(df: pd.DataFrame, col: str, path: Path | str, *, positive: bool = False,
                   nonnegative: bool = False, allow_nan: bool = False) -> pd.Series:
    """``df[col]`` as floats, or one line naming the file, row and column of the first bad value."""
    raw_missing = df[col].isna()
    values = pd.to_numeric(df[col], errors="coerce").astype(float)
    bad = (values.isna() & ~raw_missing) | np.isinf(values)
    if not allow_nan:
        bad |= raw_missing
    if positive:
        bad |= values.notna() & (values <= 0)
    if nonnegative:
        bad |= values.notna() & (values < 0)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        need = "a number > 0" if positive else "a number >= 0" if nonnegative else "a finite number"
        raise InputError(f"{path}: row {i + 1} (line {i + 2}), column {col}: {df[col].iloc[i]!r} "
                         f"is not {need}")
    return values.astype(float)


def _curves(path: Path) -> pd.DataFrame:
    df = read_table(path, "response curves")
    _need(df, ("channel", "campaign_type", *CURVE_PARAMS, "spend_max"), path)
    df = _units(df)
    for col, rule in (("beta", "nonnegative"), ("k", "positive"), ("a", "positive"), ("spend_max", "nonnegative")):
        df[col] = numeric_column(df, col, path, **{rule: True})
    for col in ("spend_min", "spend_mean", "revenue_per_conversion"):
        if col in df:
            df[col] = numeric_column(df, col, path, nonnegative=True, allow_nan=True)
    dup = df.duplicated(["channel", "campaign_type"])
    if dup.any():
        r = df[dup].iloc[0]
        raise InputError(f"{path}: unit {r.channel}/{r.campaign_type} appears more than once")
    return df


def _daily(path: Path) -> pd.DataFrame:
    df = read_table(path, "daily units")
    _need(df, ("date", "channel", "campaign_type", "spend"), path)
    df = _units(df)
    dates = pd.to_datetime(df["date"], errors="coerce")
    if dates.isna().any():
        i = int(np.flatnonzero(dates.isna().to_numpy())[0])
        raise InputError(f"{path}: row {i + 1} (line {i + 2}), column date: {df['date'].iloc[i]!r} is not a date")
    df["date"] = dates
    df["spend"] = numeric_column(df, "spend", path, nonnegative=True)
    return df


def _attribution(path: Path) -> pd.DataFrame:
    df = read_table(path, "attribution")
    _need(df, ("channel", "campaign_type", "attributed_conversions", "paid"), path)
    df = _units(df)
    paid = df["paid"].astype(str).str.lower().map({"true": True, "false": False, "1": True, "0": False,
                                                   "1.0": True, "0.0": False})
    if paid.isna().any():
        i = int(np.flatnonzero(paid.isna().to_numpy())[0])
        raise InputError(f"{path}: row {i + 1} (line {i + 2}), column paid: {df['paid'].iloc[i]!r} is not true/false")
    df["paid"] = paid.astype(bool)
    numeric = [c for c in df.columns if c not in ("channel", "campaign_type", "paid", "note")]
    for col in numeric:
        df[col] = numeric_column(df, col, path, allow_nan=True)
    return df


def _points(path: Path) -> pd.DataFrame:
    df = read_table(path, "response points")
    _need(df, ("channel", "campaign_type", "spend_multiple", "expected_conversions"), path)
    df = _units(df)
    for col in ("spend_multiple", "expected_conversions"):
        df[col] = numeric_column(df, col, path)
    return df


def _draws(path: Path, curves: pd.DataFrame) -> pd.DataFrame:
    df = read_table(path, "response draws")
    _need(df, ("draw", "channel", "campaign_type", *CURVE_PARAMS), path)
    df = _units(df)
    df["draw"] = numeric_column(df, "draw", path, nonnegative=True).astype(int)
    for col, rule in (("beta", "nonnegative"), ("k", "positive"), ("a", "positive")):
        df[col] = numeric_column(df, col, path, **{rule: True})
    want = set(zip(curves["channel"], curves["campaign_type"], strict=True))
    for d, g in df.groupby("draw"):
        have = list(zip(g["channel"], g["campaign_type"], strict=True))
        if len(set(have)) != len(have) or set(have) != want:
            odd = sorted(set(have) ^ want) or [have[0]]
            raise InputError(f"{path}: draw {d} does not hold exactly one curve per unit of "
                             f"response_curves.csv (first mismatch: {odd[0][0]}/{odd[0][1]})")
    return df


def _metrics(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object, found {type(data).__name__}")
    mc = data.get("model_checks")
    if mc is not None:
        if not isinstance(mc, dict) or not isinstance(mc.get("passed"), bool):
            raise InputError(f"{path}: model_checks must be an object with a true/false 'passed'")
        if not isinstance(mc.get("failing_units", []), list) or not isinstance(mc.get("units", {}), dict):
            raise InputError(f"{path}: model_checks.failing_units must be a list and model_checks.units an object")
    return data


def _checks(path: Path) -> pd.DataFrame:
    df = read_table(path, "model checks")
    _need(df, CHECK_COLUMNS, path)
    dates = pd.to_datetime(df["date"], errors="coerce")
    if dates.isna().any():
        i = int(np.flatnonzero(dates.isna().to_numpy())[0])
        raise InputError(f"{path}: row {i + 1} (line {i + 2}), column date: {df['date'].iloc[i]!r} is not a date")
    df["date"] = dates
    df["series"] = df["series"].astype(str)
    for col in ("observed", "predicted", "predicted_low", "predicted_high"):
        df[col] = numeric_column(df, col, path, allow_nan=col != "predicted")
    bad = ~df["period"].astype(str).isin(CHECK_PERIODS)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"{path}: row {i + 1} (line {i + 2}), column period: {df['period'].iloc[i]!r} "
                         f"is not one of {', '.join(CHECK_PERIODS)}")
    df["period"] = df["period"].astype(str)
    return df.sort_values(["series", "date"]).reset_index(drop=True)


def load_run(run_dir: str | None) -> TrainRun:
    """Read and validate a ``train.py`` run dir.

    Parameters
    ----------
    run_dir : str or None
        The run directory.

    Returns
    -------
    TrainRun

    Raises
    ------
    InputError
        A required file is missing, or any file read is corrupt (the message names it).
    """
    if not run_dir:
        raise InputError("run_dir is not set: pass run_dir=DIR (a train.py run directory)")
    path = Path(run_dir)
    if not path.is_dir():
        raise InputError(f"run_dir not found: {run_dir}")
    curves_path = path / "response_curves.csv"
    if not curves_path.exists():
        raise InputError(f"{curves_path}: no response curves in this run; train.py writes them only with "
                         "spend data (data.spend=PATH)")
    curves = _curves(curves_path)
    run = TrainRun(path, curves, _daily(path / "daily_units.csv"), _attribution(path / "attribution.csv"))
    opt = {name: path / name for name in ("response_points.csv", "response_draws.csv", "metrics.json",
                                          "model_checks.csv")}
    if opt["response_points.csv"].exists():
        run.points = _points(opt["response_points.csv"])
    if opt["response_draws.csv"].exists():
        run.draws = _draws(opt["response_draws.csv"], curves)
    if opt["metrics.json"].exists():
        run.metrics = _metrics(opt["metrics.json"])
    if opt["model_checks.csv"].exists():
        run.checks = _checks(opt["model_checks.csv"])
    return run
