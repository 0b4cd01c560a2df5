"""Generate a ``website-landings.csv`` in the hackathon layout, driven by real daily ad spend.

``data=netelixir`` pairs the shipped Google, Meta and Microsoft Ads exports with a
journeys file that the repository cannot ship. Without one, journeys are sampled from
the funnel process (:mod:`journeynet.causal.sample`) under the exports' own daily spend
per campaign type, and written with the export's columns and raw names (``Google``,
``Search Network``, Meta with no campaign type), so the file goes through the preset's
mapping exactly as a real export would.

Quickstart
----------
>>> import pandas as pd
>>> spend = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=28).repeat(2),
...     "channel": ["google_ads", "meta_ads"] * 28, "campaign_type": ["search_network", "social"] * 28,
...     "spend": [1400.0, 110.0] * 28})
>>> frame = landings_frame(spend, pool=500, seed=0)
>>> list(frame.columns)[:3]
['User Id', 'Website Landing Time', 'Is Converted']
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from journeynet.errors import InputError

log = logging.getLogger(__name__)

# Platform names as the hackathon export writes them; data=netelixir maps them to channels.
PLATFORMS = {"google_ads": "Google", "meta_ads": "Meta", "microsoft_ads": "Microsoft"}
CAMPAIGN_NAMES = {  # snake_case name in the spend -> the ad export's own spelling
    "cross_network": "Cross-network", "display_network": "Display Network", "search_network": "Search Network",
    "youtube": "YouTube", "audience": "Audience", "performance_max": "Performance max",
    "search_content": "Search & content", "shopping": "Shopping",
}


def landings_frame(spend: pd.DataFrame, pool: int = 60_000, seed: int = 0) -> pd.DataFrame:
    """Journeys in the hackathon layout, sampled under ``spend``'s daily spend per unit.

    Parameters
    ----------
    spend : pd.DataFrame
        Canonical spend; every unit must be one the sampler knows (the exports' nine).
    pool : int
        Customers in the market (about half are ever touched).
    seed : int
        Seed of the sample.

    Returns
    -------
    pd.DataFrame
        ``User Id, Website Landing Time, Is Converted, Source, Channel, Campaign Type``.
    """
    from journeynet.causal.sample import UNPAID, SimConfig, sample_events, touchpoints_frame, true_params

    dates = pd.date_range(spend["date"].min(), spend["date"].max(), freq="D")
    cfg = SimConfig(seed=seed, pool=pool, days=max(len(dates), 28), start=str(dates[0].date()), brand=False)
    params = true_params(cfg)
    wide = spend.pivot_table(index="date", columns=["channel", "campaign_type"], values="spend", aggfunc="sum")
    unknown = sorted(f"{c}/{k}" for c, k in wide.columns if (c, k) not in params.units)
    if unknown:
        raise InputError(f"cannot generate journeys for spend units the sampler does not know: {unknown}")
    matrix = wide.reindex(index=pd.date_range(dates[0], periods=cfg.days, freq="D"),
                          columns=pd.MultiIndex.from_tuples(params.units)).fillna(0.0).to_numpy()
    rng = np.random.default_rng(seed)
    tp = touchpoints_frame(sample_events(params, matrix, rng), params, cfg, rng)
    unpaid = {c: c.replace("_", " ").title() for c in UNPAID}
    return pd.DataFrame({
        "User Id": tp["customer_id"],
        "Website Landing Time": tp["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S"),
        "Is Converted": np.where(tp["converted"] == 1, "True", "False"),
        "Source": "generated",
        "Channel": tp["channel"].map({**PLATFORMS, **unpaid}),
        # Meta's export has no campaign type, so neither do its landings
        "Campaign Type": np.where(tp["channel"] == "meta_ads", "", tp["campaign_type"].map(CAMPAIGN_NAMES).fillna("")),
    })


def write_landings(spend: pd.DataFrame, path: str | Path, pool: int = 60_000, seed: int = 0) -> Path:
    """Write :func:`landings_frame` to ``path`` (CSV) and say so; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = landings_frame(spend, pool, seed)
    frame.to_csv(path, index=False)
    log.warning("no data.touchpoints given: generated %d landings of %d users in the hackathon layout from "
                "the ad exports' daily spend (pool %d, seed %d): %s; pass data.touchpoints=PATH for real journeys",
                len(frame), frame["User Id"].nunique(), pool, seed, path)
    return path
