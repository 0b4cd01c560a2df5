"""The latent-funnel model of the journey process, and interventions in it.

Customers of a market pool sit in hidden intent stages (``unaware``, ``interested``,
``ready``) and belong to hidden segments. One day of the process, for a customer in
segment ``k`` and stage ``z`` at the start of the day:

1. each paid unit ``u`` touches the customer with probability
   ``rho[u, z] * reach_u(spend[d, u])`` where ``reach_u(s) = s^a / (s^a + k^a)``
   (saturating reach, targeting by stage); each unpaid channel ``c`` touches
   with probability ``unpaid[c, z]`` (unpaid touches are caused by intent and
   cause nothing);
2. the paid touches move the customer in a fixed unit order through
   ``move[u]``: up the funnel (what openers do) or straight to conversion (what
   closers do); a conversion this way happens on that touch;
3. a customer not yet converted converts with the stage hazard ``hazard[k, z]``,
   in a session of unpaid channel ``c`` drawn from ``session``;
4. a customer not converted drifts between stages through ``drift[k]``.

Because customers are independent given spend, the expected number of customers
in each (segment, stage) evolves linearly, so any intervention on spend (a unit
switched off, scaled, or set to a plan) has an exact expected outcome:
:func:`expected_conversions` propagates the pool forward without sampling.

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
    """Allowed moves on a touch: to the same or a higher stage, or to conversion."""
    mask = np.triu(np.ones((n_stages, n_stages + 1), dtype=bool))
    mask[:, n_stages] = True
    return mask


@dataclass
class FunnelParams:
    """All parameters of the funnel process, as probabilities (numpy arrays).

    Shapes use ``K`` segments, ``S`` stages, ``U`` paid units, ``C`` unpaid channels.
    """

    pool: float  # customers in the market at day 0
    pi0: np.ndarray  # (K, S) day-0 distribution over segment and stage, sums to 1
    reach_k: np.ndarray  # (U,) daily spend at half reach
    reach_a: np.ndarray  # (U,) reach exponent
    rho: np.ndarray  # (U, S) daily touch probability at full reach, per stage
    move: np.ndarray  # (U, S, S+1) stage after a touch; last column is conversion
    drift: np.ndarray  # (K, S, S) daily drift between stages
    hazard: np.ndarray  # (K, S) daily conversion hazard
    unpaid: np.ndarray  # (C, S) daily probability of an unpaid touch per stage
    session: np.ndarray  # (C,) channel of the session in which a hazard conversion happens
    units: list[tuple[str, str]] = field(default_factory=list)
    unpaid_channels: list[str] = field(default_factory=list)

    @property
    def n_units(self) -> int:
        """Number of paid units."""
        return int(self.rho.shape[0])

    @property
    def n_segments(self) -> int:
        """Number of hidden segments."""
        return int(self.pi0.shape[0])

    def touch_prob(self, spend: np.ndarray) -> np.ndarray:
        """Daily touch probability per unit and stage, ``(T, U, S)``, for spend ``(T, U)``."""
        return self.rho[None] * reach(spend, self.reach_k, self.reach_a)[..., None]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (arrays as nested lists)."""
        out = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in asdict(self).items()}
        out["units"] = [list(u) for u in self.units]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FunnelParams:
        """Inverse of :meth:`to_dict`."""
        names = ("units", "unpaid_channels", "pool")
        kw = {k: np.asarray(v, dtype=float) for k, v in d.items() if k not in names}
        kw["units"] = [tuple(u) for u in d.get("units", [])]
        kw["unpaid_channels"] = list(d.get("unpaid_channels", []))
        kw["pool"] = float(d["pool"])
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


def reach(spend: np.ndarray, k: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Saturating reach ``s^a / (s^a + k^a)`` in [0, 1), zero at zero spend."""
    s = np.maximum(np.asarray(spend, dtype=float), 0.0)
    ratio = np.where(s > 0, (np.maximum(s, 1e-300) / k) ** a, 0.0)
    return ratio / (1.0 + ratio)


def day_touch_matrices(params: FunnelParams, spend: np.ndarray, convert_off: np.ndarray | None = None) -> np.ndarray:
    """Expected stage after one day's paid touches, ``(T, S, S+1)`` from each start stage.

    A touch's probability depends on the stage at the start of the day, so each start
    stage's row is pushed through the units in order on its own.
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
    p = params.touch_prob(spend)  # (T, U, S)
    rows = np.broadcast_to(np.eye(N_STAGES, N_STAGES + 1), (spend.shape[0], N_STAGES, N_STAGES + 1)).copy()
    for u in range(params.n_units):
        pu = p[:, u, :, None]  # (T, S, 1): the start stage of each row sets the probability
        rows = rows * (1.0 - pu) + pu * (rows @ full[u])  # (T, S, S+1)
    return rows


def expected_conversions(
    params: FunnelParams,
    spend: np.ndarray,
    convert_off: np.ndarray | None = None,
    start: np.ndarray | None = None,
) -> np.ndarray:
    """Expected conversions per day ``(T,)`` of the whole pool under daily spend ``(T, U)``.

    ``start`` (K, S) is the expected number of customers per segment and stage at day 0
    (default ``pool * pi0``); the final state is available through :func:`propagate`.
    """
    return propagate(params, spend, convert_off, start)[0]


def propagate(
    params: FunnelParams,
    spend: np.ndarray,
    convert_off: np.ndarray | None = None,
    start: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Expected conversions per day ``(T,)`` and the expected (K, S) state after the last day."""
    spend = np.atleast_2d(np.asarray(spend, dtype=float))
    if spend.shape[1] != params.n_units:
        raise ValueError(f"spend has {spend.shape[1]} units, the model has {params.n_units}")
    rows = day_touch_matrices(params, spend, convert_off)  # (T, S, S+1)
    mass = params.pool * params.pi0 if start is None else np.asarray(start, dtype=float)  # (K, S)
    conversions = np.empty(spend.shape[0])
    for d in range(spend.shape[0]):
        after = mass @ rows[d]  # (K, S+1)
        alive = after[:, :N_STAGES]  # (K, S)
        by_hazard = alive * params.hazard
        conversions[d] = after[:, CONVERTED].sum() + by_hazard.sum()
        mass = np.einsum("ks,kst->kt", alive - by_hazard, params.drift)
    return conversions, mass
