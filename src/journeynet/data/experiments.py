"""Lift-test experiments as data (``data.experiments=PATH``): read and validate against the spend.

One row per incrementality test: the paid unit (``channel`` plus ``campaign_type``, an
empty ``campaign_type`` meaning every unit of the channel) was switched off for a
held-out group from ``start`` to ``end``; ``incremental_conversions`` is what the test
estimated the unit caused in the whole market over that window plus ``lag_days``, with
its ``standard_error``. Every problem is one line naming the file, the row (1 = the first
data row) and the column, raised as :class:`journeynet.errors.InputError`.

Quickstart::

    from journeynet.data.experiments import load_experiments
    experiments = load_experiments("lift_tests.csv", spend)  # spend: canonical spend frame
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from journeynet.errors import InputError

REQUIRED = ["channel", "campaign_type", "start", "end", "incremental_conversions", "standard_error"]
COLUMNS = [*REQUIRED, "lag_days", "name"]


def load_experiments(path: str | Path, spend: pd.DataFrame | None) -> pd.DataFrame:
    """Read the experiments file and check every row against the spend's units and dates.

    Parameters
    ----------
    path
        CSV or Parquet file with the contract's columns.
    spend
        The canonical spend frame (``date``, ``channel``, ``campaign_type``, ``spend``);
        experiments need spend, since the model's counterfactual switches it off.

    Returns
    -------
    pandas.DataFrame
        The contract's columns, ``start``/``end`` as timestamps, ``lag_days`` as int and
        ``name`` filled (``channel/campaign_type start..end`` when not given).
    """
    from journeynet.data.inputs import read_table, resolve_path

    p = resolve_path(path)
    if spend is None:
        raise InputError(f"experiments file {p}: experiments need spend data (data.spend)")
    raw = read_table(p, "experiments")
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        raise InputError(f"experiments file {p}: missing column(s) {', '.join(missing)} "
                         f"(expected {', '.join(COLUMNS)})")
    out = pd.DataFrame({
        "channel": raw["channel"].fillna("").astype(str).str.strip(),
        "campaign_type": raw["campaign_type"].fillna("").astype(str).str.strip(),
        "start": _dates(raw, "start", p), "end": _dates(raw, "end", p),
        "incremental_conversions": _numbers(raw, "incremental_conversions", p),
        "standard_error": _numbers(raw, "standard_error", p),
        "lag_days": _numbers(raw, "lag_days", p) if "lag_days" in raw else 0.0,
        "name": raw["name"].fillna("").astype(str) if "name" in raw else "",
    })
    _check_rows(out, spend, p)
    out["lag_days"] = out["lag_days"].astype(int)
    default = (out["channel"] + "/" + out["campaign_type"] + " " + out["start"].dt.strftime("%Y-%m-%d")
               + ".." + out["end"].dt.strftime("%Y-%m-%d"))
    out["name"] = out["name"].where(out["name"].str.len() > 0, default)
    return out.reset_index(drop=True)


def _dates(raw: pd.DataFrame, col: str, path: Path) -> pd.Series:
    parsed = pd.to_datetime(raw[col], errors="coerce").dt.normalize()
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        raise InputError(f"experiments file {path}, row {bad[0] + 1}, column '{col}': "
                         f"{_what(raw[col].iloc[bad[0]], 'a date')}")
    return parsed


def _numbers(raw: pd.DataFrame, col: str, path: Path) -> pd.Series:
    values = raw[col].fillna(0) if col == "lag_days" else raw[col]
    parsed = pd.to_numeric(values, errors="coerce")
    bad = np.flatnonzero(~np.isfinite(parsed.to_numpy(dtype=float)))
    if bad.size:
        raise InputError(f"experiments file {path}, row {bad[0] + 1}, column '{col}': "
                         f"{_what(raw[col].iloc[bad[0]], 'a finite number')}")
    return parsed.astype(float)


def _window_spend(spend: pd.DataFrame, row: object) -> float:
    dates = pd.to_datetime(spend["date"]).dt.normalize()
    unit = spend["channel"].astype(str) == row.channel
    if row.campaign_type:
        unit &= spend["campaign_type"].astype(str) == row.campaign_type
    return float(spend.loc[unit & (dates >= row.start) & (dates <= row.end), "spend"].sum())


def _what(value: object, kind: str) -> str:
    return "missing value" if pd.isna(value) else f"not {kind}: {value!r}"


def _check_rows(exp: pd.DataFrame, spend: pd.DataFrame, path: Path) -> None:
    """Unknown unit, end before start, non-positive standard error, window outside the spend's dates."""
    units = set(zip(spend["channel"].astype(str), spend["campaign_type"].astype(str), strict=True))
    channels = {c for c, _ in units}
    first, last = pd.Timestamp(spend["date"].min()).normalize(), pd.Timestamp(spend["date"].max()).normalize()
    for i, row in enumerate(exp.itertuples(index=False), start=1):
        where = f"experiments file {path}, row {i}"
        if row.campaign_type and (row.channel, row.campaign_type) not in units:
            raise InputError(f"{where}, columns 'channel'/'campaign_type': unknown paid unit "
                             f"{row.channel}/{row.campaign_type} (not in the spend data)")
        if not row.campaign_type and row.channel not in channels:
            raise InputError(f"{where}, column 'channel': unknown paid channel {row.channel!r} "
                             f"(not in the spend data)")
        if row.end < row.start:
            raise InputError(f"{where}, column 'end': {row.end:%Y-%m-%d} is before start {row.start:%Y-%m-%d}")
        if row.standard_error <= 0:
            raise InputError(f"{where}, column 'standard_error': must be > 0, got {row.standard_error:g}")
        if row.lag_days < 0 or row.lag_days != int(row.lag_days):
            raise InputError(f"{where}, column 'lag_days': must be a whole number >= 0, got {row.lag_days:g}")
        counted = row.end + pd.Timedelta(days=int(row.lag_days))
        if row.start < first or counted > last:
            raise InputError(f"{where}, columns 'start'/'end': window {row.start:%Y-%m-%d}..{counted:%Y-%m-%d} "
                             f"(lag included) is outside the data ({first:%Y-%m-%d}..{last:%Y-%m-%d})")
        if _window_spend(spend, row) <= 0:
            raise InputError(f"{where}, columns 'start'/'end': {row.channel}/{row.campaign_type or '*'} has no "
                             f"spend from {row.start:%Y-%m-%d} to {row.end:%Y-%m-%d}: nothing was switched off")
