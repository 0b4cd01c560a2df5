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


def _infer_format(text: pd.Series, dayfirst: bool | None) -> tuple[str | None, str]:
    """One format for a whole column of date strings, and how it was chosen.

    ISO-8601 (``2024-05-12 10:00``) is unambiguous and wins when the first value has it.
    Otherwise the first value's layout is guessed month-first and day-first; when both read
    every row, month-first is kept (pandas' convention) unless ``dayfirst`` says otherwise.
    """
    first = str(text.iloc[0])
    if pd.Series([first]).str.contains(_ISO_START).iloc[0]:
        return "ISO8601", "ISO-8601, inferred from data row 1"
    from pandas.tseries.api import guess_datetime_format

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        options = [True] if dayfirst else [False] if dayfirst is not None else [False, True]
        guesses = list(dict.fromkeys(g for d in options if (g := guess_datetime_format(first, dayfirst=d))))
    if len(guesses) <= 1:
        return (guesses[0] if guesses else None), "inferred from data row 1"
    failures = [int(pd.to_datetime(text, format=g, errors="coerce").isna().sum()) for g in guesses]
    if failures[0] == 0 and failures[1] == 0:
        log.warning("dates like '%s' read month-first (%s) as every row allows it; set "
                    "data.dayfirst=true if the day comes first", first, guesses[0])
    best = int(np.argmin(failures))
    return guesses[best], f"inferred from data row 1, {'day' if best else 'month'}-first"


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
        parsed = pd.to_datetime(raw, utc=True)
        if parsed.isna().any():
            raise InputError(f"{what} file {path}: column '{col}' has {int(parsed.isna().sum())} empty "
                             f"{kind} (first at data row {first_row(parsed.isna())})")
    else:
        text = raw.astype("string").str.strip()
        blank = text.isna() | (text == "")
        if blank.any():
            raise InputError(f"{what} file {path}: column '{col}' has {int(blank.sum())} empty {kind} "
                             f"(first at data row {first_row(blank)})")
        how = f"data.timestamp_format={fmt}" if fmt else ""
        if not fmt:
            fmt, how = _infer_format(text, dayfirst)
        if fmt is None:
            raise InputError(f"{what} file {path}: column '{col}' has {kind} in no known format "
                             f"(first: '{text.iloc[0]}' at data row 1); {hint}")
        parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc=True)
        bad = parsed.isna()
        if bad.any():
            raise InputError(
                f"{what} file {path}: column '{col}' data row {first_row(bad)} ('{text[bad].iloc[0]}') "
                f"does not match the column's format {fmt} ({how}); {int(bad.sum())} of {len(text)} rows "
                f"differ; {hint}")
    return parsed.dt.tz_localize(None).astype("datetime64[ns]")
