"""A user's own allocation (``optimize.py scenario=FILE``): read it strictly, then score it.

A row the curves do not know (a misspelled channel, say) is an error, never a row
silently dropped from the total; a unit missing from the file counts as zero spend and
is listed among the broken constraints.
"""

from __future__ import annotations

from collections.abc import Iterable

from journeynet.data.inputs import read_table
from journeynet.errors import InputError
from journeynet.planning.rundir import numeric_column

Unit = tuple[str, str]


def read_scenario(path: str, units: Iterable[Unit]) -> dict[Unit, float]:
    """``channel, campaign_type, spend`` rows as an allocation over the horizon.

    Parameters
    ----------
    path : str
        The scenario file (CSV or Parquet).
    units : iterable of tuple
        The paid units the run has curves for.

    Returns
    -------
    dict
        Unit -> spend.

    Raises
    ------
    InputError
        Missing column, a spend that is not a number >= 0 (naming row and column), a
        unit the run does not know, or the same unit twice.
    """
    sc = read_table(path, "scenario")
    missing = [c for c in ("channel", "campaign_type", "spend") if c not in sc.columns]
    if missing:
        raise InputError(f"scenario file {path}: missing column(s) {', '.join(missing)}; "
                         f"expected channel, campaign_type, spend; found {', '.join(map(str, sc.columns))}")
    sc["channel"] = sc["channel"].astype(str)
    sc["campaign_type"] = sc["campaign_type"].fillna("").astype(str)
    spend = numeric_column(sc, "spend", f"scenario file {path}", nonnegative=True)
    known = set(units)
    alloc: dict[Unit, float] = {}
    for i, (ch, ct, s) in enumerate(zip(sc["channel"], sc["campaign_type"], spend, strict=True)):
        u = (ch, ct)
        if u not in known:
            names = ", ".join(f"{k[0]}/{k[1]}" for k in sorted(known))
            raise InputError(f"scenario file {path}: row {i + 1} (line {i + 2}): unknown unit {ch}/{ct}; "
                             f"the run has curves for {names}")
        if u in alloc:
            raise InputError(f"scenario file {path}: row {i + 1} (line {i + 2}): {ch}/{ct} appears twice")
        alloc[u] = float(s)
    return alloc
