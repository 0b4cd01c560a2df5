"""Which journey units are paid: joining the journeys' channel and campaign names to the spend.

A unit is a ``(channel, campaign_type)`` pair, written ``"channel/campaign_type"``. A
channel is paid when the spend has it (or ``data.paid_channels`` declares it); a journey
unit on a paid channel that the spend lacks would silently count as unpaid, so it is
reported with its touches and conversions.

Quickstart
----------
>>> import pandas as pd
>>> tp = pd.DataFrame({"channel": ["google_ads", "google_ads", "email"],
...                    "campaign_type": ["brand", "search", ""], "converted": [1, 0, 1]})
>>> spend = pd.DataFrame({"channel": ["google_ads"], "campaign_type": ["search"]})
>>> unmatched_units(tp, spend)[["channel", "campaign_type", "conversions"]].values.tolist()
[['google_ads', 'brand', 1]]
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from journeynet.errors import InputError

log = logging.getLogger(__name__)


def snake_case(values: pd.Series) -> pd.Series:
    """Lowercase, turn runs of non-alphanumerics into ``_`` and strip ``_`` at the ends."""
    return (
        values.astype(str).str.lower().str.replace(r"[^0-9a-z]+", "_", regex=True).str.strip("_")
    )


def join_single_campaign(touchpoints: pd.DataFrame, spend: pd.DataFrame, announce: bool = True) -> pd.DataFrame:
    """Give a paid channel's blank campaign type its only campaign type in the spend.

    Exports like Meta's carry no campaign type, so journeys name the channel alone;
    when the spend has exactly one campaign type for that channel, that is the join.
    ``announce=False`` skips the log line (a file of many, read one by one).
    """
    kinds = spend.groupby("channel")["campaign_type"].unique()
    single = {c: v[0] for c, v in kinds.items() if len(v) == 1 and v[0] != ""}
    blank = (touchpoints["campaign_type"] == "") & touchpoints["channel"].isin(list(single))
    if not blank.any():
        return touchpoints
    if announce:
        log.info("%d touches of %s take the channel's only campaign type in the spend", int(blank.sum()),
                 ", ".join(sorted(touchpoints.loc[blank, "channel"].unique())))
    out = touchpoints.copy()
    out.loc[blank, "campaign_type"] = out.loc[blank, "channel"].map(single)
    return out


def check_paid_channels(touchpoints: pd.DataFrame, spend: pd.DataFrame) -> list[str]:
    """Warn about the spend's paid units absent from the journeys; return them sorted.

    Units are written ``"channel/campaign_type"``, e.g. ``"meta_ads/social"``.
    """
    paid = spend[["channel", "campaign_type"]].drop_duplicates()
    seen = touchpoints[["channel", "campaign_type"]].drop_duplicates()
    merged = paid.merge(seen, how="left", indicator=True)
    gone = merged[merged["_merge"] == "left_only"]
    units = sorted(f"{c}/{t}" for c, t in zip(gone["channel"], gone["campaign_type"], strict=True))
    if units:
        log.warning(
            "paid units in the spend never appear in the journeys (check data.channel_map "
            "and data.campaign_map): %s", ", ".join(units),
        )
    return units


def unmatched_units(touchpoints: pd.DataFrame, spend: pd.DataFrame, paid_channels: Sequence[str] = (),
                    strict: bool = False) -> pd.DataFrame:
    """Journey units on a paid channel that the spend does not have, with their touches and conversions.

    A channel is paid when the spend has it or ``paid_channels`` declares it. Such a unit
    (``google_ads/brand_search`` touches while the spend names only ``google_ads/search``)
    would otherwise count as unpaid: an outcome of intent, absent from attribution and plan.

    Parameters
    ----------
    touchpoints, spend : pd.DataFrame
        Canonical frames, after :func:`join_single_campaign`.
    paid_channels : sequence of str
        Channels declared paid besides those in the spend.
    strict : bool
        Raise :class:`InputError` instead of warning (``data.strict_units=true``).

    Returns
    -------
    pd.DataFrame
        ``channel, campaign_type, touches, conversions``, most conversions first; empty when all match.
    """
    counts = touchpoints.groupby(["channel", "campaign_type"])["converted"].agg(touches="size", conversions="sum")
    return unmatched_from_counts(counts.reset_index(), spend, paid_channels, strict)


def unmatched_from_counts(counts: pd.DataFrame, spend: pd.DataFrame, paid_channels: Sequence[str] = (),
                          strict: bool = False) -> pd.DataFrame:
    """:func:`unmatched_units` from ``channel, campaign_type, touches, conversions`` per unit (a lake's counts)."""
    paid = set(spend["channel"]) | set(paid_channels)
    spent = set(zip(spend["channel"], spend["campaign_type"], strict=True))
    units = counts[counts["channel"].isin(list(paid))].set_index(["channel", "campaign_type"])[
        ["touches", "conversions"]].sort_index()
    units = units[[u not in spent for u in units.index]].reset_index()
    units = units.sort_values(["conversions", "touches"], ascending=False, ignore_index=True)
    if units.empty:
        return units
    listed = "; ".join(f"{c}/{k or '(blank)'} ({t:,} touches, {v:,} conversions)" for c, k, t, v in
                       units[["channel", "campaign_type", "touches", "conversions"]].itertuples(index=False))
    message = (f"journey units on paid channels have no spend, so they would count as unpaid and get no "
               f"attribution or plan: {listed}; map them with data.campaign_map or add their spend")
    if strict:
        raise InputError(message)
    log.warning("%s (data.strict_units=true makes this an error)", message)
    return units


def declared_paid_channels(cfg: Mapping[str, Any], touchpoints: pd.DataFrame) -> list[str]:
    """``data.paid_channels``, snake_cased like channel names; each must occur in the journeys."""
    raw = cfg.get("paid_channels") or []
    if isinstance(raw, str):
        raw = [raw]
    names = sorted(set(snake_case(pd.Series([str(v) for v in raw], dtype=object))))
    seen = set(touchpoints["channel"])
    unknown = [n for n in names if n not in seen]
    if unknown:
        raise InputError(f"data.paid_channels names {unknown}, which no touchpoint has "
                         f"(channels: {sorted(seen)})")
    return names
