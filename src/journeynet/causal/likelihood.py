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
        """Group events by day once, as index tensors local to the day's touched sequences."""
        d = self.data
        self.starts = torch.as_tensor(np.searchsorted(d.first_day, np.arange(d.n_days + 1)), dtype=torch.long)
        order = np.lexsort((d.paid[:, 2], d.paid[:, 0], d.paid[:, 1]))  # by day, sequence, unit order
        paid, recent = d.paid[order], recent[order]
        unpaid = d.unpaid[np.argsort(d.unpaid[:, 1], kind="stable")]
        p_split = np.searchsorted(paid[:, 1], np.arange(d.n_days + 1))
        u_split = np.searchsorted(unpaid[:, 1], np.arange(d.n_days + 1))
        conv_order = np.argsort(d.conv_day, kind="stable")
        c_split = np.searchsorted(d.conv_day[conv_order], np.arange(d.n_days + 1))
        self.by_day = [self._day_events(paid[p_split[t]:p_split[t + 1]], recent[p_split[t]:p_split[t + 1]],
                                        unpaid[u_split[t]:u_split[t + 1]], conv_order[c_split[t]:c_split[t + 1]])
                       for t in range(d.n_days)]
        # a converter's last day counts through its conversion; others are seen through end_day
        self.alive_until = torch.as_tensor(np.where(d.conv_day >= 0, d.conv_day, d.end_day + 1))

    def _day_events(self, pe: np.ndarray, recent: np.ndarray, ue: np.ndarray, conv: np.ndarray) -> dict:
        """Events of one day; paid touches ranked by their order within the sequence's day."""
        d = self.data
        rows = np.unique(np.concatenate([pe[:, 0], ue[:, 0], conv]))
        local = lambda seq: torch.as_tensor(np.searchsorted(rows, seq))  # noqa: E731
        route = d.conv_route[pe[:, 0]]
        converting = (d.conv_day[pe[:, 0]] == pe[:, 1]) & (route == pe[:, 2])
        first = np.r_[True, pe[1:, 0] != pe[:-1, 0]] if len(pe) else np.zeros(0, bool)
        starts = np.maximum.accumulate(np.where(first, np.arange(len(pe)), 0)) if len(pe) else np.zeros(0, int)
        rank = np.arange(len(pe)) - starts
        recent_t = torch.as_tensor(recent, dtype=torch.float64)
        ev: dict = {"rows": torch.as_tensor(rows, dtype=torch.long), "p_row": local(pe[:, 0]),
                    "p_unit": torch.as_tensor(pe[:, 2]), "u_row": local(ue[:, 0]),
                    "u_chan": torch.as_tensor(ue[:, 2])}
        ranks = []
        for r in range(int(rank.max()) + 1 if len(rank) else 0):
            move = (rank == r) & (pe[:, 3] == 1) & ~converting
            ranks.append((local(pe[move, 0]), torch.as_tensor(pe[move, 2]), recent_t[move]))
        ev["ranks"] = ranks
        ev["cu_row"], ev["cu_unit"] = local(pe[converting, 0]), torch.as_tensor(pe[converting, 2])
        ev["cu_recent"] = recent_t[converting]
        hz = conv[d.conv_route[conv] < 0]
        ev["ch_row"], ev["ch_chan"] = local(hz), torch.as_tensor(-1 - d.conv_route[hz])
        return ev

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
        """Forward recursion over days; per-sequence log-likelihoods and log P(never touched)."""
        q = self.probabilities()
        p = q["p"].clamp(min=1e-12)  # zero-spend days have p = 0; keep log and its gradient finite
        log1m_p = torch.log1p(-p)  # (T, U, S)
        logit_p = torch.log(p) - log1m_p
        log1m_q = torch.log1p(-q["unpaid"])  # (C, S)
        logit_q = torch.log(q["unpaid"]) - log1m_q
        base = log1m_p.sum(1) + log1m_q.sum(0)  # (T, S) nobody touched
        pool_vec, pool_log = self._untouched_pool(q, base)
        n_all = self.data.n_sequences
        first = torch.as_tensor(self.data.first_day, dtype=torch.long)
        per_seq = pool_log[first]  # untouched until the first day
        alpha = torch.zeros((0, *q["pi0"].shape), dtype=torch.float64)  # (n, K, S)
        for day in range(self.data.n_days):
            n_new = int(self.starts[day + 1] - self.starts[day])
            if n_new:
                alpha = torch.cat([alpha, pool_vec[day].expand(n_new, -1, -1)], 0)
            alpha, ll = self._day(alpha, day, q, base[day], logit_p[day], logit_q)
            per_seq = per_seq + torch.nn.functional.pad(ll, (0, n_all - ll.shape[0]))
        return per_seq, pool_log[-1], q

    def _untouched_pool(self, q: dict[str, Tensor], base: Tensor) -> tuple[Tensor, Tensor]:
        """Normalized (K, S) state and log-probability of a pool customer untouched before each day."""
        a = q["pi0"]
        vecs, logs, acc = [], [], torch.zeros((), dtype=torch.float64)
        for day in range(self.data.n_days + 1):
            vecs.append(a)
            logs.append(acc)
            if day == self.data.n_days:
                break
            a = a * torch.exp(base[day]) * (1 - q["hazard_t"][day])
            a = torch.einsum("ks,kst->kt", a, q["drift_t"][day])
            s = a.sum()
            acc, a = acc + torch.log(s), a / s
        return torch.stack(vecs), torch.stack(logs)

    def _day(self, alpha: Tensor, day: int, q: dict[str, Tensor], base: Tensor, logit_p: Tensor,
             logit_q: Tensor) -> tuple[Tensor, Tensor]:
        """One day of the forward recursion for the active prefix of sequences.

        Quiet sequences (no event today) share one linear map; only the day's touched
        sequences are gathered, updated event by event, and scattered back.
        """
        ev = self.by_day[day]
        hazard, drift = q["hazard_t"][day], q["drift_t"][day]  # (K, S), (K, S, S)
        keep = 1 - hazard
        quiet = (torch.exp(base)[None, :] * keep)[:, :, None] * drift  # (K, S, S)
        out = torch.einsum("nks,kst->nkt", alpha, quiet)  # (n, K, S)
        conv_ll = torch.zeros(alpha.shape[0], dtype=torch.float64)
        if ev["rows"].numel():
            a = alpha[ev["rows"]]  # (m, K, S)
            log_e = base.expand(a.shape[0], S)
            log_e = log_e.index_add(0, ev["p_row"], logit_p[ev["p_unit"]])
            log_e = log_e.index_add(0, ev["u_row"], logit_q[ev["u_chan"]])
            a = a * torch.exp(log_e)[:, None, :]
            for rows, units, recent in ev["ranks"]:
                if rows.numel():
                    w = torch.exp(-q["wear"] * recent)[:, None, None]  # wear-out of each touch
                    ar = a[rows]
                    moved = torch.bmm(ar, q["move"][units, :, :S])
                    a = a.index_copy(0, rows, ar + w * (moved - ar))
            if ev["cu_row"].numel():
                conv_ll = conv_ll.index_add(0, ev["rows"][ev["cu_row"]], self._paid_conversion(a, ev, q, day, logit_p))
            if ev["ch_row"].numel():
                m = (a[ev["ch_row"]] * hazard).sum((1, 2)) * q["session"][ev["ch_chan"]] * q["uncaptured"][day]
                conv_ll = conv_ll.index_add(0, ev["rows"][ev["ch_row"]], torch.log(m.clamp(min=1e-300)))
            a = torch.einsum("nks,kst->nkt", a * keep, drift)
            out = out.index_copy(0, ev["rows"], a)
        norm = out.sum((1, 2)).clamp(min=1e-300)
        alive = (self.alive_until[: out.shape[0]] > day).to(out.dtype)
        return out / norm[:, None, None], torch.log(norm) * alive + conv_ll

    def _paid_conversion(self, a: Tensor, ev: dict, q: dict[str, Tensor], day: int, logit_p: Tensor) -> Tensor:
        """Log-probability of a conversion in a paid session: caused by the touch, or captured.

        ``a`` already carries the touch's emission ``p``. Caused: the touch's move converts.
        Captured: the hazard fired and the unit took the session, whether its targeting
        touched the customer without converting them, or did not touch at all (``1 - p``:
        divide the emission's odds back out).
        """
        rows, units = ev["cu_row"], ev["cu_unit"]
        ar = a[rows]  # (m, K, S)
        w = torch.exp(-q["wear"] * ev["cu_recent"])[:, None, None]
        move = q["move"][units]
        caused = (torch.bmm(ar, move[:, :, S:]) * w).sum((1, 2))
        touched = ar + w * (torch.bmm(ar, move[:, :, :S]) - ar)
        untouched = ar * torch.exp(-logit_p[units])[:, None, :]
        captured = ((touched + untouched) * q["hazard_t"][day]).sum((1, 2)) * q["captured"][day, units]
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
