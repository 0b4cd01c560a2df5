"""Interventions in a funnel model: switch a unit off, stop its conversions, scale its spend.

Each answer is a difference of expected conversions of the whole market pool under
two spend schedules, propagated exactly by :func:`journeynet.causal.funnel.expected_conversions`:
an intervention on spend, not a deletion of touches from recorded journeys.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from journeynet.causal.funnel import FunnelParams, expected_conversions
from journeynet.progress import progress

SPEND_MULTIPLES = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)


def removal_effects(params: FunnelParams, spend: np.ndarray) -> pd.DataFrame:
    """Per paid unit: conversions lost when it is switched off, split into opener and closer parts.

    ``closer`` is what the unit's touches convert directly (switching off only their
    conversions), ``opener`` the rest (what flows through moving customers up the funnel).
    """
    factual = expected_conversions(params, spend).sum()
    rows = []
    for u, (channel, campaign) in progress(list(enumerate(params.units)), desc="removal attribution"):
        off = spend.copy()
        off[:, u] = 0.0
        total = factual - expected_conversions(params, off).sum()
        no_convert = np.zeros(params.n_units, dtype=bool)
        no_convert[u] = True
        closer = factual - expected_conversions(params, spend, convert_off=no_convert).sum()
        rows.append((channel, campaign, total, total - closer, closer))
    return pd.DataFrame(rows, columns=["channel", "campaign_type", "effect", "opener_effect", "closer_effect"])


def unit_effects(params: FunnelParams, spend: np.ndarray) -> np.ndarray:
    """Conversions lost when each unit is switched off, ``(U,)`` (the total effect only; cheap for draws)."""
    factual = expected_conversions(params, spend).sum()
    out = np.empty(params.n_units)
    for u in range(params.n_units):
        off = spend.copy()
        off[:, u] = 0.0
        out[u] = factual - expected_conversions(params, off).sum()
    return out


def channel_effects(params: FunnelParams, spend: np.ndarray) -> dict[str, float]:
    """Conversions lost when every unit of a paid channel is switched off together."""
    factual = expected_conversions(params, spend).sum()
    channels = np.array([c for c, _ in params.units])
    out = {}
    for channel in dict.fromkeys(channels):
        off = spend.copy()
        off[:, channels == channel] = 0.0
        out[str(channel)] = float(factual - expected_conversions(params, off).sum())
    return out


def response_points(params: FunnelParams, spend: np.ndarray,
                    multiples: tuple[float, ...] = SPEND_MULTIPLES) -> pd.DataFrame:
    """Mean incremental conversions per day of each unit with its history scaled by each multiple."""
    days = spend.shape[0]
    rows = []
    for u, (channel, campaign) in enumerate(params.units):
        base = None
        for m in multiples:
            scaled = spend.copy()
            scaled[:, u] *= m
            total = expected_conversions(params, scaled).sum()
            base = total if m == 0 else base
            rows.append((channel, campaign, m, spend[:, u].mean() * m, (total - base) / days))
    return pd.DataFrame(rows, columns=["channel", "campaign_type", "spend_multiple", "daily_spend",
                                       "expected_conversions"])
