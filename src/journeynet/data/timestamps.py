"""Parse a column of timestamps with one format for the whole column.

Mixed layouts are refused rather than guessed row by row: a per-row guess reads
``12/05/2024`` as 5 December in one row and 12 May in the next, silently, so a file
in ISO-8601 with a day-first row in between must stop and name that row.

Quickstart
----------
>>> import pandas as pd
>>> parse_timestamps(pd.Series(["25/05/2024 10:00", "01/06/2024 09:30"]), "touchpoints", "t.csv",
...                  "timestamp", "timestamps").dt.day.tolist()
[25, 1]
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from journeynet.errors import InputError

log = logging.getLogger(__name__)

_ISO_START = r"^\d{4}-\d{2}-\d{2}"


def first_row(mask: pd.Series | np.ndarray) -> int:
    """1-based data row of the first True in ``mask`` (the header is not a data row)."""
    return int(np.flatnonzero(np.asarray(mask))[0]) + 1


def _parse(text: pd.Series, fmt: str) -> pd.Series:
    """``text`` parsed with ``fmt`` to naive UTC; NaT where a value does not match."""
    return pd.to_datetime(text, format=fmt, errors="coerce", utc=True).dt.tz_localize(None)


def _parse_inferred(text: pd.Series, dayfirst: bool | None) -> tuple[pd.Series, str | None, str]:
    """Parse with one format inferred from the first value; returns values, format and how it was chosen.

    ISO-8601 (``2024-05-12 10:00``) is unambiguous and wins when the first value has it (rows
    of other ISO precisions, ``2024-05-12``, still count as ISO-8601). Otherwise the first
    value's layout is guessed month-first and day-first; the column decides between them:
    the one that reads every row, month-first (pandas' convention) with a warning when every
    day is 12 or less so both would, unless ``dayfirst`` says otherwise.
    """
    from pandas.tseries.api import guess_datetime_format

    first = str(text.iloc[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if pd.Series([first]).str.contains(_ISO_START).iloc[0]:
            exact = guess_datetime_format(first) or "ISO8601"
            parsed = _parse(text, exact)  # an exact layout parses faster than pandas' ISO8601 mode
            retry = parsed.isna()
            if retry.any():
                parsed[retry] = _parse(text[retry], "ISO8601")
            return parsed, "ISO8601", "ISO-8601, inferred from data row 1"
        options = [True] if dayfirst else [False] if dayfirst is not None else [False, True]
        guesses = list(dict.fromkeys(g for d in options if (g := guess_datetime_format(first, dayfirst=d))))
    if not guesses:
        return pd.Series(pd.NaT, index=text.index), None, ""
    parsed = _parse(text, guesses[0])
    if len(guesses) == 1:
        return parsed, guesses[0], "inferred from data row 1"
    if not parsed.isna().any():
        if not (parsed.dt.day > 12).any():
            log.warning("dates like '%s' read month-first (%s) as every row allows it; set "
                        "data.dayfirst=true if the day comes first", first, guesses[0])
        return parsed, guesses[0], "inferred from data row 1, month-first"
    day_first = _parse(text, guesses[1])
    if day_first.isna().sum() < parsed.isna().sum():
        return day_first, guesses[1], "inferred from data row 1, day-first"
    return parsed, guesses[0], "inferred from data row 1, month-first"


def _blank(value: object) -> bool:
    """Whether a cell is empty (missing or whitespace)."""
    return value is None or pd.isna(value) or str(value).strip() == ""


def _raise_blank(blank: pd.Series, what: str, path: Path | str, col: str, kind: str) -> None:
    """Raise naming the first empty value, if any."""
    if blank.any():
        raise InputError(f"{what} file {path}: column '{col}' has {int(blank.sum())} empty {kind} "
                         f"(first at data row {first_row(blank)})")


def parse_timestamps(raw: pd.Series, what: str, path: Path | str, col: str, kind: str,
                     fmt: str | None = None, dayfirst: bool | None = None) -> pd.Series:
    """Parse to naive UTC ``datetime64[ns]`` with one format for the whole column.

    Mixed layouts are refused rather than guessed row by row: a per-row guess reads
    ``12/05`` as 5 December in one row and 12 May in the next, silently. ``fmt`` (a
    strftime format or ``"ISO8601"``) is used when given, else the format is inferred.
    """
    hint = ("set data.timestamp_format (e.g. '%d/%m/%Y %H:%M') or data.dayfirst=true"
            if what == "touchpoints" else "write the dates as YYYY-MM-DD")
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = pd.to_datetime(raw, utc=True).dt.tz_localize(None)
        if parsed.isna().any():
            raise InputError(f"{what} file {path}: column '{col}' has {int(parsed.isna().sum())} empty "
                             f"{kind} (first at data row {first_row(parsed.isna())})")
    else:
        text = raw if pd.api.types.is_string_dtype(raw) else raw.astype("string")
        if _blank(text.iloc[0]):  # no first value to infer the format from
            _raise_blank(text.isna() | (text.astype("string").str.strip() == ""), what, path, col, kind)
        if fmt:
            parsed, how = _parse(text, fmt), f"data.timestamp_format={fmt}"
        else:
            parsed, fmt, how = _parse_inferred(text, dayfirst)
        if fmt is None:
            raise InputError(f"{what} file {path}: column '{col}' has {kind} in no known format "
                             f"(first: '{text.iloc[0]}' at data row 1); {hint}")
        bad = parsed.isna()
        if bad.any():  # blanks are looked for only now: stripping every row costs as much as parsing
            _raise_blank(text.isna() | (text.astype("string").str.strip() == ""), what, path, col, kind)
            raise InputError(
                f"{what} file {path}: column '{col}' data row {first_row(bad)} ('{text[bad].iloc[0]}') "
                f"does not match the column's format {fmt} ({how}); {int(bad.sum())} of {len(text)} rows "
                f"differ; {hint}")
    return parsed.astype("datetime64[ns]")
