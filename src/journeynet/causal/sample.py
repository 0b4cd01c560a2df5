"""Worlds sampled from the engine's own funnel process, for testing the engine on its own family.

These worlds contain only the engine's assumptions, so recovering them checks the fit and
the interventions, not whether the model is right about the world: the generated worlds a
user trains on come from :mod:`journeynet.synthetic`, which shares no code with the engine.

The sampler draws the latent-funnel process of :mod:`journeynet.causal.funnel` for a
market pool: paid units shaped like the NetElixir Google, Meta and Microsoft Ads
exports (daily spend levels calibrated from them), unpaid channels whose touches
are caused by intent, openers that reach cold prospects, closers that reach the
interested, and optionally a brand-search unit that captures conversions that
would have happened anyway. Because the process is known, so is every answer:
the interventional effect of switching a unit off, its response to spend, and the
best budget plan (:mod:`journeynet.causal.sample_truth`).

Quickstart::

    from journeynet.causal.sample import SimConfig, simulate
    sim = simulate(SimConfig(pool=5_000, seed=1))
    sim.touchpoints.head(), sim.spend.head(), sim.truth["incremental_share"]
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from journeynet.causal.funnel import CONVERTED, N_STAGES, FunnelParams
from journeynet.synthetic.frames import session_seconds

log = logging.getLogger(__name__)

# Mean daily spend of each unit in the NetElixir exports (Jan-Jun 2024); the brand
# unit has no counterpart there and is sized like a typical brand-search budget.
# role, mean daily spend, peak touch probability, half-reach spend / mean, exponent
UNITS: dict[tuple[str, str], tuple[str, float, float, float, float]] = {
    ("google_ads", "cross_network"): ("mixed", 3172.2, 0.0116, 1.2, 1.0),
    ("google_ads", "search_network"): ("closer", 1418.8, 0.025, 0.9, 1.2),
    ("google_ads", "youtube"): ("opener", 94.5, 0.0011, 1.0, 0.9),
    ("google_ads", "display_network"): ("opener", 0.34, 0.00002, 1.0, 1.0),
    ("google_ads", "brand_search"): ("brand", 300.0, 0.036, 0.8, 1.0),
    ("meta_ads", "social"): ("opener", 108.1, 0.0013, 1.1, 0.8),
    ("microsoft_ads", "audience"): ("opener", 24.1, 0.0003, 1.0, 1.0),
    ("microsoft_ads", "performance_max"): ("mixed", 62.4, 0.0009, 1.0, 1.1),
    ("microsoft_ads", "search_content"): ("closer", 757.7, 0.015, 1.0, 1.3),
    ("microsoft_ads", "shopping"): ("closer", 190.7, 0.0083, 1.0, 1.0),
}
UNPAID = ("direct", "email", "organic_search", "referral")

# Targeting (relative touch probability by stage) and the stage after a touch, by role.
TARGETING = {
    "opener": [1.0, 0.3, 0.1],
    "mixed": [0.4, 1.0, 1.0],
    "closer": [0.01, 1.0, 1.3],
    "brand": [0.0, 0.04, 1.0],
}
MOVES = {  # rows: from unaware, interested, ready; columns: unaware, interested, ready, converted
    "opener": [[0.62, 0.36, 0.02, 0.0], [0, 0.9, 0.08, 0.02], [0, 0, 0.96, 0.04]],
    "mixed": [[0.78, 0.2, 0.02, 0.0], [0, 0.72, 0.2, 0.08], [0, 0, 0.72, 0.28]],
    "closer": [[0.92, 0.08, 0.0, 0.0], [0, 0.6, 0.3, 0.1], [0, 0, 0.6, 0.4]],
    "brand": [[1.0, 0.0, 0.0, 0.0], [0, 0.96, 0.02, 0.02], [0, 0, 0.3, 0.7]],
}


@dataclass
class SimConfig:
    """Size and world of a generated data set; every field is a Hydra override."""

    seed: int = 0
    pool: int = 60_000  # customers in the market; about half are ever touched
    days: int = 182
    start: str = "2024-01-01"
    brand: bool = True  # include a brand-search unit that captures baseline demand
    opener_scale: float = 1.0  # multiplies openers' effect on intent
    closer_scale: float = 1.0  # multiplies closers' direct conversion probability
    spend_scale: float = 1.0  # multiplies every unit's daily spend level
    dark_weeks: int = 2  # weeks per unit with spend switched off
    reported_window_days: int = 7  # platforms claim any conversion this long after a touch

    def __post_init__(self) -> None:
        if self.pool < 100:
            raise ValueError(f"synthetic.pool must be at least 100, got {self.pool}")
        if self.days < 28:
            raise ValueError(f"synthetic.days must be at least 28, got {self.days}")


@dataclass
class Simulation:
    """A generated data set: canonical frames plus the truth behind them."""

    touchpoints: pd.DataFrame
    spend: pd.DataFrame
    truth: dict[str, Any]
    params: FunnelParams
    spend_matrix: np.ndarray  # (T, U) daily spend in the order of params.units


def true_params(cfg: SimConfig) -> FunnelParams:
    """The world's funnel parameters for a config."""
    units = sorted(u for u in UNITS if cfg.brand or UNITS[u][0] != "brand")  # the fit orders units so too
    rho, move, reach_k, reach_a = [], [], [], []
    for unit in units:
        role, level, peak, k_mult, a = UNITS[unit]
        rho.append(peak * np.asarray(TARGETING[role]))
        m = np.asarray(MOVES[role], dtype=float)
        m = _scale_move(m, cfg.opener_scale if role in ("opener", "mixed") else 1.0,
                        cfg.closer_scale if role in ("closer", "mixed") else 1.0)
        move.append(m)
        reach_k.append(k_mult * level * cfg.spend_scale)
        reach_a.append(a)
    drift = np.array([
        [[0.9965, 0.0035, 0.0], [0.02, 0.962, 0.018], [0.0, 0.05, 0.95]],  # high propensity
        [[0.999, 0.001, 0.0], [0.035, 0.955, 0.01], [0.0, 0.08, 0.92]],  # low propensity
    ])
    return FunnelParams(
        pool=float(cfg.pool),
        pi0=np.array([[0.27, 0.02, 0.01], [0.63, 0.05, 0.02]]),
        reach_k=np.asarray(reach_k),
        reach_a=np.asarray(reach_a),
        rho=np.asarray(rho),
        move=np.asarray(move),
        drift=drift,
        hazard=np.array([[0.0001, 0.004, 0.15], [0.00002, 0.0015, 0.08]]),
        unpaid=np.array([[0.0003, 0.02, 0.06], [0.0006, 0.012, 0.03],
                         [0.0008, 0.02, 0.05], [0.0002, 0.006, 0.01]]),
        session=np.array([0.45, 0.18, 0.30, 0.07]),
        units=units,
        unpaid_channels=list(UNPAID),
    )


def _scale_move(m: np.ndarray, opener: float, closer: float) -> np.ndarray:
    """Scale upward moves by ``opener`` and conversion by ``closer``, keeping rows stochastic."""
    m = m.copy()
    for z in range(N_STAGES):
        up = m[z, z + 1:N_STAGES] * opener
        conv = m[z, CONVERTED] * closer
        total = up.sum() + conv
        if total > 0.98:
            up, conv = up * 0.98 / total, conv * 0.98 / total
        m[z, z + 1:N_STAGES], m[z, CONVERTED] = up, conv
        m[z, z] = 1.0 - up.sum() - conv
    return m


def spend_history(cfg: SimConfig, params: FunnelParams, rng: np.random.Generator) -> np.ndarray:
    """Daily spend ``(T, U)``: weekly levels, pulses and dark weeks, so response is identifiable."""
    t, n_weeks = cfg.days, (cfg.days + 6) // 7
    levels = np.array([UNITS[u][1] for u in params.units]) * cfg.spend_scale
    weekly = rng.lognormal(0.0, 0.45, size=(n_weeks, len(levels)))
    daily = np.repeat(weekly, 7, axis=0)[:t] * rng.lognormal(0.0, 0.15, size=(t, len(levels)))
    pulses = rng.random((t, len(levels))) < 0.04
    daily = daily * np.where(pulses, rng.uniform(1.8, 3.0, size=daily.shape), 1.0)
    for u in range(len(levels)):
        for w in rng.choice(np.arange(1, n_weeks - 1), size=cfg.dark_weeks, replace=False):
            daily[7 * w:7 * w + 7, u] = 0.0
    daily = daily / daily.mean(axis=0, keepdims=True).clip(1e-12) * levels
    return np.round(daily, 2)


def simulate(cfg: SimConfig | None = None) -> Simulation:
    """Generate canonical touchpoints, spend and the ground truth for ``cfg``."""
    from journeynet.causal.sample_truth import ground_truth  # truth imports this module's config

    cfg = cfg or SimConfig()
    rng = np.random.default_rng(cfg.seed)
    params = true_params(cfg)
    spend = spend_history(cfg, params, rng)
    events = sample_events(params, spend, rng)
    touchpoints = touchpoints_frame(events, params, cfg, rng)
    spend_df = _spend_frame(spend, params, cfg, events)
    truth = ground_truth(params, spend, touchpoints, cfg)
    log.info("generated %d touchpoints of %d customers, %d conversions",
             len(touchpoints), touchpoints["customer_id"].nunique(), int(touchpoints["converted"].sum()))
    return Simulation(touchpoints, spend_df, truth, params, spend)


def sample_events(params: FunnelParams, spend: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Sample the pool day by day; returns touch events as flat arrays.

    ``kind`` is 0 for a paid touch (``code`` = unit), 1 for an unpaid touch (``code`` =
    channel); ``converted`` marks the touch in whose session the customer converted.
    """
    n = int(round(params.pool))
    flat = params.pi0.ravel() / params.pi0.sum()
    cell = rng.choice(flat.size, size=n, p=flat)
    seg, stage = cell // N_STAGES, cell % N_STAGES
    alive = np.ones(n, dtype=bool)
    p_touch = params.touch_prob(spend)  # (T, U, S)
    hazard_t, drift_t = params.daily_rates(spend.shape[0])
    captured = params.capture_prob(spend)  # (T, U)
    window = max(int(params.wear_window), 1)
    touch_days = np.zeros((window, n), dtype=np.int16)  # paid units touching each customer, by day mod window
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("customer", "day", "kind", "code", "converted")}

    def emit(cust: np.ndarray, day: int, kind: int, code: np.ndarray | int, conv: np.ndarray | bool) -> None:
        out["customer"].append(cust)
        out["day"].append(np.full(cust.size, day, dtype=np.int32))
        out["kind"].append(np.full(cust.size, kind, dtype=np.int8))
        out["code"].append(np.broadcast_to(np.asarray(code, dtype=np.int16), cust.shape).copy())
        out["converted"].append(np.broadcast_to(np.asarray(conv, dtype=bool), cust.shape).copy())

    for d in range(spend.shape[0]):
        idx = np.flatnonzero(alive)
        z0 = stage[idx]
        touched = [idx[rng.random(idx.size) < p_touch[d, u, z0]] for u in range(params.n_units)]
        for c in range(params.unpaid.shape[0]):
            emit(idx[rng.random(idx.size) < params.unpaid[c, z0]], d, 1, c, False)
        strength = np.exp(-params.wear * touch_days.sum(0))  # wear-out from the previous days' touches
        touch_days[d % window] = 0
        conv_today = np.zeros(n, dtype=bool)
        for u, who in enumerate(touched):
            touch_days[d % window, who] += 1
            moving = who[~conv_today[who] & (rng.random(who.size) < strength[who])]
            cum = np.cumsum(params.move[u, stage[moving]], axis=1)
            new = (rng.random(moving.size)[:, None] > cum).sum(axis=1).clip(max=CONVERTED)
            conv = moving[new == CONVERTED]
            stage[moving[new < CONVERTED]] = new[new < CONVERTED]
            conv_today[conv] = True
            emit(who, d, 0, u, conv_today[who] & np.isin(who, conv))
        rest = idx[~conv_today[idx]]
        by_hazard = rest[rng.random(rest.size) < hazard_t[d][seg[rest], stage[rest]]]
        # the session of a conversion that needed no ad: captured by a paid unit, or unpaid
        route = rng.random(by_hazard.size)
        edges = np.cumsum(captured[d])
        unit = np.searchsorted(edges, route, side="right")
        for u in range(params.n_units):
            emit(by_hazard[unit == u], d, 0, u, True)
        free = by_hazard[unit == params.n_units]
        emit(free, d, 1, rng.choice(params.session.size, size=free.size, p=params.session), True)
        conv_today[by_hazard] = True
        alive[conv_today] = False
        rest = idx[alive[idx]]
        cum = np.cumsum(drift_t[d][seg[rest], stage[rest]], axis=1)
        stage[rest] = (rng.random(rest.size)[:, None] > cum).sum(axis=1).clip(max=N_STAGES - 1)
    return {k: np.concatenate(v) for k, v in out.items()}


def touchpoints_frame(events: dict[str, np.ndarray], params: FunnelParams, cfg: SimConfig,
                       rng: np.random.Generator) -> pd.DataFrame:
    """Canonical touchpoints at uniform times of day; a converting touch is the last one of its customer's day."""
    n = events["day"].size
    paid = events["kind"] == 0
    unit_channel = np.array([u[0] for u in params.units] + list(UNPAID), dtype=object)
    unit_campaign = np.array([u[1] for u in params.units] + [""] * len(UNPAID), dtype=object)
    code = np.where(paid, events["code"], params.n_units + events["code"])
    seconds = session_seconds(events["customer"], events["day"], events["converted"], rng)
    start = np.datetime64(cfg.start, "s")
    stamps = start + events["day"].astype("timedelta64[D]") + seconds.astype("timedelta64[s]")
    revenue = np.where(events["converted"], np.round(rng.lognormal(4.3, 0.6, n), 2), 0.0)
    df = pd.DataFrame({
        "customer_id": np.char.add("c", np.char.zfill(events["customer"].astype(str), 7)),
        "timestamp": pd.to_datetime(stamps),
        "channel": unit_channel[code],
        "campaign_type": unit_campaign[code],
        "converted": events["converted"].astype(np.int8),
        "revenue": revenue,
    })
    return df.sort_values(["customer_id", "timestamp"], kind="stable").reset_index(drop=True)


def _spend_frame(spend: np.ndarray, params: FunnelParams, cfg: SimConfig,
                 events: dict[str, np.ndarray]) -> pd.DataFrame:
    """Canonical spend with platform-reported conversions that over-claim.

    A platform claims every conversion within ``reported_window_days`` of any of its
    touches (view-through), so several platforms claim the same sale.
    """
    t, u = spend.shape
    paid = events["kind"] == 0
    touches = np.zeros((t, u))
    np.add.at(touches, (events["day"][paid], events["code"][paid]), 1)
    conv_day = np.full(int(round(params.pool)), -1)
    conv_day[events["customer"][events["converted"]]] = events["day"][events["converted"]]
    cust, day, unit = events["customer"][paid], events["day"][paid], events["code"][paid]
    lag = conv_day[cust] - day
    claimed = (lag >= 0) & (lag < cfg.reported_window_days)
    # one claim per (customer, unit), dated on the conversion day
    key = np.unique(np.stack([cust[claimed], unit[claimed]], axis=1), axis=0)
    reported = np.zeros((t, u))
    np.add.at(reported, (conv_day[key[:, 0]], key[:, 1]), 1)
    dates = pd.date_range(cfg.start, periods=t, freq="D")
    ctr = 0.02
    return pd.DataFrame({
        "date": np.repeat(dates.values, u),
        "channel": [c for _ in range(t) for c, _ in params.units],
        "campaign_type": [k for _ in range(t) for _, k in params.units],
        "spend": spend.ravel(),
        "impressions": np.round(touches.ravel() / ctr),
        "clicks": touches.ravel(),
        "conversions": reported.ravel(),
        "revenue": np.round(reported.ravel() * 95.0, 2),
    })


def config_dict(cfg: SimConfig) -> dict[str, Any]:
    """The config as a plain dict (stored in the ground truth)."""
    return asdict(cfg)


def sample_frames(params: FunnelParams, spend: np.ndarray, seed: int = 0,
                  start: str = "2024-01-01") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Canonical touchpoints and spend sampled from ``params`` under a given daily spend ``(T, U)``.

    For hand-made worlds in tests: one mechanism at a time, with an exact answer from
    :func:`journeynet.causal.funnel.expected_conversions`.
    """
    rng = np.random.default_rng(seed)
    cfg = SimConfig(pool=max(int(round(params.pool)), 100), days=max(spend.shape[0], 28), start=start)
    events = sample_events(params, spend, rng)
    return touchpoints_frame(events, params, cfg, rng), _spend_frame(spend, params, cfg, events)
