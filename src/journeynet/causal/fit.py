"""Maximum-likelihood fit of the funnel model (forward algorithm, vectorized in torch).

Every sequence is a market-pool customer who went untouched until its first day, so
its likelihood starts from the pool's untouched forward vector on that day (the stage
then is unknown, not assumed unaware); the customers never touched at all enter
through the probability of staying untouched for the whole window, which is what
identifies the size of the pool. Parameters are unconstrained tensors mapped to
probabilities; L-BFGS climbs the exact log-likelihood.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from journeynet.causal.data import FunnelData
from journeynet.causal.funnel import N_STAGES, FunnelParams, upper_mask
from journeynet.progress import progress_bar

log = logging.getLogger(__name__)
S = N_STAGES


@dataclass
class FunnelFitConfig:
    """Settings of the funnel fit (``attribution.funnel.*`` in Hydra)."""

    n_segments: int = 2
    max_iter: int = 60
    max_sequences: int | None = 30_000
    seed: int = 0
    prior_weight: float = 1.0  # strength of the weak priors that keep rarely seen parameters sane

    def __post_init__(self) -> None:
        if self.n_segments < 1:
            raise ValueError(f"attribution.funnel.n_segments must be >= 1, got {self.n_segments}")


class FunnelNet(nn.Module):
    """Unconstrained parameters of :class:`FunnelParams` and the exact log-likelihood."""

    def __init__(self, data: FunnelData, n_segments: int, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        k, u, c = n_segments, len(data.units), len(data.unpaid_channels)
        self.data = data
        spend = torch.tensor(data.spend, dtype=torch.float64)
        self.register_buffer("spend", spend)
        self.spend_scale = spend.clamp(min=0).sum(0) / (spend > 0).sum(0).clamp(min=1)  # mean positive spend
        self.spend_scale = self.spend_scale.clamp(min=1e-6)
        t = data.n_days
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
        self.register_buffer("move_mask", torch.as_tensor(upper_mask()))
        drift = torch.full((k, S, S), -4.0, dtype=torch.float64)
        drift[:, torch.arange(S), torch.arange(S)] = 0.0
        self.drift_logit = nn.Parameter(drift)
        hz = torch.log(torch.tensor([0.0005, 0.005, 0.1], dtype=torch.float64))
        self.hazard_logit = nn.Parameter(hz.repeat(k, 1) + seg)
        emit = np.bincount(data.unpaid[:, 2], minlength=c) / (t * pool0)
        ub = torch.as_tensor(np.log(np.clip(emit, 1e-7, 0.5)), dtype=torch.float64)
        self.unpaid_logit = nn.Parameter(ub[:, None] + torch.tensor([-1.0, 1.0, 1.5], dtype=torch.float64))
        self.session_logit = nn.Parameter(torch.zeros(c, dtype=torch.float64))
        self._prepare_events()

    def _prepare_events(self) -> None:
        """Group events by day once, as index tensors local to the day's touched sequences."""
        d = self.data
        self.starts = torch.as_tensor(np.searchsorted(d.first_day, np.arange(d.n_days + 1)), dtype=torch.long)
        paid = d.paid[np.lexsort((d.paid[:, 2], d.paid[:, 0], d.paid[:, 1]))]  # by day, sequence, unit order
        unpaid = d.unpaid[np.argsort(d.unpaid[:, 1], kind="stable")]
        p_split = np.searchsorted(paid[:, 1], np.arange(d.n_days + 1))
        u_split = np.searchsorted(unpaid[:, 1], np.arange(d.n_days + 1))
        conv_order = np.argsort(d.conv_day, kind="stable")
        c_split = np.searchsorted(d.conv_day[conv_order], np.arange(d.n_days + 1))
        self.by_day = [self._day_events(paid[p_split[t]:p_split[t + 1]], unpaid[u_split[t]:u_split[t + 1]],
                                        conv_order[c_split[t]:c_split[t + 1]]) for t in range(d.n_days)]
        # a converter's last day counts through its conversion; others are seen through end_day
        self.alive_until = torch.as_tensor(np.where(d.conv_day >= 0, d.conv_day, d.end_day + 1))

    def _day_events(self, pe: np.ndarray, ue: np.ndarray, conv: np.ndarray) -> dict[str, Tensor]:
        """Events of one day; paid touches ranked by their order within the sequence's day."""
        d = self.data
        rows = np.unique(np.concatenate([pe[:, 0], ue[:, 0], conv]))
        local = lambda seq: np.searchsorted(rows, seq)  # noqa: E731
        route = d.conv_route[pe[:, 0]]
        converting = (d.conv_day[pe[:, 0]] == pe[:, 1]) & (route == pe[:, 2])
        first = np.r_[True, pe[1:, 0] != pe[:-1, 0]] if len(pe) else np.zeros(0, bool)
        starts = np.maximum.accumulate(np.where(first, np.arange(len(pe)), 0)) if len(pe) else np.zeros(0, int)
        rank = np.arange(len(pe)) - starts
        ev: dict[str, Tensor] = {"rows": torch.as_tensor(rows, dtype=torch.long),
                                 "p_row": torch.as_tensor(local(pe[:, 0])), "p_unit": torch.as_tensor(pe[:, 2]),
                                 "u_row": torch.as_tensor(local(ue[:, 0])), "u_chan": torch.as_tensor(ue[:, 2])}
        ranks = []
        for r in range(int(rank.max()) + 1 if len(rank) else 0):
            move = (rank == r) & (pe[:, 3] == 1) & ~converting
            ranks.append((torch.as_tensor(local(pe[move, 0])), torch.as_tensor(pe[move, 2])))
        ev["ranks"] = ranks  # type: ignore[assignment]
        ev["cu_row"] = torch.as_tensor(local(pe[converting, 0]))
        ev["cu_unit"] = torch.as_tensor(pe[converting, 2])
        hz = conv[d.conv_route[conv] < 0]
        ev["ch_row"] = torch.as_tensor(local(hz))
        ev["ch_chan"] = torch.as_tensor(-1 - d.conv_route[hz])
        return ev

    # ----- parameter maps -------------------------------------------------------------
    def probabilities(self) -> dict[str, Tensor]:
        """Current parameters as probabilities."""
        a = 0.5 + 2.0 * torch.sigmoid(self.a_raw)
        kk = self.spend_scale * torch.exp(self.log_k)
        ratio = torch.where(self.spend > 0, (self.spend.clamp(min=1e-12) / kk) ** a, torch.zeros_like(self.spend))
        reach = ratio / (1 + ratio)  # (T, U)
        rho = torch.sigmoid(self.rho_logit)
        move = torch.softmax(self.move_logit.masked_fill(~self.move_mask, -torch.inf), dim=-1)
        return {
            "pi0": torch.softmax(self.pi0_logit.reshape(-1), 0).reshape(self.pi0_logit.shape),
            "reach_k": kk, "reach_a": a, "rho": rho, "move": move,
            "p": (rho[None] * reach[..., None]).clamp(max=1 - 1e-9),  # (T, U, S)
            "drift": torch.softmax(self.drift_logit, dim=-1),
            "hazard": torch.sigmoid(self.hazard_logit),
            "unpaid": torch.sigmoid(self.unpaid_logit),
            "session": torch.softmax(self.session_logit, 0),
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
                            unpaid_channels=list(self.data.unpaid_channels))

    def load_params(self, params: FunnelParams) -> None:
        """Set the unconstrained tensors from probabilities (e.g. the generator's truth)."""

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

    # ----- likelihood -----------------------------------------------------------------
    def log_likelihood(self) -> Tensor:
        """Exact log-likelihood of all sequences plus the never-touched rest of the pool."""
        per_seq, never, q = self._forward()
        n = self.data.n_sequences
        n_pool = n + q["pool_extra"]
        pool = (n_pool - n) * never + torch.lgamma(n_pool + 1) - torch.lgamma(n_pool - n + 1)
        return per_seq.sum() + pool

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
            a = a * torch.exp(base[day]) * (1 - q["hazard"])
            a = torch.einsum("ks,kst->kt", a, q["drift"])
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
        keep = 1 - q["hazard"]  # (K, S)
        quiet = (torch.exp(base)[None, :] * keep)[:, :, None] * q["drift"]  # (K, S, S)
        out = torch.einsum("nks,kst->nkt", alpha, quiet)  # (n, K, S)
        conv_ll = torch.zeros(alpha.shape[0], dtype=torch.float64)
        if ev["rows"].numel():
            a = alpha[ev["rows"]]  # (m, K, S)
            log_e = base.expand(a.shape[0], S)
            log_e = log_e.index_add(0, ev["p_row"], logit_p[ev["p_unit"]])
            log_e = log_e.index_add(0, ev["u_row"], logit_q[ev["u_chan"]])
            a = a * torch.exp(log_e)[:, None, :]
            for rows, units in ev["ranks"]:
                if rows.numel():
                    a = a.index_copy(0, rows, torch.bmm(a[rows], q["move"][units, :, :S]))
            if ev["cu_row"].numel():
                m = torch.bmm(a[ev["cu_row"]], q["move"][ev["cu_unit"], :, S:]).sum((1, 2))
                conv_ll = conv_ll.index_add(0, ev["rows"][ev["cu_row"]], torch.log(m.clamp(min=1e-300)))
            if ev["ch_row"].numel():
                m = (a[ev["ch_row"]] * q["hazard"]).sum((1, 2)) * q["session"][ev["ch_chan"]]
                conv_ll = conv_ll.index_add(0, ev["rows"][ev["ch_row"]], torch.log(m.clamp(min=1e-300)))
            a = torch.einsum("nks,kst->nkt", a * keep, q["drift"])
            out = out.index_copy(0, ev["rows"], a)
        norm = out.sum((1, 2)).clamp(min=1e-300)
        alive = (self.alive_until[: out.shape[0]] > day).to(out.dtype)
        return out / norm[:, None, None], torch.log(norm) * alive + conv_ll

    def log_prior(self, weight: float) -> Tensor:
        """Weak priors: reach half-saturation near the spend seen, exponent near 1, sticky drift."""
        return -weight * (0.5 * (self.log_k ** 2).sum() + 0.5 * (self.a_raw ** 2).sum()
                          + 0.01 * (self.move_logit ** 2).sum())


def fit_funnel(data: FunnelData, cfg: FunnelFitConfig | None = None) -> tuple[FunnelParams, dict[str, float]]:
    """Fit by L-BFGS; returns the fitted parameters and fit diagnostics."""
    cfg = cfg or FunnelFitConfig()
    torch.manual_seed(cfg.seed)
    net = FunnelNet(data, cfg.n_segments, cfg.seed)
    opt = torch.optim.LBFGS(net.parameters(), lr=1.0, max_iter=cfg.max_iter, history_size=20,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-6, tolerance_change=1e-9)
    n_obs = max(data.n_sequences, 1)
    history: list[float] = []

    with progress_bar(desc="funnel fit (likelihood evaluations)", total=int(cfg.max_iter * 1.25)) as bar:

        def closure() -> Tensor:
            opt.zero_grad()
            loss = -(net.log_likelihood() + net.log_prior(cfg.prior_weight)) / n_obs
            loss.backward()
            history.append(float(loss.detach()))
            bar.update(1)
            return loss

        opt.step(closure)
    log.info("funnel fit: %d evaluations, loss %.5f -> %.5f", len(history), history[0], history[-1])
    return net.to_params(), {"loglik_per_sequence": -history[-1], "evaluations": float(len(history)),
                             "sequences": float(data.n_sequences), "sample_fraction": data.sample_fraction}
