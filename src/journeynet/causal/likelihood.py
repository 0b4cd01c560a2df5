"""The funnel model's exact log-likelihood (forward algorithm, vectorized over sequences in torch).

Every sequence is a market-pool customer who went untouched until its first day, so
its likelihood starts from the pool's untouched forward vector on that day (the stage
then is unknown, not assumed unaware); the customers never touched at all enter
through the probability of staying untouched for the whole window, which is what
identifies the size of the pool. Parameters are unconstrained tensors mapped to
probabilities.

A conversion in a paid unit's session has two explanations the likelihood weighs
against each other: the touch converted the customer (``move``), or the customer
converted anyway (the hazard) and the unit captured the session. The data decide
through spend variation: when a capturing unit goes dark, its conversions move to
unpaid sessions instead of vanishing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from journeynet.causal.data import FunnelData
from journeynet.causal.events import Span, Step, build_schedule, make_span
from journeynet.causal.funnel import N_STAGES, FunnelParams, upper_mask

S = N_STAGES


@dataclass(frozen=True)
class Mechanisms:
    """Which of the model's mechanisms are fitted (each off gives the plain funnel)."""

    capture: bool = True
    demand: bool = True
    signed: bool = True
    wear: bool = True
    wear_window: int = 7
    demand_step: float = 0.15  # prior sd of the week-to-week change of log demand


class FunnelNet(nn.Module):
    """Unconstrained parameters of :class:`FunnelParams` and the exact log-likelihood."""

    def __init__(self, data: FunnelData, n_segments: int, seed: int = 0,
                 mechanisms: Mechanisms | None = None) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.mech = mechanisms or Mechanisms(capture=False, demand=False, signed=False, wear=False)
        k, u, c = n_segments, len(data.units), len(data.unpaid_channels)
        self.data = data
        spend = torch.tensor(data.spend, dtype=torch.float64)
        self.register_buffer("spend", spend)
        self.spend_scale = spend.clamp(min=0).sum(0) / (spend > 0).sum(0).clamp(min=1)  # mean positive spend
        self.spend_scale = self.spend_scale.clamp(min=1e-6)
        t = data.n_days
        self.n_weeks = (t + 6) // 7
        self.week = torch.as_tensor(np.arange(t) // 7, dtype=torch.long)
        touches = np.bincount(data.paid[:, 2], minlength=u) / t
        pool0 = 2.0 * data.n_sequences
        self.log_extra = nn.Parameter(torch.tensor(float(np.log(pool0 - data.n_sequences)), dtype=torch.float64))
        seg = 0.3 * torch.randn(k, 1, generator=g, dtype=torch.float64)
        self.pi0_logit = nn.Parameter(torch.tensor([3.0, 0.0, -1.0], dtype=torch.float64).repeat(k, 1) + seg)
        self.log_k = nn.Parameter(torch.zeros(u, dtype=torch.float64))
        self.a_raw = nn.Parameter(torch.zeros(u, dtype=torch.float64))
        base = torch.as_tensor(np.log(np.clip(2 * touches / pool0, 1e-7, 0.5)), dtype=torch.float64)
        self.rho_logit = nn.Parameter(base[:, None] + torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))
        move = torch.full((u, S, S + 1), -2.0, dtype=torch.float64)
        move[:, torch.arange(S), torch.arange(S)] = 1.0
        self.move_logit = nn.Parameter(move + 0.1 * torch.randn(u, S, S + 1, generator=g, dtype=torch.float64))
        mask = np.ones((S, S + 1), dtype=bool) if self.mech.signed else upper_mask()
        self.register_buffer("move_mask", torch.as_tensor(mask))
        drift = torch.full((k, S, S), -4.0, dtype=torch.float64)
        drift[:, torch.arange(S), torch.arange(S)] = 0.0
        self.drift_logit = nn.Parameter(drift)
        hz = torch.log(torch.tensor([0.0005, 0.005, 0.1], dtype=torch.float64))
        self.hazard_logit = nn.Parameter(hz.repeat(k, 1) + seg)
        emit = np.bincount(data.unpaid[:, 2], minlength=c) / (t * pool0)
        ub = torch.as_tensor(np.log(np.clip(emit, 1e-7, 0.5)), dtype=torch.float64)
        self.unpaid_logit = nn.Parameter(ub[:, None] + torch.tensor([-1.0, 1.0, 1.5], dtype=torch.float64))
        self.session_logit = nn.Parameter(torch.zeros(c, dtype=torch.float64))
        self.capture_log = nn.Parameter(torch.full((u,), -4.0, dtype=torch.float64),
                                        requires_grad=self.mech.capture)
        self.demand_h = nn.Parameter(torch.zeros(self.n_weeks, dtype=torch.float64), requires_grad=self.mech.demand)
        self.demand_a = nn.Parameter(torch.zeros(self.n_weeks, dtype=torch.float64), requires_grad=self.mech.demand)
        self.wear_raw = nn.Parameter(torch.tensor(-3.0, dtype=torch.float64), requires_grad=self.mech.wear)
        recent = data.recent_exposure(self.mech.wear_window) if self.mech.wear else np.zeros(len(data.paid))
        self._prepare_events(recent)

    # ----- events ---------------------------------------------------------------------
    def _prepare_events(self, recent: np.ndarray) -> None:
        """The event schedule (see :mod:`.events`), built once per data set."""
        self.schedule = build_schedule(self.data, recent)
        t = self.data.n_days
        self._pool_span = make_span(np.zeros(t + 1, np.int64), np.arange(t + 1), t, self.schedule.n_levels)
        self._unorder = torch.argsort(self.schedule.order)
        self._end_span = make_span(np.arange(t + 1), t - np.arange(t + 1), t, self.schedule.n_levels)

    # ----- parameter maps -------------------------------------------------------------
    def probabilities(self) -> dict[str, Tensor]:
        """Current parameters as probabilities; per-day rates carry the demand series."""
        a = 0.5 + 2.0 * torch.sigmoid(self.a_raw)
        kk = self.spend_scale * torch.exp(self.log_k)
        ratio = torch.where(self.spend > 0, (self.spend.clamp(min=1e-12) / kk) ** a, torch.zeros_like(self.spend))
        reach = ratio / (1 + ratio)  # (T, U)
        rho = torch.sigmoid(self.rho_logit)
        move = torch.softmax(self.move_logit.masked_fill(~self.move_mask, -torch.inf), dim=-1)
        dh, da = self.demand_h[self.week], self.demand_a[self.week]  # (T,)
        hazard_t = torch.sigmoid(self.hazard_logit[None] + dh[:, None, None])  # (T, K, S)
        up = torch.triu(torch.ones(S, S, dtype=torch.float64), 1)
        drift_t = torch.softmax(self.drift_logit[None] + da[:, None, None, None] * up, dim=-1)  # (T, K, S, S)
        q = torch.exp(self.capture_log)[None] * reach  # (T, U)
        captured = q / (1 + q.sum(1, keepdim=True)) if self.mech.capture else torch.zeros_like(q)
        return {
            "pi0": torch.softmax(self.pi0_logit.reshape(-1), 0).reshape(self.pi0_logit.shape),
            "reach_k": kk, "reach_a": a, "rho": rho, "move": move,
            "p": (rho[None] * reach[..., None]).clamp(max=1 - 1e-9),  # (T, U, S)
            "drift": torch.softmax(self.drift_logit, dim=-1), "drift_t": drift_t,
            "hazard": torch.sigmoid(self.hazard_logit), "hazard_t": hazard_t,
            "unpaid": torch.sigmoid(self.unpaid_logit),
            "session": torch.softmax(self.session_logit, 0),
            "captured": captured, "uncaptured": 1 - captured.sum(1),  # (T, U), (T,)
            "capture": torch.exp(self.capture_log) * float(self.mech.capture), "demand_h": dh, "demand_a": da,
            "wear": torch.nn.functional.softplus(self.wear_raw) if self.mech.wear else torch.zeros(()),
            "pool_extra": torch.exp(self.log_extra),
        }

    def to_params(self) -> FunnelParams:
        """The fitted model as :class:`FunnelParams`, its pool scaled back to the whole market."""
        with torch.no_grad():
            return self.params_from(self.probabilities())

    def params_from(self, probabilities: dict[str, Tensor]) -> FunnelParams:
        """:class:`FunnelParams` from a :meth:`probabilities` dict, the pool scaled to the market."""
        q = {k: v.detach().cpu().numpy() for k, v in probabilities.items()}
        pool = (self.data.n_sequences + float(q["pool_extra"])) / self.data.sample_fraction
        return FunnelParams(pool=pool, pi0=q["pi0"], reach_k=q["reach_k"], reach_a=q["reach_a"], rho=q["rho"],
                            move=q["move"], drift=q["drift"], hazard=q["hazard"], unpaid=q["unpaid"],
                            session=q["session"], units=list(self.data.units),
                            unpaid_channels=list(self.data.unpaid_channels),
                            capture=q["capture"],
                            demand_hazard=q["demand_h"] if self.mech.demand else None,
                            demand_arrival=q["demand_a"] if self.mech.demand else None,
                            wear=float(q["wear"]), wear_window=self.mech.wear_window)

    def load_params(self, params: FunnelParams) -> None:
        """Set the unconstrained tensors from probabilities (e.g. a sampled world's truth)."""

        def logit(x: np.ndarray) -> Tensor:
            x = np.clip(np.asarray(x, dtype=float), 1e-12, 1 - 1e-12)
            return torch.as_tensor(np.log(x) - np.log1p(-x))

        def log(x: np.ndarray) -> Tensor:
            return torch.as_tensor(np.log(np.clip(np.asarray(x, dtype=float), 1e-13, None)))

        n = self.data.n_sequences
        extra = max(params.pool * self.data.sample_fraction - n, 1.0)
        with torch.no_grad():
            self.log_extra.copy_(torch.tensor(np.log(extra)))
            self.pi0_logit.copy_(log(params.pi0))
            self.log_k.copy_(torch.log(torch.as_tensor(params.reach_k) / self.spend_scale))
            self.a_raw.copy_(logit((np.asarray(params.reach_a) - 0.5) / 2.0))
            self.rho_logit.copy_(logit(params.rho))
            self.move_logit.copy_(log(params.move))
            self.drift_logit.copy_(log(params.drift))
            self.hazard_logit.copy_(logit(params.hazard))
            self.unpaid_logit.copy_(logit(params.unpaid))
            self.session_logit.copy_(log(params.session))
            self.capture_log.copy_(log(params.capture))

    # ----- likelihood -----------------------------------------------------------------
    def log_likelihood(self, weights: Tensor | None = None) -> Tensor:
        """Exact log-likelihood of all sequences plus the never-touched rest of the pool.

        ``weights`` (N,) reweights sequences (a bootstrap over customers draws them).
        """
        per_seq, never, q = self._forward()
        n = self.data.n_sequences
        n_pool = n + q["pool_extra"]
        pool = (n_pool - n) * never + torch.lgamma(n_pool + 1) - torch.lgamma(n_pool - n + 1)
        return (per_seq if weights is None else per_seq * weights).sum() + pool

    def sequence_log_likelihood(self) -> Tensor:
        """Log-likelihood of each sequence ``(N,)``, its untouched days before the first touch included."""
        return self._forward()[0]

    def _forward(self) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """Forward recursion over each sequence's event days; per-sequence log-likelihoods, log P(never touched).

        A sequence starts from the pool's untouched state on its first day (the stage
        then is unknown, not assumed unaware); quiet stretches between its event days
        take the shared day maps through span tables (:mod:`.events`).
        """
        q = self.probabilities()
        p = q["p"].clamp(min=1e-12)  # zero-spend days have p = 0; keep log and its gradient finite
        log1m_p = torch.log1p(-p)  # (T, U, S)
        logit_p = torch.log(p) - log1m_p
        log1m_q = torch.log1p(-q["unpaid"])  # (C, S)
        logit_q = torch.log(q["unpaid"]) - log1m_q
        base = log1m_p.sum(1) + log1m_q.sum(0)  # (T, S) nobody touched
        keep = 1 - q["hazard_t"]  # (T, K, S)
        quiet = (torch.exp(base)[:, None, :] * keep)[..., None] * q["drift_t"]  # (T, K, S, S) a day without events
        tables = self._span_tables(quiet)
        sch = self.schedule
        n_days = self.data.n_days
        pool_vec, pool_log = _apply_span(q["pi0"].expand(n_days + 1, -1, -1), self._pool_span, tables)
        alpha = pool_vec[sch.first_day]  # untouched until the first day
        total = pool_log[sch.first_day]
        done = []  # states after each sequence's last event day, last step first
        for k, step in enumerate(sch.steps):
            alpha, ll = self._event_day(alpha[: step.m], step, q, base, logit_p, logit_q, keep)
            m_next = sch.steps[k + 1].m if k + 1 < len(sch.steps) else 0
            done.append(alpha[m_next:])
            if m_next:
                alpha, ll_gap = _apply_span(alpha[:m_next], step.gap, tables)
                ll = ll + torch.nn.functional.pad(ll_gap, (0, step.m - m_next))
            total = total + torch.nn.functional.pad(ll, (0, total.shape[0] - step.m))
        if done:
            # after the last event day: quiet through the end, a backward vector per start day
            last = torch.cat(done[::-1])
            beta, beta_log = _backward_vectors(self._end_span, tables)
            ll_end = torch.log((last[sch.final_rows] * beta[sch.final_start]).sum((1, 2)).clamp(min=1e-300))
            total = total.index_add(0, sch.final_rows, ll_end + beta_log[sch.final_start])
            if sch.final_other.numel():
                _, ll_other = _apply_span(last[sch.final_other], sch.final, tables)
                total = total.index_add(0, sch.final_other, ll_other)
        return total[self._unorder], pool_log[-1], q

    def _span_tables(self, quiet: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Products of the day maps over spans of 1, 2, 4, ... days from each day, with log scales.

        Entry ``T`` of every level is the identity (rows not using a level point there).
        Each level is rescaled by a constant (detached), so the products cannot underflow
        and the log-likelihood and its gradient stay exact.
        """
        t, k = quiet.shape[0], quiet.shape[1]
        eye = torch.eye(S, dtype=quiet.dtype).expand(1, k, S, S)
        mat, log_c = torch.cat([quiet, eye], 0), quiet.new_zeros(t + 1)
        tables = []
        for j in range(self.schedule.n_levels):
            scale = mat.amax((1, 2, 3)).detach().clamp(min=1e-300)
            mat, log_c = mat / scale[:, None, None, None], log_c + torch.log(scale)
            tables.append((mat, log_c))
            if j + 1 < self.schedule.n_levels:
                nxt = torch.clamp(torch.arange(t + 1) + 2 ** j, max=t)
                mat, log_c = mat @ mat[nxt], log_c + log_c[nxt]
        return tables

    def _event_day(self, alpha: Tensor, step: Step, q: dict[str, Tensor], base: Tensor, logit_p: Tensor,
                   logit_q: Tensor, keep: Tensor) -> tuple[Tensor, Tensor]:
        """One event day of each of the step's sequences (their days differ); normalized state and log-likelihood."""
        day = step.day
        log_e = base[day]  # (m, S)
        log_e = log_e.index_add(0, step.p_row, logit_p[day[step.p_row], step.p_unit])
        log_e = log_e.index_add(0, step.u_row, logit_q[step.u_chan])
        a = alpha * torch.exp(log_e)[:, None, :]
        for rows, units, recent in step.ranks:
            if rows.numel():
                w = torch.exp(-q["wear"] * recent)[:, None, None]  # wear-out of each touch
                ar = a[rows]
                a = a.index_copy(0, rows, ar + w * (_times(ar, q["move"][units, :, :S]) - ar))
        conv_ll = alpha.new_zeros(alpha.shape[0])
        if step.cu_row.numel():
            conv_ll = conv_ll.index_add(0, step.cu_row, self._paid_conversion(a, step, q, logit_p))
        if step.ch_row.numel():
            d = day[step.ch_row]
            m = (a[step.ch_row] * q["hazard_t"][d]).sum((1, 2)) * q["session"][step.ch_chan] * q["uncaptured"][d]
            conv_ll = conv_ll.index_add(0, step.ch_row, torch.log(m.clamp(min=1e-300)))
        a = _times(a * keep[day], q["drift_t"][day])
        norm = a.sum((1, 2)).clamp(min=1e-300)
        return a / norm[:, None, None], torch.log(norm) * step.counted + conv_ll

    def _paid_conversion(self, a: Tensor, step: Step, q: dict[str, Tensor], logit_p: Tensor) -> Tensor:
        """Log-probability of a conversion in a paid session: caused by the touch, or captured.

        ``a`` already carries the touch's emission ``p``. Caused: the touch's move converts.
        Captured: the hazard fired and the unit took the session, whether its targeting
        touched the customer without converting them, or did not touch at all (``1 - p``:
        divide the emission's odds back out).
        """
        rows, units = step.cu_row, step.cu_unit
        d = step.day[rows]
        ar = a[rows]  # (m, K, S)
        w = torch.exp(-q["wear"] * step.cu_recent)[:, None, None]
        move = q["move"][units]
        caused = (_times(ar, move[:, :, S:]) * w).sum((1, 2))
        touched = ar + w * (_times(ar, move[:, :, :S]) - ar)
        untouched = ar * torch.exp(-logit_p[d, units])[:, None, :]
        captured = ((touched + untouched) * q["hazard_t"][d]).sum((1, 2)) * q["captured"][d, units]
        return torch.log((caused + captured).clamp(min=1e-300))

    def log_prior(self, weight: float) -> Tensor:
        """Weak priors keeping rarely seen parameters sane, and a smooth demand.

        Reach half-saturation near the spend seen, exponent near 1, moves near staying,
        capture and wear-out small unless the data ask for them; log demand is a random
        walk by week with mean zero (the base rates carry the level).
        """
        prior = 0.5 * (self.log_k ** 2).sum() + 0.5 * (self.a_raw ** 2).sum() + 0.01 * (self.move_logit ** 2).sum()
        if self.mech.capture:
            prior = prior + 0.02 * ((self.capture_log + 4.0) ** 2).sum()
        if self.mech.wear:
            prior = prior + 0.05 * (self.wear_raw + 3.0) ** 2
        if self.mech.demand:
            step = self.mech.demand_step
            for series in (self.demand_h, self.demand_a):
                prior = prior + 0.5 * (torch.diff(series) ** 2).sum() / step ** 2 + 0.5 * series.sum() ** 2
        return -weight * prior


def _times(a: Tensor, mat: Tensor) -> Tensor:
    """Row vectors times matrices, per row: ``(m, K, S) x (m, S, J) -> (m, K, J)``, or ``(m, K, S, J)`` per segment."""
    if mat.dim() == 3:
        mat = mat[:, None]
    return (a.unsqueeze(-2) @ mat).squeeze(-2)


def _apply_span(alpha: Tensor, span: Span, tables: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """Each row's quiet stretch applied to its state; normalized states and log-probabilities."""
    log_c = alpha.new_zeros(alpha.shape[0])
    for j, idx in span.levels:
        mat, scale = tables[j]
        alpha = _times(alpha, mat[idx])
        log_c = log_c + scale[idx]
    norm = alpha.sum((1, 2)).clamp(min=1e-300)
    return alpha / norm[:, None, None], log_c + torch.log(norm)


def _backward_vectors(span: Span, tables: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """Per row, the stretch's product times a vector of ones (applied right to left); normalized, log scales."""
    k, s = tables[0][0].shape[1:3]
    n = span.levels[0][1].shape[0] if span.levels else 1
    beta = tables[0][0].new_ones(n, k, s)
    log_c = beta.new_zeros(n)
    for j, idx in reversed(span.levels):
        mat, scale = tables[j]
        beta = (mat[idx] @ beta[..., None]).squeeze(-1)
        log_c = log_c + scale[idx]
        top = beta.amax((1, 2)).detach().clamp(min=1e-300)  # a constant: exact value and gradient
        beta, log_c = beta / top[:, None, None], log_c + torch.log(top)
    return beta, log_c
