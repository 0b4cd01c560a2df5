"""Sample a generated world's customers day by day (the process :mod:`.propagate` takes in expectation)."""

from __future__ import annotations

import numpy as np

from journeynet.synthetic.catalog import N_LEVELS, POST
from journeynet.synthetic.world import World

PAID, UNPAID_TOUCH = 0, 1


class _Events:
    """Touch events collected as flat arrays (customer, day, kind, code, converted, captured)."""

    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {k: [] for k in ("customer", "day", "kind", "code", "converted",
                                                                    "captured")}

    def emit(self, cust: np.ndarray, day: int, kind: int, code: np.ndarray | int,
             conv: np.ndarray | bool, captured: bool = False) -> None:
        self.parts["customer"].append(cust.astype(np.int64))
        self.parts["day"].append(np.full(cust.size, day, dtype=np.int32))
        self.parts["kind"].append(np.full(cust.size, kind, dtype=np.int8))
        self.parts["code"].append(np.broadcast_to(np.asarray(code, dtype=np.int16), cust.shape).copy())
        self.parts["converted"].append(np.broadcast_to(np.asarray(conv, dtype=bool), cust.shape).copy())
        self.parts["captured"].append(np.full(cust.size, captured, dtype=bool))

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate(v) if v else np.zeros(0) for k, v in self.parts.items()}


def _draw(rng: np.random.Generator, cum: np.ndarray) -> np.ndarray:
    """Index drawn from each row of cumulative probabilities ``(n, m)``."""
    return (rng.random(cum.shape[0])[:, None] > cum).sum(axis=1).clip(max=cum.shape[1] - 1)


def sample_events(world: World, spend: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Sample the pool under daily spend ``(T, U)``; returns touch events as flat arrays.

    ``kind`` is 0 for a paid row (``code`` = unit) and 1 for an unpaid row (``code`` =
    channel); ``converted`` marks the row of the session in which the customer bought,
    and ``captured`` a baseline conversion whose session a paid unit took.
    """
    n = int(round(world.pool))
    flat = world.pi0.ravel() / world.pi0.sum()
    cell = rng.choice(flat.size, size=n, p=flat)
    seg, level = cell // N_LEVELS, cell % N_LEVELS
    fatigue = np.zeros(n, dtype=np.int64)
    n_f, n_u, n_c = world.n_fatigue, world.n_units, world.unpaid.shape[0]
    p_touch = world.touch_prob(spend)  # (T, U, L)
    p_exposed = p_touch + world.impression_prob(spend)  # a draw below this and above p_touch: impression only
    cum_move = np.cumsum(world.move, axis=-1)  # (U, F, L, L+1)
    cum_drift = np.cumsum(world.drift(), axis=-1)  # (T, K, L, L)
    capture = world.capture_prob(spend)  # (T, U)
    tiring = n_f > 1  # fatigue is tracked only when the world has it
    ev = _Events()
    for d in range(spend.shape[0]):
        start = level.copy()
        for c in range(n_c):
            ev.emit(np.flatnonzero(rng.random(n) < world.unpaid[c, start]), d, UNPAID_TOUCH, c, False)
        converted = np.zeros(n, dtype=bool)
        touched_any = np.zeros(n, dtype=bool)
        for u in range(n_u):
            if not p_touch[d, u].any():
                continue
            draw, p_u = rng.random(n), p_touch[d, u][start]
            who = np.flatnonzero(draw < p_u)
            touched_any[who] = True
            if tiring:
                touched_any[(draw >= p_u) & (draw < p_exposed[d, u][start])] = True
            moving = who[~converted[who]]
            new = _draw(rng, cum_move[u, fatigue[moving], level[moving]])
            level[moving[new < N_LEVELS]] = new[new < N_LEVELS]
            converted[moving[new == N_LEVELS]] = True
            ev.emit(who, d, PAID, u, np.isin(who, moving[new == N_LEVELS]))
        rest = np.flatnonzero(~converted)
        hz = world.hazard[seg[rest], level[rest]] * world.demand[d]
        buyers = rest[rng.random(rest.size) < hz]
        where = rng.choice(n_u + n_c, size=buyers.size,
                           p=np.concatenate([capture[d], (1.0 - capture[d].sum()) * world.session]))
        for code in np.unique(where):
            who = buyers[where == code]
            if code < n_u:
                ev.emit(who, d, PAID, code, True, captured=True)
            else:
                ev.emit(who, d, UNPAID_TOUCH, code - n_u, True)
        converted[buyers] = True
        stay = np.flatnonzero(~converted)
        level[stay] = _draw(rng, cum_drift[d, seg[stay], level[stay]])
        level[converted] = POST
        if tiring:
            up = touched_any
            fatigue[up] = np.minimum(fatigue[up] + 1, n_f - 1)
            down = ~up & (fatigue > 0) & (rng.random(n) < world.fatigue_decay)
            fatigue[down] -= 1
    return ev.arrays()
