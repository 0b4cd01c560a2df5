"""A neural latent-funnel engine: a recurrent network sets the funnel's daily rates from exposures.

The plain funnel (:mod:`journeynet.causal.funnel`) has fixed rates: a unit's touch probability
depends only on that day's spend, and a touch moves customers through a fixed ``move``.
Here a small recurrent network (GRU or LSTM, hidden ~16) reads the *exposure history*
and covariates day by day, one market-level sequence:

* ``log1p(spend[d, u] / mean positive spend of u)`` for every paid unit (``U`` inputs),
* the day of week (one-hot, 7 inputs),

and its output at day ``d`` adjusts the latent model's rates on that day, on top of the
plain funnel's parameters:

* touch probability ``p[d, u, s] = rho[u, s] reach_u(spend[d, u]) exp(dp[d, u, s])``
  (still zero at zero spend: a unit switched off touches nobody);
* touch transition ``move[d, u, s, :] = softmax(move_logit[u, s, :] + dmove[d, u, s, :])``
  over the allowed moves;
* optionally the hazard, ``hazard[d, k, s] = sigmoid(hazard_logit[k, s] + dh[d, k, s])``.

The output layer starts at zero, so an untrained network *is* the plain funnel. The
customers' stage and segment stay latent (forward algorithm over them as before); the
network sees only exposures, never a customer's evidence, so an intervention (a unit's
spend switched off, scaled) is fed to the network as a changed exposure history and
the population is propagated exactly through the resulting time-varying rates
(:func:`expected_conversions_tv`): intervention, not conditioning.

Quickstart::

    from journeynet.causal.neural import NeuralFunnelConfig, fit_neural_funnel, neural_removal_effects
    model = fit_neural_funnel(data, NeuralFunnelConfig(max_iter=60))  # data: FunnelData
    effects = neural_removal_effects(model, data.spend)
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from journeynet.causal.data import FunnelData
from journeynet.causal.fit import FunnelFitConfig, FunnelNet, fit_funnel
from journeynet.causal.funnel import CONVERTED, N_STAGES, FunnelParams

log = logging.getLogger(__name__)
S = N_STAGES
N_DOW = 7


@dataclass
class NeuralFunnelConfig:
    """Settings of the neural funnel fit."""

    n_segments: int = 2
    plain_iter: int = 100  # L-BFGS iterations of the plain funnel that initialises the joint fit
    max_iter: int = 60  # L-BFGS iterations of the joint (funnel + network) fit
    hidden: int = 16
    cell: str = "gru"  # "gru" or "lstm"
    hazard: bool = False  # let the network adjust the stage hazard too
    output_weight: float = 1.0  # L2 penalty on the network's adjustments (log-likelihood units)
    prior_weight: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.cell not in ("gru", "lstm"):
            raise ValueError(f"cell must be 'gru' or 'lstm', got {self.cell!r}")
        if self.hidden < 1:
            raise ValueError(f"hidden must be >= 1, got {self.hidden}")


class RateNet(nn.Module):
    """Exposure history ``(T, U)`` spend -> per-day adjustments of the funnel's rates."""

    def __init__(self, n_units: int, n_segments: int, spend_scale: Tensor, day_of_week: np.ndarray,
                 hidden: int = 16, cell: str = "gru", hazard: bool = False) -> None:
        super().__init__()
        self.n_units, self.n_segments, self.hazard = n_units, n_segments, hazard
        self.register_buffer("spend_scale", spend_scale.detach().clone().to(torch.float64))
        dow = torch.nn.functional.one_hot(torch.as_tensor(np.asarray(day_of_week), dtype=torch.long), N_DOW)
        self.register_buffer("dow", dow.to(torch.float64))
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn(n_units + N_DOW, hidden, batch_first=True, dtype=torch.float64)
        self.sizes = [n_units * S, n_units * S * (S + 1)] + ([n_segments * S] if hazard else [])
        self.head = nn.Linear(hidden, sum(self.sizes), dtype=torch.float64)
        nn.init.zeros_(self.head.weight)  # zero output: the plain funnel
        nn.init.zeros_(self.head.bias)

    def features(self, spend: Tensor) -> Tensor:
        """``(T, U + 7)``: log1p(spend / the unit's mean positive spend in the data), day of week."""
        x = torch.log1p(spend.clamp(min=0) / self.spend_scale)
        return torch.cat([x, self.dow[: spend.shape[0]]], 1)

    def forward(self, spend: Tensor) -> dict[str, Tensor]:
        """Adjustments ``dp`` (T, U, S), ``dmove`` (T, U, S, S+1) and, with hazard, ``dh`` (T, K, S)."""
        t = spend.shape[0]
        h, _ = self.rnn(self.features(spend)[None])  # causal: day d sees spend of days 0..d
        out = self.head(h[0]).split(self.sizes, dim=1)
        res = {"dp": out[0].reshape(t, self.n_units, S), "dmove": out[1].reshape(t, self.n_units, S, S + 1)}
        if self.hazard:
            res["dh"] = out[2].reshape(t, self.n_segments, S)
        return res


class NeuralFunnelNet(FunnelNet):
    """:class:`FunnelNet` whose touch probabilities, moves (and hazard) vary by day through a :class:`RateNet`.

    ``probabilities()`` returns ``move`` of shape (T, U, S, S+1) (and ``hazard`` (T, K, S)
    with ``hazard=True``); the forward recursion slices them per day.
    """

    def __init__(self, data: FunnelData, n_segments: int, seed: int = 0, hidden: int = 16, cell: str = "gru",
                 hazard: bool = False) -> None:
        super().__init__(data, n_segments, seed)
        torch.manual_seed(seed)
        self.rates = RateNet(len(data.units), n_segments, self.spend_scale, np.asarray(data.dates.dayofweek),
                             hidden, cell, hazard)
        self._last_adjust: dict[str, Tensor] = {}

    def plain_probabilities(self, spend: Tensor | None = None) -> dict[str, Tensor]:
        """The plain funnel's probabilities (zero network output), optionally under another spend."""
        if spend is None:
            return FunnelNet.probabilities(self)
        saved = self.spend
        self.spend = spend.to(saved.dtype)
        try:
            return FunnelNet.probabilities(self)
        finally:
            self.spend = saved

    def probabilities(self, spend: Tensor | None = None) -> dict[str, Tensor]:
        """Per-day probabilities: ``p`` (T, U, S), ``move`` (T, U, S, S+1), ``hazard`` (K, S) or (T, K, S)."""
        spend = self.spend if spend is None else spend
        q = self.plain_probabilities(spend)
        adj = self.rates(spend)
        self._last_adjust = adj
        q["p"] = (q["p"] * torch.exp(adj["dp"])).clamp(max=1 - 1e-9)
        logits = (self.move_logit[None] + adj["dmove"]).masked_fill(~self.move_mask, -torch.inf)
        q["move"] = torch.softmax(logits, dim=-1)
        if "dh" in adj:
            q["hazard"] = torch.sigmoid(self.hazard_logit[None] + adj["dh"])
        return q

    def _day(self, alpha: Tensor, day: int, q: dict[str, Tensor], base: Tensor, logit_p: Tensor,
             logit_q: Tensor) -> tuple[Tensor, Tensor]:
        qd = dict(q)
        qd["move"] = q["move"][day]
        if q["hazard"].dim() == 3:
            qd["hazard"] = q["hazard"][day]
        return super()._day(alpha, day, qd, base, logit_p, logit_q)

    def _untouched_pool(self, q: dict[str, Tensor], base: Tensor) -> tuple[Tensor, Tensor]:
        if q["hazard"].dim() == 2:
            return super()._untouched_pool(q, base)
        a = q["pi0"]
        vecs, logs, acc = [], [], torch.zeros((), dtype=torch.float64)
        for day in range(self.data.n_days + 1):
            vecs.append(a)
            logs.append(acc)
            if day == self.data.n_days:
                break
            a = a * torch.exp(base[day]) * (1 - q["hazard"][day])
            a = torch.einsum("ks,kst->kt", a, q["drift"])
            s = a.sum()
            acc, a = acc + torch.log(s), a / s
        return torch.stack(vecs), torch.stack(logs)

    def output_penalty(self, weight: float) -> Tensor:
        """``weight/2`` times the squared adjustments of the last :meth:`probabilities` call."""
        return 0.5 * weight * sum((v ** 2).sum() for v in self._last_adjust.values())

    def to_params(self) -> FunnelParams:
        """The plain part (zero network output) as :class:`FunnelParams`; see :class:`NeuralFunnel`."""
        with torch.no_grad():
            return self.params_from(self.plain_probabilities())


@dataclass
class NeuralFunnel:
    """A fitted neural funnel: the plain part's parameters and the rate network."""

    params: FunnelParams  # the funnel at zero network output (pool, pi0, drift, base rates ...)
    rate_net: RateNet
    diagnostics: dict[str, float] = field(default_factory=dict)

    def rates(self, spend: np.ndarray) -> dict[str, np.ndarray]:
        """Time-varying rates under daily spend ``(T, U)``: the network re-reads this spend.

        ``p`` (T, U, S), ``move`` (T, U, S, S+1), ``hazard`` (T, K, S).
        """
        spend = np.atleast_2d(np.array(spend, dtype=float))
        if spend.shape[1] != self.params.n_units:
            raise ValueError(f"spend has {spend.shape[1]} units, the model has {self.params.n_units}")
        with torch.no_grad():
            adj = {k: v.numpy() for k, v in self.rate_net(torch.as_tensor(spend, dtype=torch.float64)).items()}
        p = np.minimum(self.params.touch_prob(spend) * np.exp(adj["dp"]), 1 - 1e-9)
        w = self.params.move[None] * np.exp(adj["dmove"])  # softmax(logit + d) over the allowed moves
        move = w / w.sum(-1, keepdims=True)
        hz = np.broadcast_to(self.params.hazard, (spend.shape[0], *self.params.hazard.shape))
        if "dh" in adj:
            h = np.clip(self.params.hazard, 1e-300, 1 - 1e-16)
            hz = 1.0 / (1.0 + np.exp(-(np.log(h) - np.log1p(-h) + adj["dh"])))
        return {"p": p, "move": move, "hazard": np.asarray(hz)}


def propagate_tv(params: FunnelParams, p: np.ndarray, move: np.ndarray, hazard: np.ndarray,
                 convert_off: np.ndarray | None = None,
                 start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact expected propagation with per-day rates; like :func:`journeynet.causal.funnel.propagate`.

    ``p`` (T, U, S), ``move`` (T, U, S, S+1), ``hazard`` (T, K, S); pool, pi0 and drift from
    ``params``. Returns expected conversions per day ``(T,)`` and the final (K, S) state.
    """
    t, n_units = p.shape[:2]
    move = move.copy()
    if convert_off is not None and np.any(convert_off):
        diag = np.arange(S)
        for u in np.flatnonzero(convert_off):
            move[:, u, diag, diag] += move[:, u, :, CONVERTED]
            move[:, u, :, CONVERTED] = 0.0
    full = np.zeros((t, n_units, S + 1, S + 1))
    full[:, :, :S, :] = move
    full[:, :, S, S] = 1.0
    rows = np.broadcast_to(np.eye(S, S + 1), (t, S, S + 1)).copy()
    for u in range(n_units):
        pu = p[:, u, :, None]
        rows = rows * (1.0 - pu) + pu * (rows @ full[:, u])
    mass = params.pool * params.pi0 if start is None else np.asarray(start, dtype=float)
    conversions = np.empty(t)
    for d in range(t):
        after = mass @ rows[d]
        alive = after[:, :S]
        by_hazard = alive * hazard[d]
        conversions[d] = after[:, CONVERTED].sum() + by_hazard.sum()
        mass = np.einsum("ks,kst->kt", alive - by_hazard, params.drift)
    return conversions, mass


def expected_conversions_tv(model: NeuralFunnel, spend: np.ndarray, convert_off: np.ndarray | None = None,
                            start: np.ndarray | None = None) -> np.ndarray:
    """Expected conversions per day ``(T,)`` of the pool under ``spend``, the network re-run on it."""
    r = model.rates(spend)
    return propagate_tv(model.params, r["p"], r["move"], r["hazard"], convert_off, start)[0]


def neural_removal_effects(model: NeuralFunnel, spend: np.ndarray) -> pd.DataFrame:
    """Per paid unit: conversions lost when its spend is switched off (mirrors ``interventions.removal_effects``).

    The switched-off spend goes through the network (exposures), so other units' rates
    may change too; ``closer_effect`` stops only the unit's conversions under the factual
    exposures, ``opener_effect`` is the rest.
    """
    spend = np.asarray(spend, dtype=float)
    factual = expected_conversions_tv(model, spend).sum()
    rows = []
    for u, (channel, campaign) in enumerate(model.params.units):
        off = spend.copy()
        off[:, u] = 0.0
        total = factual - expected_conversions_tv(model, off).sum()
        no_convert = np.zeros(model.params.n_units, dtype=bool)
        no_convert[u] = True
        closer = factual - expected_conversions_tv(model, spend, convert_off=no_convert).sum()
        rows.append((channel, campaign, total, total - closer, closer))
    return pd.DataFrame(rows, columns=["channel", "campaign_type", "effect", "opener_effect", "closer_effect"])


def fit_neural_funnel(data: FunnelData, cfg: NeuralFunnelConfig | None = None,
                      init: FunnelParams | None = None) -> NeuralFunnel:
    """Fit the plain funnel (or start from ``init``), then funnel + network jointly by L-BFGS."""
    import time

    cfg = cfg or NeuralFunnelConfig()
    t0 = time.perf_counter()
    if init is None:
        init, _ = fit_funnel(data, FunnelFitConfig(n_segments=cfg.n_segments, max_iter=cfg.plain_iter,
                                                   seed=cfg.seed, prior_weight=cfg.prior_weight))
    t_plain = time.perf_counter() - t0
    torch.manual_seed(cfg.seed)
    net = NeuralFunnelNet(data, cfg.n_segments, cfg.seed, cfg.hidden, cfg.cell, cfg.hazard)
    net.load_params(init)
    opt = torch.optim.LBFGS(net.parameters(), lr=1.0, max_iter=cfg.max_iter, history_size=20,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-6, tolerance_change=1e-9)
    n_obs = max(data.n_sequences, 1)
    history: list[float] = []

    def closure() -> Tensor:
        opt.zero_grad()
        ll = net.log_likelihood()
        loss = -(ll + net.log_prior(cfg.prior_weight) - net.output_penalty(cfg.output_weight)) / n_obs
        loss.backward()
        history.append(float(loss.detach()))
        return loss

    opt.step(closure)
    with torch.no_grad():
        ll = float(net.log_likelihood()) / n_obs
        adj = net.rates(net.spend)
    log.info("neural funnel fit: %d evaluations, loss %.5f -> %.5f", len(history), history[0], history[-1])
    diag = {"loglik_per_sequence": ll, "loss_start": history[0], "loss_end": history[-1],
            "evaluations": float(len(history)), "plain_seconds": t_plain,
            "joint_seconds": time.perf_counter() - t0 - t_plain, "sequences": float(data.n_sequences)}
    diag.update({f"rms_{k}": float(v.pow(2).mean().sqrt()) for k, v in adj.items()})
    return NeuralFunnel(params=net.to_params(), rate_net=copy.deepcopy(net.rates).eval(), diagnostics=diag)
