"""Read touchpoints and spend from CSV or Parquet into the canonical frames.

Every problem with a user's file is raised as :class:`journeynet.errors.InputError`
with one line naming the file and the column, so the entry points can print it
and exit non-zero.

Quickstart
----------
>>> from journeynet.data.inputs import load_spend
>>> spend = load_spend(sources=[{
...     "path": "data/netelixir_ads_2024/metaads-performance.csv",
...     "channel": "meta_ads", "campaign_type": "social",
...     "columns": {"date": "Date", "spend": "Cost"}}])
>>> round(float(spend["spend"].sum()), 1)
19679.4
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from journeynet.data import sources
from journeynet.data.timestamps import first_row, parse_timestamps
from journeynet.data.units import (  # noqa: F401  (re-exported: the data package's entry points)
    check_paid_channels,
    declared_paid_channels,
    join_single_campaign,
    snake_case,
    unmatched_units,
)
from journeynet.errors import InputError

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[3]
TOUCH_COLUMNS = ["customer_id", "timestamp", "channel", "campaign_type", "converted", "revenue"]
SPEND_OPTIONAL = ["impressions", "clicks", "conversions", "revenue"]
SPEND_COLUMNS = ["date", "channel", "campaign_type", "spend", *SPEND_OPTIONAL]
_TRUE = {"1", "1.0", "true", "t", "yes", "y"}
_FALSE = {"0", "0.0", "false", "f", "no", "n"}


@dataclass
class Inputs:
    """Everything a run reads: canonical frames plus the planted truth of synthetic data.

    ``touches`` answers the touchpoint-level questions (:mod:`journeynet.data.touchsource`):
    from ``touchpoints`` in memory, or, when a lake is streamed (:func:`streams_touchpoints`),
    from the files, and ``touchpoints`` is None.
    """

    touchpoints: pd.DataFrame | None
    spend: pd.DataFrame | None = None
    test_touchpoints: pd.DataFrame | None = None
    truth: dict | None = None
    paid_channels: list[str] = field(default_factory=list)  # declared by data.paid_channels
    unmatched: pd.DataFrame | None = None  # journey units on paid channels without spend
    experiments: pd.DataFrame | None = None  # lift tests (data.experiments), validated against the spend
    touches: Any = None  # a TouchSource; a TouchFrame of ``touchpoints`` when not given

    def __post_init__(self) -> None:
        if self.touches is None and self.touchpoints is not None:
            from journeynet.data.touchsource import TouchFrame

            self.touches = TouchFrame(self.touchpoints)


def resolve_path(path: str | Path) -> Path:
    """Return ``path``, or the same relative path under the project root when only that exists.

    Presets name files relative to the repository, and Hydra may run from elsewhere.
    """
    p = Path(path).expanduser()
    if not p.is_absolute() and not p.exists() and (PROJECT_ROOT / p).exists():
        return PROJECT_ROOT / p
    return p


def read_table(path: str | Path, what: str, **scan: Any) -> pd.DataFrame:
    """Read a CSV (``.csv``, ``.csv.gz``) or Parquet (``.parquet``, ``.pq``) file.

    Parameters
    ----------
    path : str or Path
        The file; a relative path missing from the cwd is looked up under the project root.
    what : str
        What the file holds ("touchpoints", "spend", ...), used in error messages.
    **scan
        For a directory or glob of Parquet files: :func:`journeynet.data.sources.read_dataset`'s
        column and date-range arguments.

    Returns
    -------
    pd.DataFrame
        The raw table with at least one row; missing, empty, header-only, unreadable
        or unsupported files raise :class:`InputError`.
    """
    p = resolve_path(path)
    if sources.is_dataset_path(p):
        return sources.read_dataset(p, what, **scan)
    if not p.is_file():
        raise InputError(f"{what} file not found: {path}")
    name = p.name.lower()
    if p.stat().st_size == 0:
        raise InputError(f"{what} file is empty (0 bytes): {p}")
    if name.endswith((".parquet", ".pq")):
        try:
            df = pd.read_parquet(p)
        except Exception as exc:  # pyarrow raises several unrelated types
            raise InputError(f"{what} file is not readable Parquet: {p} ({exc})") from exc
    elif name.endswith((".csv", ".csv.gz")):
        try:
            df = pd.read_csv(p, low_memory=False)
        except pd.errors.EmptyDataError as exc:
            raise InputError(f"{what} file is empty (no header): {p}") from exc
        except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"{what} file is not readable CSV: {p} ({first})") from exc
    else:
        raise InputError(
            f"{what} file has unsupported extension: {p} (use .csv, .csv.gz, .parquet or .pq)"
        )
    if len(df) == 0:
        raise InputError(f"{what} file has a header but no rows: {p}")
    return df


def _normalize_names(values: pd.Series, mapping: Mapping[str, str] | None) -> pd.Series:
    """Map names with ``mapping`` (keys are raw values), then snake_case; NaN becomes ""."""
    # Mapping and normalizing the few distinct values is far cheaper than every row.
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    uniq = pd.Series(np.asarray(uniques, dtype=object)).astype(str)
    if mapping:
        raw = {str(k): str(v) for k, v in mapping.items()}
        uniq = uniq.map(lambda v: raw.get(v, v))
    names = np.append(snake_case(uniq).to_numpy(dtype=object), "")  # code -1 (NaN) -> ""
    return pd.Series(names[codes], index=values.index, dtype="str")


def _select_columns(
    df: pd.DataFrame,
    mapping: Mapping[str, Any],
    required: Sequence[str],
    optional: Sequence[str],
    what: str,
    path: Path | str,
) -> dict[str, str]:
    """Map canonical -> source column for those present; raise if a required one is absent."""
    found: dict[str, str] = {}
    missing: list[str] = []
    for canon in [*required, *optional]:
        src = mapping.get(canon, canon)
        if src is not None and str(src) in df.columns:
            found[canon] = str(src)
        elif canon in required:
            missing.append(f"'{src}' (for {canon})")
    if missing:
        raise InputError(
            f"{what} file {path}: missing column(s) {', '.join(missing)}; "
            f"expected {[str(mapping.get(c, c)) for c in required]}, found {list(df.columns)}"
        )
    return found


def _parse_flag(raw: pd.Series, path: Path | str, col: str) -> pd.Series:
    """Parse a 0/1 or true/false column to int8."""
    if pd.api.types.is_bool_dtype(raw):
        return raw.astype("int8")
    text = raw.astype(str).str.strip().str.lower()
    ok = text.isin(_TRUE | _FALSE) & raw.notna()
    if not ok.all():
        raise InputError(
            f"touchpoints file {path}: column '{col}' must be 0/1 or true/false "
            f"(first bad value: '{raw[~ok].iloc[0]}')"
        )
    return text.isin(_TRUE).astype("int8")


def _parse_numeric(raw: pd.Series, what: str, path: Path | str, col: str) -> pd.Series:
    """Parse numbers, keeping blanks as NaN; raise on text that is not a number."""
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        return raw.astype("float64")
    num = pd.to_numeric(raw, errors="coerce")
    bad = num.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
    if bad.any():
        raise InputError(
            f"{what} file {path}: column '{col}' has {int(bad.sum())} non-numeric values "
            f"(first: '{raw[bad].iloc[0]}')"
        )
    return num.astype("float64")


def _check_not_empty(values: pd.Series, path: Path | str, col: str, label: str) -> None:
    """Raise when ids or names are blank, since they cannot be joined or grouped."""
    empty = values.isna() | (values.astype(str).str.strip() == "")
    if empty.any():
        first = int(np.flatnonzero(empty.to_numpy())[0]) + 1
        raise InputError(
            f"touchpoints file {path}: column '{col}' has {int(empty.sum())} empty {label} "
            f"(first at data row {first})"
        )


def _blank_channels(df: pd.DataFrame, converted: pd.Series, col: str, policy: str,
                    path: Path) -> tuple[pd.DataFrame, pd.Series]:
    """Apply ``data.blank_channel`` to rows whose channel is blank."""
    if policy not in ("error", "direct", "drop"):
        raise InputError(f"data.blank_channel must be error, direct or drop, got '{policy}'")
    values = df[col]
    blank = values.isna() | (values.astype(str).str.strip() == "")
    if not blank.any():
        return df, converted
    if policy == "error":
        raise InputError(f"touchpoints file {path}: column '{col}' has {int(blank.sum())} empty channels "
                         f"(first at data row {first_row(blank)}); set data.blank_channel=direct or drop")
    log.warning("touchpoints file %s: %d rows with a blank '%s' %s", path, int(blank.sum()), col,
                "read as direct" if policy == "direct" else "dropped")
    if policy == "drop":
        return df[~blank].reset_index(drop=True), converted[~blank].reset_index(drop=True)
    df = df.copy()
    df.loc[blank, col] = "direct"
    return df, converted


def _conversion_flags(
    df: pd.DataFrame, cols: Mapping[str, Any], conversion: Mapping | None, path: Path
) -> tuple[pd.Series, str]:
    """Return the int8 conversion flag and the source column it came from."""
    event_col = (conversion or {}).get("event_column")
    if event_col:
        found = _select_columns(df, {"event": event_col}, ["event"], [], "touchpoints", path)
        value = conversion.get("event_value", "purchase")  # type: ignore[union-attr]
        values = [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
        return df[found["event"]].astype(str).isin(values).astype("int8"), found["event"]
    flag_col = (conversion or {}).get("flag_column") or cols.get("converted", "converted")
    found = _select_columns(df, {"converted": flag_col}, ["converted"], [], "touchpoints", path)
    return _parse_flag(df[found["converted"]], path, found["converted"]), found["converted"]


def load_touchpoints(
    path: str | Path,
    columns: Mapping[str, str | None] | None = None,
    conversion: Mapping[str, Any] | None = None,
    channel_map: Mapping[str, str] | None = None,
    campaign_map: Mapping[str, str] | None = None,
    require_conversions: bool = True,
    timestamp_format: str | None = None,
    dayfirst: bool | None = None,
    blank_channel: str = "error",
    start: Any = None,
    end: Any = None,
) -> pd.DataFrame:
    """Read a touchpoints file into the canonical frame of ``notes/INTERFACES.md``.

    Parameters
    ----------
    path : str or Path
        CSV or Parquet file, one row per touchpoint.
    columns : mapping, optional
        Canonical name -> source column (identity by default; ``None`` means absent).
    conversion : mapping, optional
        ``{event_column: event_type, event_value: purchase}`` marks conversions by event
        rows; otherwise the flag column ``columns["converted"]`` (or ``flag_column``) is used.
    channel_map, campaign_map : mapping, optional
        Raw value -> canonical name; every value is then normalized to snake_case.
    require_conversions : bool
        Raise when no row converts (training needs positives; scoring does not).
    timestamp_format : str, optional
        One strftime format (or ``"ISO8601"``) for every timestamp; inferred when None.
    dayfirst : bool, optional
        Read ambiguous dates like ``05/12/2024`` day-first (True) or month-first (False).
    blank_channel : {"error", "direct", "drop"}
        What a touch with a blank channel becomes: an error, a ``direct`` touch, or nothing.
    start, end : date-like, optional
        Keep touches in ``[start, end]`` (``data.start`` / ``data.end``).

    Returns
    -------
    pd.DataFrame
        customer_id, timestamp, channel, campaign_type, converted, revenue,
        sorted by customer_id then timestamp (file order kept for ties).
    """
    cols = dict(columns or {})
    df = read_table(path, "touchpoints", **sources.touch_scan(cols, conversion, start, end))
    p = resolve_path(path)
    found = _select_columns(
        df, cols, ["customer_id", "timestamp", "channel"], ["campaign_type", "revenue"],
        "touchpoints", p,
    )
    converted, conv_col = _conversion_flags(df, cols, conversion, p)
    if require_conversions and not converted.any():
        raise InputError(f"touchpoints file {p}: column '{conv_col}' marks no conversions")
    _check_not_empty(df[found["customer_id"]], p, found["customer_id"], "customer ids")
    df, converted = _blank_channels(df, converted, found["channel"], blank_channel, p)
    col = found.get
    campaign = df[col("campaign_type")] if col("campaign_type") else pd.Series("", df.index)
    revenue = pd.Series(0.0, df.index)
    if col("revenue"):
        revenue = _parse_numeric(df[col("revenue")], "touchpoints", p, col("revenue")).fillna(0.0)
    out = pd.DataFrame({
        "customer_id": df[col("customer_id")].astype(str).str.strip(),
        "timestamp": parse_timestamps(
            df[col("timestamp")], "touchpoints", p, col("timestamp"), "timestamps", timestamp_format, dayfirst),
        "channel": _normalize_names(df[col("channel")], channel_map),
        "campaign_type": _normalize_names(campaign, campaign_map),
        "converted": converted,
        "revenue": revenue,
    })
    out = sources.within_dates(out, "timestamp", start, end, "touchpoints", p)
    dup = out.duplicated()
    if dup.any():
        log.warning("touchpoints file %s: dropped %d exact duplicate rows", p, int(dup.sum()))
        out = out[~dup]
    # Sorting integer codes is several times faster than pandas' sort on string columns.
    codes, _ = pd.factorize(out["customer_id"], sort=True)
    order = np.lexsort((out["timestamp"].to_numpy(), codes))  # stable: ties keep file order
    return out.take(order).reset_index(drop=True)


def _read_spend_source(
    source: Mapping[str, Any],
    columns: Mapping[str, Any],
    channel_map: Mapping[str, str] | None,
    campaign_map: Mapping[str, str] | None,
    start: Any = None,
    end: Any = None,
) -> pd.DataFrame:
    """Read one spend file into canonical columns (not yet aggregated)."""
    if not source.get("path"):
        raise InputError(f"spend source {dict(source)} has no 'path'")
    cols = {**columns, **(source.get("columns") or {})}
    names = ("channel", "campaign_type")
    constants = {k: source[k] for k in names if source.get(k) is not None}
    df = read_table(source["path"], "spend", **sources.spend_scan(cols, list(constants), SPEND_OPTIONAL, start, end))
    p = resolve_path(source["path"])
    required = ["date", "spend"] + [k for k in names if k not in constants]
    found = _select_columns(df, cols, required, SPEND_OPTIONAL, "spend", p)
    out = pd.DataFrame(index=df.index)
    dates = parse_timestamps(df[found["date"]], "spend", p, found["date"], "dates")
    out["date"] = dates.dt.floor("D")
    for key, name_map in (("channel", channel_map), ("campaign_type", campaign_map)):
        raw = pd.Series(constants[key], df.index) if key in constants else df[found[key]]
        out[key] = _normalize_names(raw, name_map)
    for key in ["spend", *SPEND_OPTIONAL]:
        found_col = found.get(key)
        out[key] = _parse_numeric(df[found_col], "spend", p, found_col) if found_col else np.nan
    if out["spend"].isna().any():
        log.warning("spend file %s: blank '%s' values read as 0", p, found["spend"])
        out["spend"] = out["spend"].fillna(0.0)
    neg = out["spend"] < 0
    if neg.any():
        first = out[neg].iloc[0]
        raise InputError(
            f"spend file {p}: column '{found['spend']}' has {int(neg.sum())} negative values "
            f"(first: {first['spend']:g} on {first['date']:%Y-%m-%d}, "
            f"{first['channel']}/{first['campaign_type']})"
        )
    out = sources.within_dates(out, "date", start, end, "spend", p)
    out.attrs["path"] = str(p)
    return out


def load_spend(
    path: str | Path | None = None,
    sources: Sequence[Mapping[str, Any]] | None = None,
    columns: Mapping[str, str | None] | None = None,
    channel_map: Mapping[str, str] | None = None,
    campaign_map: Mapping[str, str] | None = None,
    start: Any = None,
    end: Any = None,
) -> pd.DataFrame:
    """Read spend from one canonical file or several platform exports.

    Parameters
    ----------
    path : str or Path, optional
        A single file with ``date, channel, campaign_type, spend`` (+ optional metrics).
    sources : sequence of mapping, optional
        Each ``{path, channel?, campaign_type?, columns?}``; ``channel`` and
        ``campaign_type`` are constants for exports that lack those columns.
    columns : mapping, optional
        Canonical -> source column, the default for every source.
    channel_map, campaign_map : mapping, optional
        Raw value -> canonical name, then snake_case.
    start, end : date-like, optional
        Keep days in ``[start, end]`` (``data.start`` / ``data.end``).

    Returns
    -------
    pd.DataFrame
        Canonical spend summed per (date, channel, campaign_type), sorted.
    """
    if (path is None) == (not sources):
        raise InputError("spend: set exactly one of data.spend=PATH or data.spend_sources")
    srcs = [{"path": path}] if path is not None else list(sources or [])
    parts = [_read_spend_source(s, dict(columns or {}), channel_map, campaign_map, start, end) for s in srcs]
    paths = ", ".join(p.attrs["path"] for p in parts)
    spend = pd.concat(parts, ignore_index=True)
    if not (spend["spend"] > 0).any():
        raise InputError(f"spend data ({paths}): column 'spend' is zero on every row")
    keys = ["date", "channel", "campaign_type"]
    spend = spend.groupby(keys)[["spend", *SPEND_OPTIONAL]].sum(min_count=1).reset_index()
    spend["spend"] = spend["spend"].fillna(0.0)
    return spend[SPEND_COLUMNS]


def touch_kwargs(c: Mapping[str, Any]) -> dict[str, Any]:
    """The :func:`load_touchpoints` settings of a ``data`` config."""
    kw = {k: c.get(k) for k in ("columns", "conversion", "channel_map", "campaign_map",
                                "timestamp_format", "dayfirst", "start", "end")}
    kw["blank_channel"] = c.get("blank_channel") or "error"
    return kw


def streams_touchpoints(c: Mapping[str, Any]) -> bool:
    """Whether a run streams its touchpoint files instead of holding the frame (``data.stream``).

    ``auto``: when the journeys come from a journey store (``data.journeys``, ``data.engine=dask``
    or ``data.workers`` > 1) and the touchpoints from files: nothing else then needs the frame.
    """
    setting = str(c.get("stream", "auto")).lower()
    if setting not in ("auto", "true", "false"):
        raise InputError(f"data.stream must be auto, true or false, got '{c.get('stream')}'")
    if setting == "false" or not c.get("touchpoints"):
        return False
    store = bool(c.get("journeys")) or (c.get("engine") or "local") != "local" or int(c.get("workers") or 1) != 1
    if setting == "true" and not store:
        raise InputError("data.stream=true needs a journey store (data.journeys=DIR): the journeys are "
                         "otherwise built from the frame in memory")
    return store


def load_inputs(cfg: Any, funnel_sample: tuple[int | None, int] | None = None) -> Inputs:
    """Load everything the ``data`` config names (a DictConfig or a dict).

    ``funnel_sample`` (``max_sequences``, ``seed``): when the touchpoints are streamed, the
    funnel's customer sample kept in the same pass.

    Returns
    -------
    Inputs
        Touchpoints, optional spend and test touchpoints, and ``truth`` for synthetic data.
    """
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg, DictConfig):
        # `generate` names the run dir, which exists only inside a Hydra run: resolve it only when used
        skip = {"generate"} if cfg.get("touchpoints") else set()
        c = {k: None if k in skip else OmegaConf.to_container(cfg[k], resolve=True)
             if OmegaConf.is_config(cfg[k]) else cfg[k] for k in cfg}
    else:
        c = dict(cfg)
    # the contract's `train.py data.touchpoints=PATH` must read files even under the default preset
    if c.get("source") == "synthetic" and not c.get("touchpoints"):
        from journeynet.synthetic.simulate import SimConfig, simulate

        sim = simulate(SimConfig(**(c.get("synthetic") or {})))
        # a held-out file is read under the generated world too; otherwise the test split is of its customers
        test = load_touchpoints(c["test_touchpoints"], **touch_kwargs(c)) if c.get("test_touchpoints") else None
        return Inputs(sim.touchpoints, sim.spend, test, sim.truth, experiments=_experiments(c, sim.spend))
    stream = streams_touchpoints(c)  # before a generated file names data.touchpoints: it is then read whole
    if not c.get("touchpoints") and c.get("generate") and (c.get("spend") or c.get("spend_sources")):
        from journeynet.data.landings import write_landings

        g = c["generate"]
        spend = load_spend(c.get("spend") or None, c.get("spend_sources") or None, c.get("spend_columns"),
                           c.get("channel_map"), c.get("campaign_map"))
        c["touchpoints"] = str(write_landings(spend, g["path"], int(g.get("pool", 60_000)), int(g.get("seed", 0))))
    if not c.get("touchpoints"):
        raise InputError("data.touchpoints is not set: pass data.touchpoints=PATH")
    if stream:
        return _streamed_inputs(c, funnel_sample)
    kw = touch_kwargs(c)
    touchpoints = load_touchpoints(c["touchpoints"], **kw)
    test = load_touchpoints(c["test_touchpoints"], **kw) if c.get("test_touchpoints") else None
    paid = declared_paid_channels(c, touchpoints)
    spend, unmatched = _config_spend(c), None
    if spend is not None:
        touchpoints = join_single_campaign(touchpoints, spend)
        test = join_single_campaign(test, spend) if test is not None else None
        check_paid_channels(touchpoints, spend)
        unmatched = unmatched_units(touchpoints, spend, paid, bool(c.get("strict_units")))
    return Inputs(touchpoints, spend, test, None, paid, unmatched, _experiments(c, spend))


def _streamed_inputs(c: dict[str, Any], funnel_sample: tuple[int | None, int] | None) -> Inputs:
    """:func:`load_inputs` without the frame: the spend first, then one pass over the touchpoint files."""
    from journeynet.data.touchsource import TouchLake
    from journeynet.data.units import unmatched_from_counts

    spend = _config_spend(c)
    touches = TouchLake(c, spend, funnel_sample)
    if not touches.conversions:
        conv = sources.touch_scan(dict(c.get("columns") or {}), c.get("conversion"))["columns"][-1]
        raise InputError(f"touchpoints file {resolve_path(c['touchpoints'])}: column '{conv}' marks no conversions")
    units = touches.units()
    test = load_touchpoints(c["test_touchpoints"], **touch_kwargs(c)) if c.get("test_touchpoints") else None
    paid = declared_paid_channels(c, units)
    unmatched = None
    if spend is not None:
        test = join_single_campaign(test, spend) if test is not None else None
        check_paid_channels(units, spend)
        unmatched = unmatched_from_counts(units, spend, paid, bool(c.get("strict_units")))
    return Inputs(None, spend, test, None, paid, unmatched, _experiments(c, spend), touches=touches)


def _config_spend(c: Mapping[str, Any]) -> pd.DataFrame | None:
    """The spend ``data.spend`` or ``data.spend_sources`` names, within ``data.start`` / ``data.end``; None without."""
    if not (c.get("spend") or c.get("spend_sources")):
        return None
    return load_spend(c.get("spend") or None, c.get("spend_sources") or None, c.get("spend_columns"),
                      c.get("channel_map"), c.get("campaign_map"), c.get("start"), c.get("end"))


def _experiments(c: Mapping[str, Any], spend: pd.DataFrame | None) -> pd.DataFrame | None:
    """The lift tests ``data.experiments`` names, or None."""
    if not c.get("experiments"):
        return None
    from journeynet.data.experiments import load_experiments

    return load_experiments(c["experiments"], spend)
