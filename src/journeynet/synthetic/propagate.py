"""Exact expected conversions of a generated world under any daily spend plan.

One day of the world, for a customer of segment ``k`` at level ``l`` with fatigue ``f``:

1. each paid unit ``u`` touches (a recorded visit) with probability
   ``rho[u, l] * (1 - exp(-s / reach_k[u]))``, or else shows an impression without a visit
   with ``impress[u, l] * (1 - exp(-s / reach_k[u]))`` (independent draws per unit, set by
   the start-of-day level); unpaid channels touch with ``unpaid[c, l]`` and cause nothing;
2. the touches act in unit order through ``move[u, f]``: up, down, out of market, or a
   conversion on that touch (later touches of a converted customer do nothing);
3. a customer not converted by a touch converts with ``hazard[k, l] * demand[d]``; that
   session is captured by a paid unit with :meth:`World.capture_prob`, else it is an
   unpaid session (capture moves credit, never conversions);
4. buyers go to the post-purchase level; the others drift through :meth:`World.drift`;
5. fatigue rises one level after a day with a paid touch or impression and otherwise
   falls one level with probability ``fatigue_decay``.

Customers are independent given spend, so the expected number in each (segment, level,
fatigue) cell evolves linearly: :func:`propagate` pushes the pool forward exactly.
Within a day the state is (level, exposed today) or converted-by-touch: ``W = 2 L + 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from journeynet.synthetic.catalog import N_LEVELS, POST
from journeynet.synthetic.world import World


@dataclass
class Propagation:
    """Expected outcomes of one or a batch of spend plans.

    Arrays carry a leading batch axis ``B`` (one per plan) and a day axis ``T``.
    """

    touch: np.ndarray  # (B, T) conversions on a paid touch
    baseline: np.ndarray  # (B, T) baseline (hazard) conversions
    final: np.ndarray  # (B, K, L, F) expected customers per cell after the last day

    @property
    def conversions(self) -> np.ndarray:
        """All expected conversions per day, ``(B, T)``."""
        return self.touch + self.baseline


def unit_matrices(world: World, convert_off: np.ndarray | None = None) -> np.ndarray:
    """Within-day move of each unit's touch, ``(U, F, W, W)``.

    ``convert_off`` (U,) bool keeps those units' touches from converting: the customer
    stays at their level instead (their touches still move intent).
    """
    n_l, n_f = N_LEVELS, world.n_fatigue
    w = 2 * n_l + 1
    move = world.move.copy()  # (U, F, L, L+1)
    if convert_off is not None and np.any(convert_off):
        diag = np.arange(n_l)
        for u in np.flatnonzero(convert_off):
            move[u, :, diag, diag] += move[u, :, :, n_l].T
            move[u, :, :, n_l] = 0.0
    m = np.zeros((world.n_units, n_f, w, w))
    for touched in (0, 1):
        rows = touched * n_l + np.arange(n_l)
        m[:, :, rows, n_l:2 * n_l] = move[:, :, :, :n_l]
        m[:, :, rows, 2 * n_l] = move[:, :, :, n_l]
    m[:, :, 2 * n_l, 2 * n_l] = 1.0
    return m


def day_rows(world: World, spend: np.ndarray, convert_off: np.ndarray | None = None) -> np.ndarray:
    """Within-day state after the paid touches, ``(B, T, L, F, W)``, from each start level and fatigue."""
    n_l, n_f = N_LEVELS, world.n_fatigue
    mats = unit_matrices(world, convert_off)
    p = world.touch_prob(spend)  # (B, T, U, L)
    imp = world.impression_prob(spend)  # (B, T, U, L)
    rows = np.zeros((*spend.shape[:2], n_l, n_f, 2 * n_l + 1))
    rows[:, :, np.arange(n_l), :, np.arange(n_l)] = 1.0
    for u in range(world.n_units):
        pu = p[:, :, u, :, None, None]  # (B, T, L, 1, 1): the start level sets the probability
        iu = imp[:, :, u, :, None, None]
        if not np.any(pu):
            continue
        moved = np.stack([rows[:, :, :, f] @ mats[u, f] for f in range(n_f)], axis=3)
        # a touch with probability pu, else an impression with probability iu: exclusive outcomes
        rows = rows + pu * (moved - rows) + (iu * (exposed(rows) - rows) if np.any(iu) else 0.0)
    return rows


def exposed(rows: np.ndarray) -> np.ndarray:
    """Within-day state ``(..., W)`` with the exposed-today flag set (an impression: no move)."""
    n_l = (rows.shape[-1] - 1) // 2
    out = np.zeros_like(rows)
    out[..., n_l:2 * n_l] = rows[..., :n_l] + rows[..., n_l:2 * n_l]
    out[..., 2 * n_l] = rows[..., 2 * n_l]
    return out


def end_of_day(world: World) -> np.ndarray:
    """From within-day state to next day's (level, fatigue), ``(T, K, F, W, L*F + 2)``.

    The last two columns count conversions on a touch and baseline conversions.
    """
    n_l, n_f, n_k = N_LEVELS, world.n_fatigue, world.hazard.shape[0]
    t = world.days
    h = world.hazard[None] * world.demand[:, None, None]  # (T, K, L)
    drift = world.drift()  # (T, K, L, L)
    post = np.zeros(n_l)
    post[POST] = 1.0
    level = (1.0 - h)[..., None] * drift + h[..., None] * post  # (T, K, L, L'')
    fat = fatigue_step(n_f, world.fatigue_decay)  # (F, 2, F'')
    out = np.zeros((t, n_k, n_f, 2 * n_l + 1, n_l, n_f))
    for touched in (0, 1):
        w = slice(touched * n_l, (touched + 1) * n_l)
        out[:, :, :, w] = np.einsum("tkln,fg->tkflng", level, fat[:, touched])
    out[:, :, :, 2 * n_l] = np.einsum("n,fg->fng", post, fat[:, 1])[None, None]
    out = out.reshape(t, n_k, n_f, 2 * n_l + 1, n_l * n_f)
    counts = np.zeros((t, n_k, n_f, 2 * n_l + 1, 2))
    counts[:, :, :, 2 * n_l, 0] = 1.0
    for touched in (0, 1):
        counts[:, :, :, touched * n_l:(touched + 1) * n_l, 1] = h[:, :, None, :]
    return np.concatenate([out, counts], axis=-1)


def fatigue_step(n_f: int, decay: float) -> np.ndarray:
    """Fatigue transition ``(F, 2, F)``: up one after a touched day, else down one with ``decay``."""
    step = np.zeros((n_f, 2, n_f))
    for f in range(n_f):
        step[f, 1, min(f + 1, n_f - 1)] = 1.0
        step[f, 0, max(f - 1, 0)] += decay if f > 0 else 1.0
        if f > 0:
            step[f, 0, f] += 1.0 - decay
    return step


def initial_mass(world: World) -> np.ndarray:
    """Expected customers per (segment, level, fatigue) at day 0, ``(K, L, F)``."""
    mass = np.zeros((*world.pi0.shape, world.n_fatigue))
    mass[..., 0] = world.pool * world.pi0
    return mass


def propagate(world: World, spend: np.ndarray, convert_off: np.ndarray | None = None) -> Propagation:
    """Expected conversions of the whole pool under daily spend.

    Parameters
    ----------
    world
        The world's parameters.
    spend
        ``(T, U)`` one plan, or ``(B, T, U)`` a batch of plans; ``T`` is the world's
        window, or 1 for a constant daily plan over the whole window.
    convert_off
        ``(U,)`` bool: these units' touches cannot convert directly (see :func:`unit_matrices`).

    Returns
    -------
    Propagation
        Per plan and day, expected conversions on touches and baseline conversions.
    """
    spend = np.asarray(spend, dtype=float)
    spend = spend[None] if spend.ndim == 2 else spend
    if spend.shape[-1] != world.n_units:
        raise ValueError(f"spend has {spend.shape[-1]} units, the world has {world.n_units}")
    if spend.shape[1] not in (1, world.days):
        raise ValueError(f"spend covers {spend.shape[1]} days, the world has {world.days} (or 1 for a constant plan)")
    return run_rows(world, day_rows(world, spend, convert_off))


def run_rows(world: World, rows: np.ndarray) -> Propagation:
    """Push the pool through the days given each plan's within-day rows ``(B, T or 1, L, F, W)``."""
    ends = end_of_day(world)  # (T, K, F, W, N)
    n_b, n_t = rows.shape[0], world.days
    n_cells = N_LEVELS * world.n_fatigue
    mass = np.broadcast_to(initial_mass(world), (n_b, *world.pi0.shape, world.n_fatigue)).copy()
    touch, base = np.empty((n_b, n_t)), np.empty((n_b, n_t))
    for d in range(n_t):
        r = rows[:, d if rows.shape[1] > 1 else 0]  # (B, L, F, W)
        within = np.einsum("bklf,blfw->bkfw", mass, r)
        nxt = np.einsum("bkfw,kfwn->bkn", within, ends[d])
        touch[:, d], base[:, d] = nxt[:, :, n_cells].sum(axis=1), nxt[:, :, n_cells + 1].sum(axis=1)
        mass = nxt[:, :, :n_cells].reshape(mass.shape)
    return Propagation(touch, base, mass)


def expected_conversions(world: World, spend: np.ndarray, convert_off: np.ndarray | None = None) -> np.ndarray:
    """Expected conversions per day, ``(T,)`` for one plan or ``(B, T)`` for a batch."""
    out = propagate(world, spend, convert_off).conversions
    return out[0] if np.asarray(spend).ndim == 2 else out
