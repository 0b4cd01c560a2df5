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
    totals = unit_effects(params, spend)
    rows = []
    for u, (channel, campaign) in progress(list(enumerate(params.units)), desc="removal attribution"):
        no_convert = np.zeros(params.n_units, dtype=bool)
        no_convert[u] = True
        closer = factual - expected_conversions(params, spend, convert_off=no_convert).sum()
        rows.append((channel, campaign, totals[u], totals[u] - closer, closer))
    return pd.DataFrame(rows, columns=["channel", "campaign_type", "effect", "opener_effect", "closer_effect"])


def unit_effects(params: FunnelParams, spend: np.ndarray) -> np.ndarray:
    """Conversions lost when each unit is switched off, ``(U,)`` (the total effect only; cheap for draws)."""
    schedules = np.repeat(spend[None], params.n_units + 1, axis=0)  # factual, then each unit off
    schedules[np.arange(1, params.n_units + 1), :, np.arange(params.n_units)] = 0.0
    totals = expected_conversions(params, schedules).sum(1)
    return totals[0] - totals[1:]


def channel_effects(params: FunnelParams, spend: np.ndarray) -> dict[str, float]:
    """Conversions lost when every unit of a paid channel is switched off together."""
    channels = np.array([c for c, _ in params.units])
    names = list(dict.fromkeys(channels))
    schedules = np.repeat(spend[None], len(names) + 1, axis=0)
    for i, channel in enumerate(names, start=1):
        schedules[i][:, channels == channel] = 0.0
    totals = expected_conversions(params, schedules).sum(1)
    return {str(channel): float(totals[0] - totals[i]) for i, channel in enumerate(names, start=1)}


def response_points(params: FunnelParams, spend: np.ndarray,
                    multiples: tuple[float, ...] = SPEND_MULTIPLES) -> pd.DataFrame:
    """Mean incremental conversions per day of each unit with its history scaled by each multiple."""
    days, n_units = spend.shape
    m = np.asarray(multiples, dtype=float)
    zero = np.zeros(1)
    scale = np.ones((n_units, m.size + 1, n_units))  # per unit: its spend at 0, then at each multiple
    scale[np.arange(n_units), :, np.arange(n_units)] = np.r_[zero, m]
    totals = expected_conversions(params, (spend[None, None] * scale[:, :, None, :]).reshape(-1, days, n_units))
    totals = totals.sum(1).reshape(n_units, m.size + 1)
    rows = [(channel, campaign, float(mult), spend[:, u].mean() * mult, (totals[u, j + 1] - totals[u, 0]) / days)
            for u, (channel, campaign) in enumerate(params.units) for j, mult in enumerate(m)]
    return pd.DataFrame(rows, columns=["channel", "campaign_type", "spend_multiple", "daily_spend",
                                       "expected_conversions"])
