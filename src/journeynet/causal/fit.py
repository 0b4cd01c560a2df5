"""Maximum-likelihood fit of the funnel model by L-BFGS (the likelihood is in :mod:`.likelihood`).

Quickstart::

    from journeynet.causal.fit import FunnelFitConfig, fit_funnel
    params, diagnostics = fit_funnel(data, FunnelFitConfig(max_iter=60))  # data: build_funnel_data(...)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from journeynet.causal.data import FunnelData
from journeynet.causal.funnel import FunnelParams
from journeynet.causal.likelihood import FunnelNet, Mechanisms
from journeynet.progress import progress_bar

log = logging.getLogger(__name__)

__all__ = ["FunnelFitConfig", "FunnelNet", "Mechanisms", "fit_funnel"]


@dataclass
class FunnelFitConfig:
    """Settings of the funnel fit (``attribution.funnel.*`` in Hydra).

    ``capture``, ``demand``, ``signed`` and ``wear`` switch the model's mechanisms; all
    off is the plain funnel (touches only move customers up, constant demand, every
    conversion in a paid session caused by the touch).
    """

    n_segments: int = 2
    max_iter: int = 60
    max_sequences: int | None = 30_000
    seed: int = 0
    prior_weight: float = 1.0  # strength of the weak priors that keep rarely seen parameters sane
    capture: bool = True  # a paid session may capture a conversion that would have happened anyway
    demand: bool = True  # weekly demand (arrivals and baseline intent), a smooth random walk
    signed: bool = True  # touches may move customers down: a harmful unit's effect is negative
    wear: bool = True  # a touch's effect falls with the customer's recent paid exposure
    wear_window: int = 7  # days of exposure that wear a touch out
    demand_step: float = 0.15  # prior sd of the week-to-week change of log demand
    log_every: int = 10  # log the loss every this many likelihood evaluations
    holdout_weeks: int = 4  # last weeks held out of the backtest fit (0: no backtest)
    warm_fraction: float = 0.3  # share of customers in the backtest fit, the full fit's warm start
    refine_iter: int = 30  # iterations of the full fit after the warm start
    interval_groups: int = 8  # disjoint groups of customers refitted for intervals (0: none)
    interval_iter: int = 15  # iterations of each group's refit
    interval_draws: int = 40  # draws of the model for intervals
    interval_processes: int = 1  # processes sharing the group refits (the draws do not depend on it)
    processes: int = 1  # processes (gloo) of the full fit, each on its own customers; see causal.parallel

    def __post_init__(self) -> None:
        if self.n_segments < 1:
            raise ValueError(f"attribution.funnel.n_segments must be >= 1, got {self.n_segments}")
        if self.wear_window < 1:
            raise ValueError(f"attribution.funnel.wear_window must be >= 1, got {self.wear_window}")
        if not 0 < self.warm_fraction <= 1:
            raise ValueError(f"attribution.funnel.warm_fraction must be in (0, 1], got {self.warm_fraction}")
        if self.demand_step <= 0:
            raise ValueError(f"attribution.funnel.demand_step must be > 0, got {self.demand_step}")
        if self.processes < 1:
            raise ValueError(f"attribution.funnel.processes must be >= 1, got {self.processes}")
        if self.interval_processes < 1:
            raise ValueError(f"attribution.funnel.interval_processes must be >= 1, got {self.interval_processes}")

    @property
    def mechanisms(self) -> Mechanisms:
        """The mechanisms this config switches on."""
        return Mechanisms(capture=self.capture, demand=self.demand, signed=self.signed, wear=self.wear,
                          wear_window=self.wear_window, demand_step=self.demand_step)


def make_net(data: FunnelData, cfg: FunnelFitConfig) -> FunnelNet:
    """The likelihood for ``data`` under ``cfg``'s mechanisms, at its starting point."""
    torch.manual_seed(cfg.seed)
    return FunnelNet(data, cfg.n_segments, cfg.seed, cfg.mechanisms)


def load_state(net: FunnelNet, state: Mapping[str, Any]) -> None:
    """Set every raw parameter of ``net`` from ``state`` (name -> values, any array-like, any shape)."""
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(torch.as_tensor(state[name], dtype=p.dtype).reshape(p.shape))


def parameter_vector(net: FunnelNet) -> np.ndarray:
    """Every raw parameter of ``net`` as one vector, in ``net.parameters()`` order."""
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()]).numpy().copy()


def make_lbfgs(params: list[torch.nn.Parameter], max_iter: int) -> torch.optim.LBFGS:
    """The fit's optimizer, one setting for the single-process and the data-parallel fit."""
    return torch.optim.LBFGS(params, lr=1.0, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe",
                             tolerance_grad=1e-6, tolerance_change=1e-9)


Penalty = Callable[[FunnelNet], Tensor]


def fit_funnel(data: FunnelData, cfg: FunnelFitConfig | None = None,
               net: FunnelNet | None = None, weights: Tensor | None = None,
               quiet: bool = False, penalty: Penalty | None = None) -> tuple[FunnelParams, dict[str, float]]:
    """Fit by L-BFGS; returns the fitted parameters and fit diagnostics.

    ``net`` continues from a net's current parameters (a warm start); ``weights`` (N,)
    reweights sequences, as a bootstrap over customers does; ``penalty(net)`` is added to
    the negative log-likelihood (in the same units: nats of the whole sample), e.g. the
    misfit of lift-test experiments.
    """
    cfg = cfg or FunnelFitConfig()
    net = net if net is not None else make_net(data, cfg)
    params, diag = _lbfgs(net, cfg, cfg.max_iter, weights, quiet, penalty)
    return params, diag


def _lbfgs(net: FunnelNet, cfg: FunnelFitConfig, max_iter: int, weights: Tensor | None,
           quiet: bool, penalty: Penalty | None = None) -> tuple[FunnelParams, dict[str, float]]:
    opt = make_lbfgs([p for p in net.parameters() if p.requires_grad], max_iter)
    n_obs = max(net.data.n_sequences, 1)
    history: list[float] = []
    started = time.perf_counter()
    with progress_bar(desc="funnel fit (likelihood evaluations)", total=int(max_iter * 1.25)) as bar:

        def closure() -> Tensor:
            opt.zero_grad()
            loss = -(net.log_likelihood(weights) + net.log_prior(cfg.prior_weight))
            if penalty is not None:
                loss = loss + penalty(net)
            loss = loss / n_obs
            loss.backward()
            history.append(float(loss.detach()))
            bar.update(1)
            if not quiet and cfg.log_every and len(history) % cfg.log_every == 0:
                # a log file shows no bar: one line every few evaluations says the fit is alive
                log.info("funnel fit: evaluation %d, loss %.5f, %.0f s", len(history), history[-1],
                         time.perf_counter() - started)
            return loss

        opt.step(closure)
    if not quiet:
        log.info("funnel fit: %d evaluations, loss %.5f -> %.5f in %.1f s", len(history), history[0], history[-1],
                 time.perf_counter() - started)
    return net.to_params(), {"loglik_per_sequence": -history[-1], "evaluations": float(len(history)),
                             "sequences": float(net.data.n_sequences),
                             "sample_fraction": net.data.sample_fraction,
                             "seconds": time.perf_counter() - started}
