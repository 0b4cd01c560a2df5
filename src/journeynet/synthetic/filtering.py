"""Exact forward filtering of one customer's observed days in a generated world.

A day's observation is what the touchpoints show: the paid units and unpaid channels with
a non-converting row, and at most one converting row (a paid unit or an unpaid channel).
Its likelihood given the start-of-day state sums over what the rows cannot tell apart: a
converting paid row is either that unit's touch converting the customer or a baseline
conversion whose session the unit captured; a day without a paid touch may still carry
impressions that tire the customer. Everything else follows :mod:`.propagate` step by step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from journeynet.synthetic.catalog import N_LEVELS, POST
from journeynet.synthetic.propagate import fatigue_step
from journeynet.synthetic.world import World

NONE, PAID_CONV, UNPAID_CONV = 0, 1, 2


@dataclass
class DayObs:
    """Observations of ``n`` customer-days: who touched, and the converting row if any."""

    touched: np.ndarray  # (n, U) bool: paid units with a non-converting row
    unpaid: np.ndarray  # (n, C) bool: unpaid channels with a non-converting row
    kind: np.ndarray  # (n,) NONE, PAID_CONV or UNPAID_CONV
    code: np.ndarray  # (n,) unit or channel of the converting row

    def take(self, idx: np.ndarray) -> DayObs:
        """The observations ``idx``."""
        return DayObs(self.touched[idx], self.unpaid[idx], self.kind[idx], self.code[idx])

    @classmethod
    def silent(cls, n: int, n_units: int, n_unpaid: int) -> DayObs:
        """``n`` days without any row."""
        return cls(np.zeros((n, n_units), bool), np.zeros((n, n_unpaid), bool), np.zeros(n, np.int64),
                   np.zeros(n, np.int64))


def _moved(m: np.ndarray, move: np.ndarray) -> np.ndarray:
    """Customers ``(n, K, F, L)`` after one touch ``move`` ``(F, L, L+1)``: levels and conversion."""
    return (m[..., None, :] @ move)[..., 0, :]


class DayModel:
    """The world's per-day quantities under a spend history, for filtering."""

    def __init__(self, world: World, spend: np.ndarray) -> None:
        self.world = world
        self.p = world.touch_prob(spend)  # (T, U, L)
        self.imp = world.impression_prob(spend)  # (T, U, L)
        self.capture = world.capture_prob(spend)  # (T, U)
        self.drift = world.drift()  # (T, K, L, L)
        self.fat = fatigue_step(world.n_fatigue, world.fatigue_decay)  # (F, 2, F)
        self._silent: dict[int, np.ndarray] = {}

    def step(self, d: int, alpha: np.ndarray, obs: DayObs) -> np.ndarray:
        """Joint probability of the day's observation and the next state, ``(n, K, L, F)``, from ``alpha``."""
        w, p, imp = self.world, self.p[d], self.imp[d]  # (U, L)
        n_l = N_LEVELS
        touched, kind = obs.touched, obs.kind
        code = np.minimum(obs.code, w.n_units - 1)  # the unit of a converting paid row
        none = ~touched.any(axis=1)
        pt = np.where(touched[:, :, None], p[None], 1.0 - p[None]).prod(axis=1)  # (n, L)
        quiet = (1.0 - p - imp).prod(axis=0)  # (L,) no touch and no impression
        pu = np.where(obs.unpaid[:, :, None], w.unpaid[None], 1.0 - w.unpaid[None]).prod(axis=1)  # (n, L)
        w0 = np.where(none[:, None], quiet[None], 0.0) * pu
        w1 = (pt - np.where(none[:, None], quiet[None], 0.0)) * pu
        a_ok = (kind == PAID_CONV) & ~touched[np.arange(len(kind)), code]
        pv = p[code]  # (n, L)
        w_a = np.where(a_ok[:, None], pt * pv / np.maximum(1.0 - pv, 1e-300) * pu, 0.0)
        start = alpha.transpose(0, 1, 3, 2)  # (n, K, F, L)
        m0, m1, m_a = start * w0[:, None, None], start * w1[:, None, None], start * w_a[:, None, None]
        conv_a = np.zeros(m1.shape[:3])
        any_a = a_ok.any()
        for u in range(w.n_units):
            t_u = np.flatnonzero(touched[:, u])
            if t_u.size:
                m1[t_u] = _moved(m1[t_u], w.move[u])[..., :n_l]
            if not any_a:
                continue
            is_v = np.flatnonzero(a_ok & (code == u))
            if is_v.size:
                conv_a[is_v] += _moved(m_a[is_v], w.move[u])[..., n_l]
                m_a[is_v] = 0.0
            go = np.flatnonzero(touched[:, u] & a_ok & (u < code))
            if go.size:
                m_a[go] = _moved(m_a[go], w.move[u])[..., :n_l]
        h = w.hazard * w.demand[d]  # (K, L)
        channel = np.minimum(obs.code, w.session.size - 1)  # the channel of a converting unpaid row
        session = np.where(kind == PAID_CONV, self.capture[d][code],
                           (1.0 - self.capture[d].sum()) * w.session[channel])
        conv_factor = np.where(kind == NONE, 0.0, session)[:, None, None, None]
        stay = (kind == NONE)[:, None, None, None]
        out = np.zeros_like(alpha)
        for m, flag in ((m0, 0), (m1, 1)):
            survive = np.where(stay, m * (1.0 - h[None, :, None, :]), 0.0)
            moved = np.einsum("nkfl,klm->nkfm", survive, self.drift[d])
            out += np.einsum("nkfl,fg->nklg", moved, self.fat[:, flag])
            bought = (m * h[None, :, None, :] * conv_factor).sum(axis=-1)  # (n, K, F)
            if flag == 1:
                bought = bought + conv_a
            out[:, :, POST] += np.einsum("nkf,fg->nkg", bought, self.fat[:, flag])
        return out

    def silent_matrix(self, d: int) -> np.ndarray:
        """Transition of a day without any row, ``(S, S)`` over flattened (K, L, F)."""
        if d not in self._silent:
            shape = (*self.world.pi0.shape, self.world.n_fatigue)
            s = int(np.prod(shape))
            eye = np.eye(s).reshape(s, *shape)
            obs = DayObs.silent(s, self.world.n_units, self.world.unpaid.shape[0])
            self._silent[d] = self.step(d, eye, obs).reshape(s, s)
        return self._silent[d]

    def prior(self, days: int) -> np.ndarray:
        """State distribution of a customer not seen before each day, ``(days + 1, S)`` (row d: start of day d)."""
        shape = (*self.world.pi0.shape, self.world.n_fatigue)
        v = np.zeros(shape)
        v[..., 0] = self.world.pi0 / self.world.pi0.sum()
        out = [v.ravel()]
        for d in range(days):
            nxt = out[-1] @ self.silent_matrix(d)
            out.append(nxt / nxt.sum())
        return np.stack(out)
