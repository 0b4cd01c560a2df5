"""The latent-funnel model of the journey process, and interventions in it.

Customers of a market pool sit in hidden intent stages (``unaware``, ``interested``,
``ready``) and belong to hidden segments. One day ``d`` of the process, for a customer in
segment ``k`` and stage ``z`` at the start of the day:

1. each paid unit ``u`` touches the customer with probability
   ``rho[u, z] * reach_u(spend[d, u])`` where ``reach_u(s) = s^a / (s^a + k^a)``
   (saturating reach, targeting by stage); each unpaid channel ``c`` touches
   with probability ``unpaid[c, z]`` (unpaid touches are caused by intent and
   cause nothing);
2. the paid touches move the customer in a fixed unit order through ``move[u]``:
   up the funnel (openers), straight to conversion (closers), or down (a harmful
   unit: moves are signed). A touch's effect wears out with the customer's recent
   paid exposure: with ``n`` paid touches in the previous ``wear_window`` days the
   move is ``I + exp(-wear * n) (move - I)``;
3. a customer not yet converted converts with the stage hazard ``hazard[k, z]``,
   scaled by the day's demand (``demand_hazard[d]``, a log-odds shift). The session
   of such a conversion is *captured* by paid unit ``u`` with probability
   ``q_u / (1 + sum_v q_v)``, ``q_u = capture[u] * reach_u(spend[d, u])``, otherwise
   it is an unpaid session of channel ``c`` drawn from ``session``. Capture moves
   credit, never conversions: switching a capturing unit off returns its captured
   conversions to unpaid sessions;
4. a customer not converted drifts between stages through ``drift[k]``, its upward
   entries scaled by the day's demand (``demand_arrival[d]``): seasonal demand is a
   property of the market, not of the spend that follows it.

Because customers are independent given spend, the expected number of customers
in each (segment, stage) evolves linearly, so any intervention on spend (a unit
switched off, scaled, or set to a plan) has an exact expected outcome:
:func:`expected_conversions` propagates the pool forward without sampling. Wear-out
enters the propagation through the expected exposure of a customer in each stage
(a Poisson count: ``E exp(-wear n) = exp(-mu (1 - exp(-wear)))``).

Quickstart::

    import numpy as np
    from journeynet.causal.funnel import FunnelParams, expected_conversions
    params = FunnelParams.example(n_units=2, n_unpaid=1)
    spend = np.full((30, 2), 100.0)
    factual = expected_conversions(params, spend).sum()
    without_unit_0 = expected_conversions(params, spend * [0.0, 1.0]).sum()
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

STAGES = ("unaware", "interested", "ready")
N_STAGES = len(STAGES)
CONVERTED = N_STAGES  # column index of the absorbing converted state in ``move``


def upper_mask(n_stages: int = N_STAGES) -> np.ndarray:
    """Moves a touch may make when effects are positive only: to the same or a higher stage, or to conversion."""
    mask = np.triu(np.ones((n_stages, n_stages + 1), dtype=bool))
    mask[:, n_stages] = True
    return mask


@dataclass
class FunnelParams:
    """All parameters of the funnel process, as probabilities (numpy arrays).

    Shapes use ``K`` segments, ``S`` stages, ``U`` paid units, ``C`` unpaid channels and
    ``T`` days of the fitted window (the demand series; a plan beyond it reuses the
    window's mean demand).
    """

    pool: float  # customers in the market at day 0
    pi0: np.ndarray  # (K, S) day-0 distribution over segment and stage, sums to 1
    reach_k: np.ndarray  # (U,) daily spend at half reach
    reach_a: np.ndarray  # (U,) reach exponent
    rho: np.ndarray  # (U, S) daily touch probability at full reach, per stage
    move: np.ndarray  # (U, S, S+1) stage after a touch; last column is conversion
    drift: np.ndarray  # (K, S, S) daily drift between stages at mean demand
    hazard: np.ndarray  # (K, S) daily conversion hazard at mean demand
    unpaid: np.ndarray  # (C, S) daily probability of an unpaid touch per stage
    session: np.ndarray  # (C,) channel of the session in which a hazard conversion happens
    units: list[tuple[str, str]] = field(default_factory=list)
    unpaid_channels: list[str] = field(default_factory=list)
    capture: np.ndarray | None = None  # (U,) capture strength; q_u = capture[u] * reach_u(spend)
    demand_hazard: np.ndarray | None = None  # (T,) log-odds shift of the hazard per day
    demand_arrival: np.ndarray | None = None  # (T,) log shift of upward drift per day
    wear: float = 0.0  # wear-out rate per recent paid touch
    wear_window: int = 7  # days of exposure that wear a touch out

    def __post_init__(self) -> None:
        if self.capture is None:
            self.capture = np.zeros(self.rho.shape[0])

    @property
    def n_units(self) -> int:
        """Number of paid units."""
        return int(self.rho.shape[0])

    @property
    def n_segments(self) -> int:
        """Number of hidden segments."""
        return int(self.pi0.shape[0])

    def touch_prob(self, spend: np.ndarray) -> np.ndarray:
        """Daily touch probability per unit and stage, ``(..., T, U, S)``, for spend ``(..., T, U)``."""
        return self.rho[None] * reach(spend, self.reach_k, self.reach_a)[..., None]

    def capture_prob(self, spend: np.ndarray) -> np.ndarray:
        """Probability that a hazard conversion's session is captured by each unit, ``(..., T, U)``."""
        q = np.asarray(self.capture) * reach(spend, self.reach_k, self.reach_a)
        return q / (1.0 + q.sum(axis=-1, keepdims=True))

    def daily_rates(self, n_days: int, day0: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Hazard ``(T, K, S)`` and drift ``(T, K, S, S)`` for days ``day0 .. day0 + n_days - 1``."""
        dh = _window(self.demand_hazard, n_days, day0)
        da = _window(self.demand_arrival, n_days, day0)
        hazard = np.broadcast_to(self.hazard, (n_days, *self.hazard.shape))
        if np.any(dh):
            odds = self.hazard / (1.0 - self.hazard)
            shifted = odds[None] * np.exp(dh)[:, None, None]
            hazard = shifted / (1.0 + shifted)
        drift = np.broadcast_to(self.drift, (n_days, *self.drift.shape))
        if np.any(da):
            up = np.triu(np.ones((N_STAGES, N_STAGES)), 1)
            scaled = self.drift[None] * np.exp(da[:, None, None, None] * up)
            drift = scaled / scaled.sum(axis=-1, keepdims=True)
        return hazard, drift

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (arrays as nested lists)."""
        out = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in asdict(self).items()}
        out["units"] = [list(u) for u in self.units]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FunnelParams:
        """Inverse of :meth:`to_dict`."""
        plain = ("units", "unpaid_channels", "pool", "wear", "wear_window")
        kw = {k: (None if v is None else np.asarray(v, dtype=float)) for k, v in d.items() if k not in plain}
        kw["units"] = [tuple(u) for u in d.get("units", [])]
        kw["unpaid_channels"] = list(d.get("unpaid_channels", []))
        kw["pool"] = float(d["pool"])
        kw["wear"] = float(d.get("wear", 0.0))
        kw["wear_window"] = int(d.get("wear_window", 7))
        return cls(**kw)

    @classmethod
    def example(cls, n_units: int = 2, n_unpaid: int = 1) -> FunnelParams:
        """A small valid parameter set (unit 0 opens, the others close), for docs and tests."""
        rho = np.tile([0.02, 0.05, 0.1], (n_units, 1))
        move = np.zeros((n_units, N_STAGES, N_STAGES + 1))
        move[:, np.arange(N_STAGES), np.arange(N_STAGES)] = 1.0
        move[0, 0, :] = [0.6, 0.4, 0.0, 0.0]
        move[1:, 1, :] = [0.0, 0.7, 0.2, 0.1]
        move[1:, 2, :] = [0.0, 0.0, 0.7, 0.3]
        drift = np.tile(np.array([[0.99, 0.01, 0.0], [0.05, 0.93, 0.02], [0.0, 0.1, 0.9]]), (1, 1, 1))
        return cls(
            pool=10_000.0,
            pi0=np.array([[0.9, 0.08, 0.02]]),
            reach_k=np.full(n_units, 100.0),
            reach_a=np.ones(n_units),
            rho=rho,
            move=move,
            drift=drift,
            hazard=np.array([[0.0005, 0.01, 0.2]]),
            unpaid=np.tile([[0.001, 0.02, 0.05]], (n_unpaid, 1)),
            session=np.full(n_unpaid, 1.0 / n_unpaid),
            units=[("paid", f"unit_{i}") for i in range(n_units)],
            unpaid_channels=[f"unpaid_{i}" for i in range(n_unpaid)],
        )


def _window(series: np.ndarray | None, n_days: int, day0: int) -> np.ndarray:
    """Days ``day0 ..`` of a per-day series; days past its end take its mean, no series is zero."""
    if series is None or len(series) == 0:
        return np.zeros(n_days)
    s = np.asarray(series, dtype=float)
    idx = np.arange(day0, day0 + n_days)
    return np.where(idx < s.size, s[np.minimum(idx, s.size - 1)], s.mean())


def reach(spend: np.ndarray, k: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Saturating reach ``s^a / (s^a + k^a)`` in [0, 1), zero at zero spend."""
    s = np.maximum(np.asarray(spend, dtype=float), 0.0)
    ratio = np.where(s > 0, (np.maximum(s, 1e-300) / k) ** a, 0.0)
    return ratio / (1.0 + ratio)


def wear_factor(params: FunnelParams, p: np.ndarray) -> np.ndarray:
    """Expected wear-out multiplier of a touch ``(..., T, S)`` given touch probabilities ``p`` (..., T, U, S).

    A customer in stage ``z`` on day ``d`` has seen a Poisson number of paid touches in
    the previous ``wear_window`` days with mean ``mu`` (the summed touch probabilities),
    so the expected multiplier is ``exp(-mu (1 - exp(-wear)))``.
    """
    if params.wear <= 0:
        return np.ones(p.shape[:-2] + p.shape[-1:])
    daily = p.sum(axis=-2)  # (..., T, S)
    csum = np.concatenate([np.zeros_like(daily[..., :1, :]), np.cumsum(daily, axis=-2)], axis=-2)
    days = np.arange(daily.shape[-2])
    mu = csum[..., days, :] - csum[..., np.maximum(days - params.wear_window, 0), :]
    return np.exp(-mu * (1.0 - np.exp(-params.wear)))


def day_touch_matrices(params: FunnelParams, spend: np.ndarray,
                       convert_off: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Expected stage after one day's paid touches, ``(..., T, S, S+1)`` from each start stage.

    A touch's probability depends on the stage at the start of the day, so each start
    stage's row is pushed through the units in order on its own. Also returns the mass
    each unit's touches convert, ``(..., T, S, U)``; ``spend`` is ``(..., T, U)``.
    ``convert_off`` (U,) bool keeps those units' touches from converting: the mass that
    would convert stays in its stage (used to split opener from closer effects).
    """
    move = params.move.copy()
    if convert_off is not None and np.any(convert_off):
        diag = np.arange(N_STAGES)
        for u in np.flatnonzero(convert_off):
            move[u, diag, diag] += move[u, :, CONVERTED]
            move[u, :, CONVERTED] = 0.0
    full = np.zeros((params.n_units, N_STAGES + 1, N_STAGES + 1))
    full[:, :N_STAGES, :] = move
    full[:, N_STAGES, N_STAGES] = 1.0  # converted is absorbing
    p = params.touch_prob(spend)  # (..., T, U, S)
    weight = p * wear_factor(params, p)[..., None, :]  # (..., T, U, S): touch probability times its strength
    lead = spend.shape[:-1]
    rows = np.broadcast_to(np.eye(N_STAGES, N_STAGES + 1), (*lead, N_STAGES, N_STAGES + 1)).copy()
    by_unit = np.zeros((*lead, N_STAGES, params.n_units))
    for u in range(params.n_units):
        w = weight[..., u, :, None]  # (..., T, S, 1): the start stage of each row sets the probability
        step = rows @ full[u] - rows  # (..., T, S, S+1)
        by_unit[..., u] = w[..., 0] * step[..., CONVERTED]
        rows = rows + w * step
    return rows, by_unit


def expected_conversions(
    params: FunnelParams,
    spend: np.ndarray,
    convert_off: np.ndarray | None = None,
    start: np.ndarray | None = None,
) -> np.ndarray:
    """Expected conversions per day ``(T,)`` of the whole pool under daily spend ``(T, U)``.

    A stack of spend schedules ``(B, T, U)`` gives ``(B, T)`` in one pass over the days.

    ``start`` (K, S) is the expected number of customers per segment and stage at day 0
    (default ``pool * pi0``); the final state is available through :func:`propagate`.
    """
    return propagate(params, spend, convert_off, start)[0]


def propagate(
    params: FunnelParams,
    spend: np.ndarray,
    convert_off: np.ndarray | None = None,
    start: np.ndarray | None = None,
    day0: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Expected conversions per day ``(T,)`` and the expected (K, S) state after the last day.

    ``day0`` is the window day the spend starts on (it sets the demand of each day).
    """
    conversions, _, mass = propagate_routes(params, spend, convert_off, start, day0)
    return conversions, mass


def propagate_routes(
    params: FunnelParams,
    spend: np.ndarray,
    convert_off: np.ndarray | None = None,
    start: np.ndarray | None = None,
    day0: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected conversions per day ``(T,)``, per day and session route ``(T, U + 1)``, final state.

    Route ``u < U`` counts conversions in unit ``u``'s sessions (its touches converting,
    plus hazard conversions it captures); route ``U`` counts unpaid sessions. Spend
    ``(B, T, U)`` (a stack of schedules) adds a leading ``B`` to every output.
    """
    spend = np.asarray(spend, dtype=float)
    single = spend.ndim < 3
    spend = np.atleast_2d(spend)[None] if single else spend
    if spend.shape[-1] != params.n_units:
        raise ValueError(f"spend has {spend.shape[-1]} units, the model has {params.n_units}")
    b, t = spend.shape[:2]
    rows, by_unit = day_touch_matrices(params, spend, convert_off)  # (B, T, S, S+1), (B, T, S, U)
    hazard, drift = params.daily_rates(t, day0)
    captured = params.capture_prob(spend)  # (B, T, U)
    mass = params.pool * params.pi0 if start is None else np.asarray(start, dtype=float)
    mass = np.broadcast_to(mass, (b, *np.shape(mass)[-2:]))  # (B, K, S)
    conversions = np.empty((b, t))
    routes = np.zeros((b, t, params.n_units + 1))
    for d in range(t):
        after = mass @ rows[:, d]  # (B, K, S+1)
        alive = after[..., :N_STAGES]  # (B, K, S)
        by_hazard = alive * hazard[d]
        h = by_hazard.sum((-1, -2))
        conversions[:, d] = after[..., CONVERTED].sum(-1) + h
        routes[:, d, :-1] = np.einsum("bs,bsu->bu", mass.sum(-2), by_unit[:, d]) + h[:, None] * captured[:, d]
        routes[:, d, -1] = h * (1.0 - captured[:, d].sum(-1))
        mass = np.einsum("bks,kst->bkt", alive - by_hazard, drift[d])
    if single:
        return conversions[0], routes[0], mass[0]
    return conversions, routes, mass
