"""Generate a world the attribution engine did not write: canonical frames plus the exact truth.

The world has its own Markov chain (:mod:`journeynet.synthetic.world`): an intent ladder
with an out-of-market level, two segments, exponential reach, targeting by intent, and
switchable mechanisms the engine's funnel lacks (session capture, seasonal demand
confounded with spend, ad fatigue, a harmful unit, repeat purchases). Nothing here
imports :mod:`journeynet.causal`.

Quickstart::

    from journeynet.synthetic.simulate import SimConfig, simulate
    sim = simulate(SimConfig(pool=5_000, days=56, seed=1))
    sim.touchpoints.head(), sim.spend.head(), sim.truth["units"][0]
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from journeynet.synthetic.config import SimConfig
from journeynet.synthetic.frames import spend_frame, touchpoints_frame
from journeynet.synthetic.sampler import sample_events
from journeynet.synthetic.truth import ground_truth
from journeynet.synthetic.world import World, build_world, spend_history

__all__ = ["SimConfig", "Simulation", "simulate"]

log = logging.getLogger(__name__)


@dataclass
class Simulation:
    """A generated data set: canonical frames plus the truth behind them."""

    touchpoints: pd.DataFrame
    spend: pd.DataFrame
    truth: dict[str, Any]
    world: World
    spend_matrix: np.ndarray  # (T, U) daily spend in the order of ``units``

    @property
    def units(self) -> list[tuple[str, str]]:
        """Paid units as (channel, campaign_type), in the order of ``spend_matrix``'s columns."""
        return list(self.world.units)


def simulate(cfg: SimConfig | None = None, optimum: bool = True) -> Simulation:
    """Generate canonical touchpoints, spend and the ground truth for ``cfg``.

    ``optimum=False`` skips the response points and the best plan (the slowest part of
    the truth) for callers that only need removal effects.
    """
    cfg = cfg or SimConfig()
    rng = np.random.default_rng(cfg.seed)
    world = build_world(cfg)
    spend = spend_history(cfg, world, rng)
    events = sample_events(world, spend, rng)
    touchpoints = touchpoints_frame(events, world.units, world.unpaid_channels, cfg.start, rng)
    spend_df = spend_frame(spend, world.units, events, cfg.start, cfg.reported_window_days)
    truth = ground_truth(world, spend, touchpoints, cfg.to_dict(), optimum=optimum)
    log.info("generated %d touchpoints of %d customers, %d conversions", len(touchpoints),
             touchpoints["customer_id"].nunique(), int(touchpoints["converted"].sum()))
    return Simulation(touchpoints, spend_df, truth, world, spend)
