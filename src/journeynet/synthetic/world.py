"""A generated world's parameters (plain arrays) and its daily spend history.

A customer's state is finite: segment ``k`` (2), intent level ``l`` (0 out of market,
1..5 rising intent, 6 just bought) and ad fatigue ``f`` (0..3, or only 0 when fatigue is
off). Customers are independent given spend, so the expected pool evolves linearly and
every answer about the world is exact (:mod:`journeynet.synthetic.propagate`).

Quickstart::

    import numpy as np
    from journeynet.synthetic.config import SimConfig
    from journeynet.synthetic.world import build_world, spend_history
    cfg = SimConfig(pool=5_000, days=56)
    world = build_world(cfg)
    spend = spend_history(cfg, world, np.random.default_rng(cfg.seed))  # (56, U)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from journeynet.synthetic.catalog import (
    CATALOGS,
    FREQUENCY,
    N_LEVELS,
    OUT,
    POST,
    READY,
    SESSION,
    TARGETING,
    UNPAID,
    UNPAID_RATES,
    role_moves,
)
from journeynet.synthetic.config import SimConfig

N_FATIGUE = 4
SEGMENT_SHARE = np.array([0.3, 0.7])  # high and low propensity
START_LEVELS = np.array([0.80, 0.08, 0.05, 0.035, 0.02, 0.015, 0.0])
HAZARD = np.array([0.0, 0.0005, 0.0025, 0.01, 0.04, 0.12, 0.0])  # high-propensity segment, by level
ARRIVAL = np.array([0.005, 0.0025])  # out of market -> level 1, per segment, at demand 1
RISE = np.array([[0.04, 0.035, 0.03, 0.025], [0.02, 0.015, 0.012, 0.01]])  # level l -> l + 1, l = 1..4
FALL, EXIT = 0.02, 0.012  # level l -> l - 1 (l >= 2), and any in-market level -> out of market
REPEAT_LEVEL = 2  # a returning buyer comes back at this intent level


@dataclass
class World:
    """Every parameter of a generated world, as numpy arrays.

    Shapes use ``K`` segments, ``L`` levels, ``F`` fatigue levels, ``U`` paid units,
    ``C`` unpaid channels and ``T`` days.
    """

    pool: float
    pi0: np.ndarray  # (K, L) day-0 distribution over segment and level (fatigue 0)
    rho: np.ndarray  # (U, L) daily touch (visit) probability at full reach
    impress: np.ndarray  # (U, L) daily probability of an impression without a visit, at full reach
    reach_k: np.ndarray  # (U,) reach is 1 - exp(-spend / reach_k)
    move: np.ndarray  # (U, F, L, L+1) level after a touch, last column converts
    hazard: np.ndarray  # (K, L) daily baseline conversion hazard at demand 1
    drift_fixed: np.ndarray  # (K, L, L) daily level moves that ignore demand (off-diagonal)
    drift_demand: np.ndarray  # (K, L, L) daily level moves proportional to demand (off-diagonal)
    demand: np.ndarray  # (T,) demand curve
    unpaid: np.ndarray  # (C, L) daily unpaid-touch probability
    session: np.ndarray  # (C,) unpaid channel of an uncaptured baseline conversion
    capture_max: np.ndarray  # (U,) ceiling of a unit's share of baseline conversion sessions
    capture_k: np.ndarray  # (U,) capture is capture_max * (1 - exp(-spend / capture_k))
    fatigue_decay: float = 0.3
    units: list[tuple[str, str]] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    unpaid_channels: list[str] = field(default_factory=list)

    @property
    def n_units(self) -> int:
        """Number of paid units."""
        return int(self.rho.shape[0])

    @property
    def n_fatigue(self) -> int:
        """Number of fatigue levels (1 when fatigue is off)."""
        return int(self.move.shape[1])

    @property
    def days(self) -> int:
        """Length of the world's window."""
        return int(self.demand.size)

    def touch_prob(self, spend: np.ndarray) -> np.ndarray:
        """Daily touch probability per unit and level, ``(..., U, L)``, for spend ``(..., U)``."""
        s = np.maximum(np.asarray(spend, dtype=float), 0.0)
        return self.rho * (1.0 - np.exp(-s / self.reach_k))[..., None]

    def impression_prob(self, spend: np.ndarray) -> np.ndarray:
        """Daily probability of an impression without a visit, ``(..., U, L)`` (it only tires)."""
        s = np.maximum(np.asarray(spend, dtype=float), 0.0)
        return self.impress * (1.0 - np.exp(-s / self.reach_k))[..., None]

    def capture_prob(self, spend: np.ndarray) -> np.ndarray:
        """Probability that a baseline conversion lands in each unit's session, ``(..., U)``.

        Units capture in catalog order: a unit takes the session with its capture
        probability if no earlier unit took it.
        """
        s = np.maximum(np.asarray(spend, dtype=float), 0.0)
        c = self.capture_max * (1.0 - np.exp(-s / self.capture_k))
        before = np.cumprod(np.concatenate([np.ones_like(c[..., :1]), 1.0 - c[..., :-1]], axis=-1), axis=-1)
        return c * before

    def drift(self, days: np.ndarray | None = None) -> np.ndarray:
        """Daily level transition ``(T, K, L, L)`` of customers who did not convert."""
        dem = self.demand if days is None else self.demand[days]
        off = self.drift_fixed[None] + dem[:, None, None, None] * self.drift_demand[None]
        eye = np.eye(off.shape[-1], dtype=bool)
        off = np.where(eye, 0.0, off)
        return off + eye * (1.0 - off.sum(axis=-1, keepdims=True))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (arrays as nested lists)."""
        out = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in asdict(self).items()}
        out["units"] = [list(u) for u in self.units]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> World:
        """Inverse of :meth:`to_dict`."""
        plain = ("pool", "fatigue_decay", "units", "roles", "unpaid_channels")
        kw: dict[str, Any] = {k: np.asarray(v, dtype=float) for k, v in d.items() if k not in plain}
        kw.update(pool=float(d["pool"]), fatigue_decay=float(d["fatigue_decay"]),
                  units=[tuple(u) for u in d["units"]], roles=list(d["roles"]),
                  unpaid_channels=list(d["unpaid_channels"]))
        return cls(**kw)


def catalog_units(cfg: SimConfig) -> dict[tuple[str, str], Any]:
    """The catalog's units that run under ``cfg`` (brand and harmful units are switchable), sorted."""
    cat = CATALOGS[cfg.world]
    keep = {u: s for u, s in cat.items()
            if (cfg.brand or s.role != "brand") and (cfg.harmful or s.role != "harmful")}
    return dict(sorted(keep.items()))


def demand_curve(cfg: SimConfig) -> np.ndarray:
    """Daily demand: 1 off season, ``1 + season_amplitude`` at the holiday peak (flat when not seasonal)."""
    if not cfg.seasonal:
        return np.ones(cfg.days)
    d = np.arange(cfg.days)
    peak = cfg.season_peak * (cfg.days - 1)
    return 1.0 + cfg.season_amplitude * np.exp(-0.5 * ((d - peak) / cfg.season_width_days) ** 2)


def build_world(cfg: SimConfig) -> World:
    """The world's parameters for a config."""
    specs = catalog_units(cfg)
    n_f = N_FATIGUE if cfg.fatigue else 1
    strength = 1.0 / (1.0 + cfg.fatigue_strength * np.arange(n_f))  # (F,) how well a tired touch works
    moves = [_full_moves(role_moves(s.role, cfg.opener_scale, cfg.closer_scale, cfg.harm_scale), strength)
             for s in specs.values()]
    level = np.array([s.level for s in specs.values()]) * cfg.spend_scale
    pi0 = SEGMENT_SHARE[:, None] * START_LEVELS[None, :]
    hazard = np.stack([HAZARD, 0.5 * HAZARD])
    fixed, by_demand = _drift_parts(cfg)
    capture = np.array([min(s.capture * cfg.capture_scale, 0.95) if cfg.capture else 0.0 for s in specs.values()])
    rho = np.array([s.reach * np.asarray(TARGETING[s.role]) for s in specs.values()])
    # impressions only matter through fatigue; without it they are left out of the world
    freq = np.array([FREQUENCY[s.role] if cfg.fatigue else 0.0 for s in specs.values()])
    return World(
        pool=float(cfg.pool),
        pi0=pi0,
        rho=rho,
        impress=np.minimum(freq[:, None] * rho, 0.9 - rho),
        reach_k=np.array([s.half for s in specs.values()]) * level,
        move=np.stack(moves),
        hazard=hazard,
        drift_fixed=fixed,
        drift_demand=by_demand,
        demand=demand_curve(cfg),
        unpaid=UNPAID_RATES.copy(),
        session=SESSION.copy(),
        capture_max=capture,
        capture_k=np.maximum(0.7 * level, 1e-9),
        fatigue_decay=float(cfg.fatigue_decay),
        units=list(specs),
        roles=[s.role for s in specs.values()],
        unpaid_channels=list(UNPAID),
    )


def _full_moves(off: np.ndarray, strength: np.ndarray) -> np.ndarray:
    """Complete a role's off-diagonal moves ``(6, L+1)`` into ``(F, L, L+1)`` rows, weakened by fatigue."""
    out = np.zeros((strength.size, N_LEVELS, N_LEVELS + 1))
    for f, s in enumerate(strength):
        out[f, :POST] = off * s
        out[f, np.arange(N_LEVELS), np.arange(N_LEVELS)] = 1.0 - out[f].sum(axis=1)
    return out


def _drift_parts(cfg: SimConfig) -> tuple[np.ndarray, np.ndarray]:
    """Off-diagonal daily level moves: fixed (falls, exits, repeat) and demand-driven (arrivals, rises)."""
    fixed = np.zeros((2, N_LEVELS, N_LEVELS))
    by_demand = np.zeros((2, N_LEVELS, N_LEVELS))
    for k in range(2):
        by_demand[k, OUT, 1] = ARRIVAL[k]
        for level in range(1, READY):
            by_demand[k, level, level + 1] = RISE[k, level - 1]
        for level in range(1, READY + 1):
            fixed[k, level, OUT] += EXIT
            if level >= 2:
                fixed[k, level, level - 1] += FALL
        if cfg.repeat:
            fixed[k, POST, REPEAT_LEVEL] = cfg.repeat_rate
    return fixed, by_demand


def spend_history(cfg: SimConfig, world: World, rng: np.random.Generator) -> np.ndarray:
    """Daily spend ``(T, U)``: weekly levels, pulses and dark weeks per unit, raised with demand.

    Each unit's spend averages its catalog level over the window.
    """
    specs = catalog_units(cfg)
    t, n_weeks, n_u = cfg.days, (cfg.days + 6) // 7, world.n_units
    levels = np.array([s.level for s in specs.values()]) * cfg.spend_scale
    vol = np.array([s.volatility for s in specs.values()])
    weekly = np.exp(rng.normal(0.0, 1.0, size=(n_weeks, n_u)) * vol)
    daily = np.repeat(weekly, 7, axis=0)[:t] * rng.lognormal(0.0, 0.15, size=(t, n_u))
    pulses = rng.random((t, n_u)) < 0.04
    daily = daily * np.where(pulses, rng.uniform(1.8, 3.0, size=daily.shape), 1.0)
    daily = daily * world.demand[:, None] ** cfg.spend_follows_demand
    for u in range(n_u):
        for w in rng.choice(np.arange(1, n_weeks - 1), size=cfg.dark_weeks, replace=False):
            daily[7 * w:7 * w + 7, u] = 0.0
    daily = daily / daily.mean(axis=0, keepdims=True).clip(1e-12) * levels
    return np.round(daily, 2)
