"""The allocation polytope: its array form, the exact projection onto it, cent rounding.

The polytope is ``{x : sum x = total, lo <= x <= hi, ch_lo <= sum over a channel <= ch_hi}``.
:func:`project` is exact (piecewise-linear roots, n log n); :func:`round_cents` turns a
point of it into cents that still sum to the total and respect every bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Unit = tuple[str, str]


@dataclass
class Box:
    """Array form of the constraints; ``*_src`` name the constraint behind each bound."""

    units: list[Unit]
    channels: list[str]
    ch: np.ndarray  # (n,) channel index of each unit
    lo: np.ndarray
    hi: np.ndarray
    ch_lo: np.ndarray  # (C,)
    ch_hi: np.ndarray
    lo_src: list[str]
    hi_src: list[str]
    ch_lo_src: list[str]
    ch_hi_src: list[str]


def _solve_pl(fun, target: np.ndarray, a: np.ndarray, b: np.ndarray, tol: float) -> np.ndarray:
    """Roots of nondecreasing piecewise-linear ``fun(t) = target``, elementwise.

    Safeguarded Newton: on a linear piece Newton is exact, so it ends in a few
    steps once the active set settles; bisection keeps the bracket honest.
    """
    t = 0.5 * (a + b)
    for _ in range(200):
        v, slope = fun(t)
        r = target - v
        done = np.abs(r) <= tol
        if done.all():
            break
        a = np.where(r > 0, t, a)
        b = np.where(r < 0, t, b)
        step = t + r / np.where(slope > 0, slope, 1.0)
        ok = (slope > 0) & (step > a) & (step < b)
        t = np.where(done, t, np.where(ok, step, 0.5 * (a + b)))
        if np.all(done | (b - a <= 1e-15 * (np.abs(a) + np.abs(b) + 1.0))):
            break
    return t


def project(y: np.ndarray, box: Box, total: float, w: np.ndarray | None = None) -> np.ndarray:
    """Exact projection of ``y`` onto the allocation polytope.

    Minimises ``sum_i (x_i - y_i)**2 / w_i`` (Euclidean for ``w = 1``, the default).
    KKT: ``x_i = clip(y_i + w_i (lam + mu_c), lo_i, hi_i)`` with ``mu_c >= 0`` when
    the channel floor binds and ``<= 0`` when its cap binds. A channel's sum
    ``S_c(t)`` is nondecreasing in its shift ``t = lam + mu_c``, so the shift is
    ``clip(lam, tL_c, tU_c)`` where ``S_c(tL_c) = floor`` and ``S_c(tU_c) = cap``:
    both are found once (vectorised over channels), then one scalar root gives
    ``lam``. Each root is piecewise linear, solved exactly by safeguarded Newton.
    """
    lo, hi, ch, C = box.lo, box.hi, box.ch, len(box.channels)
    w = np.ones_like(y) if w is None else w
    a0, b0 = float(np.min((lo - y) / w)) - 1.0, float(np.max((hi - y) / w)) + 1.0
    tol = 1e-15 * max(total, 1.0)

    def chan_sum(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z = y + w * t[ch]
        free = (z > lo) & (z < hi)
        return np.bincount(ch, np.clip(z, lo, hi), C), np.bincount(ch, w * free, C)

    sum_lo, sum_hi = np.bincount(ch, lo, C), np.bincount(ch, hi, C)
    full = lambda v: np.full(C, v)  # noqa: E731
    need = np.maximum(box.ch_lo, sum_lo)
    # a cap is redundant when the other channels' floors already leave no more than it
    free_lo, free_hi = box.ch_lo <= sum_lo, (box.ch_hi >= sum_hi) | (
        box.ch_hi >= total - (need.sum() - need))
    tL, tU = full(a0), full(b0)
    if not free_lo.all():
        tL = _solve_pl(chan_sum, np.clip(box.ch_lo, sum_lo, sum_hi), full(a0), full(b0), tol)
        tL = np.where(free_lo, a0, tL)
    if not free_hi.all():
        tU = _solve_pl(chan_sum, np.clip(box.ch_hi, sum_lo, sum_hi), full(a0), full(b0), tol)
        tU = np.maximum(np.where(free_hi, b0, tU), tL)
    tLi, tUi = tL[ch], tU[ch]

    def grand(lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z = y + w * np.clip(lam[0], tLi, tUi)
        free = (z > lo) & (z < hi) & (lam[0] > tLi) & (lam[0] < tUi)
        return np.array([np.clip(z, lo, hi).sum()]), np.array([w[free].sum()])

    lam = _solve_pl(grand, np.array([total]), np.array([a0]), np.array([b0]), tol)[0]
    z = y + w * np.clip(lam, tLi, tUi)
    x = np.clip(z, lo, hi)
    # polish: put the last rounding residue on the free coordinates so sum(x) == total to
    # float precision; otherwise the multiplier times that residue swamps small ascent steps
    free = (z > lo) & (z < hi) & (lam > tLi) & (lam < tUi)
    if free.any():
        x[free] += (total - x.sum()) * w[free] / w[free].sum()
    return x


def _bump(c: np.ndarray, order: np.ndarray, room: np.ndarray, ch: np.ndarray, count: int,
          delta: int) -> int:
    """Move up to ``count`` units (in ``order``) by one cent, within each channel's ``room``."""
    room, done = room.copy(), 0
    for i in order:
        if done >= count:
            break
        if room[ch[i]] > 0:
            c[i] += delta
            room[ch[i]] -= 1
            done += 1
    return done


def round_cents(x: np.ndarray, b: Box, total: float) -> np.ndarray:
    """Largest-remainder rounding to cents: sums to ``total`` and respects every bound."""
    lo = np.ceil(np.round(b.lo * 100, 6))
    hi = np.maximum(np.floor(np.round(b.hi * 100, 6)), lo)
    cl, chh = np.ceil(np.round(b.ch_lo * 100, 6)), np.floor(np.round(b.ch_hi * 100, 6))
    C, target = len(b.channels), round(total * 100)
    c = np.clip(np.floor(x * 100 + 1e-7), lo, hi)
    rem = x * 100 - c
    up = np.argsort(-rem, kind="stable")
    for _ in range(len(x) + 2):  # channel floors first: flooring may leave one a cent short
        deficit = np.maximum(cl - np.bincount(b.ch, c, C), 0)
        if deficit.sum() == 0 or not _bump(c, up[c[up] < hi[up]], deficit, b.ch, len(x), 1):
            break
    for _ in range(len(x) + 2):
        left, csum = target - int(c.sum()), np.bincount(b.ch, c, C)
        if left > 0:
            moved = _bump(c, up[c[up] < hi[up]], chh - csum, b.ch, left, 1)
        elif left < 0:
            down = up[::-1]
            moved = _bump(c, down[c[down] > lo[down]], csum - cl, b.ch, -left, -1)
        else:
            break
        if not moved:
            break
    return c / 100.0
