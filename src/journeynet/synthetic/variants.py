"""Exact outcomes of many plans that each change one unit of a spend history, in one sweep.

A day's paid touches act in unit order, so for a start (level, fatigue) the within-day
state after all units is ``e @ S_0 @ S_1 @ ... @ S_{U-1}`` with one ``(W, W)`` step matrix
per unit and day. A plan that changes only unit ``u`` (switched off, its conversions
stopped, its spend scaled) shares the prefix ``e @ S_0 ... S_{u-1}`` and the suffix
``S_{u+1} ... S_{U-1}`` with history: sweeping ``u`` backwards keeps one suffix product at
a time, so every removal effect, opener/closer split and response point costs about as
much as two propagations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from journeynet.synthetic.catalog import N_LEVELS
from journeynet.synthetic.propagate import Propagation, run_rows, unit_matrices
from journeynet.synthetic.world import World


@dataclass(frozen=True)
class Variant:
    """History with unit ``unit`` changed: its spend times ``scale``, and optionally no direct conversions."""

    unit: int
    scale: float = 1.0
    convert_off: bool = False


def _exposed_rows(x: np.ndarray) -> np.ndarray:
    """Row states ``(..., W)`` after an impression without a visit: exposed flag set, nothing moves."""
    n_l = (x.shape[-1] - 1) // 2
    out = np.zeros_like(x)
    out[..., n_l:2 * n_l] = x[..., :n_l] + x[..., n_l:2 * n_l]
    out[..., 2 * n_l] = x[..., 2 * n_l]
    return out


def _exposed_targets(n_l: int) -> np.ndarray:
    """Where each within-day state goes on an impression (used on the left of a product)."""
    return np.concatenate([n_l + np.arange(n_l), n_l + np.arange(n_l), [2 * n_l]])


def _probs(world: World, spend_u: np.ndarray, u: int) -> tuple[np.ndarray, np.ndarray]:
    """Touch and impression-only probability of unit ``u`` per day and start level, ``(T, L, 1, 1)`` each."""
    reach = 1.0 - np.exp(-np.maximum(spend_u, 0.0) / world.reach_k[u])  # (T,)
    return (reach[:, None] * world.rho[u])[..., None, None], (reach[:, None] * world.impress[u])[..., None, None]


def _apply(x: np.ndarray, p: np.ndarray, i: np.ndarray, move: np.ndarray) -> np.ndarray:
    """Row states ``x`` ``(..., T, L, F, W)`` after one unit's step (touch ``p``, else impression ``i``)."""
    moved = (x[..., None, :] @ move)[..., 0, :]  # move (F, W, W) broadcasts over the fatigue axis
    return x + p * (moved - x) + i * (_exposed_rows(x) - x)


def variant_outcomes(world: World, spend: np.ndarray, variants: list[Variant]) -> Propagation:
    """Expected outcomes of history ``spend`` ``(T, U)`` changed by each variant (batch in variant order)."""
    n_l, n_f, n_t = N_LEVELS, world.n_fatigue, spend.shape[0]
    w = 2 * n_l + 1
    mats = unit_matrices(world)  # (U, F, W, W)
    stopped = unit_matrices(world, np.ones(world.n_units, dtype=bool))
    targets = _exposed_targets(n_l)
    start = np.zeros((n_t, n_l, n_f, w))
    start[:, np.arange(n_l), :, np.arange(n_l)] = 1.0
    prefix = [start]  # prefix[u]: within-day state before unit u, (T, L, F, W)
    for u in range(world.n_units):
        prefix.append(_apply(prefix[-1], *_probs(world, spend[:, u], u), mats[u]))
    rows = np.zeros((len(variants), n_t, n_l, n_f, w))
    suffix = np.broadcast_to(np.eye(w), (n_t, n_l, n_f, w, w))  # S_{u+1} ... S_{U-1}
    for u in reversed(range(world.n_units)):
        mine = [b for b, v in enumerate(variants) if v.unit == u]
        if mine:
            changed = np.stack([_apply(prefix[u], *_probs(world, spend[:, u] * variants[b].scale, u),
                                       stopped[u] if variants[b].convert_off else mats[u]) for b in mine])
            rows[mine] = (changed[..., None, :] @ suffix)[..., 0, :]
        p, i = _probs(world, spend[:, u], u)
        p, i = p[..., None], i[..., None]
        moved = mats[u] @ suffix  # (F, W, W) @ (T, L, F, W, W)
        suffix = suffix + p * (moved - suffix) + i * (suffix[..., targets, :] - suffix)
    return run_rows(world, rows)
