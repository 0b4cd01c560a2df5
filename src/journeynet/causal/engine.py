"""The engine's fit as a run uses it: a held-out-weeks backtest, the full fit, and draws for intervals.

Three fits share the work, so the richer model costs no more than one long fit:

1. a *backtest* fit on a share of the customers and all but the last
   ``holdout_weeks`` weeks; it predicts those weeks from their actual spend (the
   check a marketer can read) and is the warm start of
2. the *full* fit on every sampled customer and every day (``refine_iter`` more
   iterations); with ``processes`` > 1 it runs data-parallel, each spawned process on
   its own customers (:func:`journeynet.causal.parallel.fit_data_processes`), and gives
   the single-process parameters up to the order of floating-point sums;
3. *interval* fits: the customers are split into ``interval_groups`` disjoint groups
   and the full fit is refitted on each. A group's estimate varies ``groups`` times
   more than the full sample's, so Gaussian draws with the groups' covariance divided
   by ``groups`` are draws of the full estimate (a subsampling bootstrap); each draw
   is a whole model, so every effect, curve and plan gets an interval that carries the
   engine's uncertainty. With ``interval_processes`` > 1 helper processes share the
   refits (:mod:`journeynet.causal.refits`); they start with the fit, so their start-up
   overlaps stages 1 and 2.

Quickstart::

    from journeynet.causal.engine import fit_engine
    result = fit_engine(data, FunnelFitConfig())  # data: build_funnel_data(...)
    result.params, len(result.draws), result.backtest
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from journeynet.causal.data import FunnelData
from journeynet.causal.fit import (
    FunnelFitConfig,
    FunnelNet,
    Penalty,
    fit_funnel,
    load_state,
    make_net,
    parameter_vector,
)
from journeynet.causal.funnel import FunnelParams
from journeynet.causal.parallel import fit_data_processes, parameter_net, whole_params
from journeynet.causal.refits import GroupPenalty, RefitJob, RefitPool

log = logging.getLogger(__name__)


@dataclass
class EngineResult:
    """The fitted model, draws of it for intervals, and the backtest model."""

    params: FunnelParams
    draws: list[FunnelParams] = field(default_factory=list)
    backtest: FunnelParams | None = None
    holdout_start: int | None = None  # first held-out day of the backtest
    diagnostics: dict[str, float] = field(default_factory=dict)
    warm_state: dict[str, list[float]] | None = None  # the backtest net's raw parameters (a later fit's warm start)
    full_state: dict[str, list[float]] | None = None  # the full net's raw parameters (interval refits start there)


def fit_engine(data: FunnelData, cfg: FunnelFitConfig, penalty: Penalty | None = None,
               backtest_of: EngineResult | None = None) -> EngineResult:
    """Backtest fit, full fit (warm-started from it) and interval draws; see the module docstring.

    ``penalty(net)`` (e.g. lift-test experiments) joins the full fit and the group refits;
    the backtest fit stays on the journeys alone, so the backtest checks the journeys' model.
    ``backtest_of``, an earlier result on the same data and settings, lends its backtest
    fit (penalty-free, so the same) instead of fitting it again: a calibrated fit after
    the uncalibrated one starts at stage 2.
    """
    wants_draws = cfg.interval_groups >= 2 and cfg.interval_draws >= 1
    with RefitPool(cfg.interval_processes if wants_draws else 1) as pool:
        return _fit_engine(data, cfg, penalty, backtest_of, pool)


def _fit_engine(data: FunnelData, cfg: FunnelFitConfig, penalty: Penalty | None,
                backtest_of: EngineResult | None, pool: RefitPool) -> EngineResult:
    rng = np.random.default_rng(cfg.seed)
    cut = data.n_days - 7 * cfg.holdout_weeks
    if cfg.holdout_weeks <= 0 or cut < 28:
        cut = data.n_days
        if cfg.holdout_weeks > 0:
            log.warning("backtest skipped: %d days leave fewer than 28 to fit on before %d held-out weeks",
                        data.n_days, cfg.holdout_weeks)
    warm_keep = rng.random(data.n_sequences) < cfg.warm_fraction
    warm_data = data.subset(warm_keep, cut)
    log.info("funnel fit 1/3: %d sequences over %d days (backtest: the last %d days held out)",
             warm_data.n_sequences, cut, data.n_days - cut)
    warm = make_net(warm_data, cfg)
    if backtest_of is not None and backtest_of.warm_state is not None:
        log.info("funnel fit 1/3: the backtest fit of the fit without experiments, reused")
        load_state(warm, backtest_of.warm_state)
        backtest, d1 = backtest_of.backtest, {"evaluations": 0.0, "seconds": 0.0}
    else:
        backtest, d1 = fit_funnel(warm_data, cfg, net=warm)
    warm_state = {name: p.detach().reshape(-1).tolist() for name, p in warm.named_parameters()}
    log.info("funnel fit 2/3: %d sequences over %d days%s", data.n_sequences, data.n_days,
             f" on {cfg.processes} processes" if cfg.processes > 1 else "")
    if cfg.processes > 1:
        full, params, d2 = _full_fit_processes(data, warm, cfg, penalty)
    else:
        cpu = time.process_time()
        full = make_net(data, cfg)
        _copy_state(warm, full)
        params, d2 = fit_funnel(data, _iters(cfg, cfg.refine_iter), net=full, penalty=penalty)
        d2["full_fit_cpu_seconds"] = time.process_time() - cpu
    draws = interval_draws(data, full, cfg, rng, penalty, pool)
    diag = dict(d2)
    diag.update(evaluations=d1["evaluations"] + d2["evaluations"], seconds=d1["seconds"] + d2["seconds"],
                full_fit_evaluations=d2["evaluations"], full_fit_seconds=d2["seconds"],
                full_fit_cpu_seconds=d2["full_fit_cpu_seconds"],
                backtest_sequences=float(warm_data.n_sequences), interval_draws=float(len(draws)))
    full_state = {name: p.detach().reshape(-1).tolist() for name, p in full.named_parameters()}
    return EngineResult(params, draws, backtest if cut < data.n_days else None,
                        cut if cut < data.n_days else None, diag, warm_state, full_state)


def _full_fit_processes(data: FunnelData, warm: FunnelNet, cfg: FunnelFitConfig,
                        penalty: Penalty | None) -> tuple[FunnelNet, FunnelParams, dict[str, float]]:
    """The full fit data-parallel over ``cfg.processes`` processes, from the warm start.

    This process builds no net on every sequence: the warm start and the result live in a
    net on none of them (the group refits and the draws read only its parameters).
    """
    full = parameter_net(data, cfg)
    _copy_state(warm, full)
    start = {name: p.detach().numpy().copy() for name, p in full.named_parameters()}
    started = time.perf_counter()
    params, d2, state = fit_data_processes(data, _iters(cfg, cfg.refine_iter), cfg.processes, init=start,
                                           penalty=penalty)
    load_state(full, state)
    wall = time.perf_counter() - started
    log.info("funnel fit 2/3 on %d processes: %.1f s with process start-up (%.1f s fitting)", cfg.processes,
             wall, d2["seconds"])
    diag = {k: float(d2[k]) for k in ("loglik_per_sequence", "evaluations", "sequences", "sample_fraction",
                                       "seconds")}
    # rank 0's CPU seconds: its share of the sequences plus the pool term, the prior and the all-reduce
    return full, params, diag | {"processes": float(cfg.processes), "full_fit_wall_seconds": wall,
                                 "full_fit_cpu_seconds": float(d2["rank_cpu_seconds"])}


def interval_draws(data: FunnelData, full: FunnelNet, cfg: FunnelFitConfig, rng: np.random.Generator,
                   penalty: Penalty | None = None, pool: RefitPool | None = None) -> list[FunnelParams]:
    """Draws of the full fit from refits on disjoint groups of customers (see the module docstring).

    ``pool`` shares the refits out (default: one started here with ``cfg.interval_processes``).
    """
    groups = cfg.interval_groups
    if groups < 2 or cfg.interval_draws < 1:
        return []
    label = rng.integers(groups, size=data.n_sequences)
    start = {name: p.detach().numpy().copy() for name, p in full.named_parameters()}
    jobs = []
    for b in range(groups):
        sub = data.subset(label == b)
        if sub.n_sequences < 50:
            log.warning("interval draws skipped: a group of customers has only %d sequences", sub.n_sequences)
            return []
        shift = float(np.log(max(sub.sample_fraction, 1e-12) / max(data.sample_fraction, 1e-12)))
        jobs.append(RefitJob(sub, _iters(cfg, cfg.interval_iter), start, shift,
                             GroupPenalty(penalty, groups) if penalty is not None else None))
    started = time.perf_counter()
    with RefitPool(cfg.interval_processes) if pool is None else contextlib.nullcontext(pool) as refits:
        log.info("funnel fit 3/3: %d customer groups refitted for intervals (%d iterations each, %d process%s)",
                 groups, cfg.interval_iter, refits.processes, "es" if refits.processes > 1 else "")
        thetas = refits.run(jobs)
    log.info("funnel fit 3/3: %d group refits for intervals in %.1f s", groups, time.perf_counter() - started)
    theta = np.stack(thetas)  # (B, P)
    dev = (theta - theta.mean(0)) / np.sqrt(groups * (groups - 1))
    centre = parameter_vector(full)
    z = rng.standard_normal((cfg.interval_draws, groups))
    out = []
    probe = parameter_net(data, cfg)  # parameters only: no event tables for every sequence
    for row in z:
        _set_vector(probe, centre + row @ dev)
        out.append(whole_params(probe, data.n_sequences, data.sample_fraction))
    return out


def _iters(cfg: FunnelFitConfig, n: int) -> FunnelFitConfig:
    return replace(cfg, max_iter=n)


def _copy_state(src: FunnelNet, dst: FunnelNet) -> None:
    """Copy every parameter; a demand series of another length keeps its last week going."""
    with torch.no_grad():
        for (name, a), (_, b) in zip(src.named_parameters(), dst.named_parameters(), strict=True):
            if a.shape == b.shape:
                b.copy_(a)
            elif name.startswith("demand_"):
                n = min(a.numel(), b.numel())
                b[:n] = a[:n]
                b[n:] = a[n - 1]
            else:
                raise ValueError(f"cannot warm-start parameter {name}: {tuple(a.shape)} vs {tuple(b.shape)}")


def _set_vector(net: FunnelNet, theta: np.ndarray) -> None:
    with torch.no_grad():
        i = 0
        for p in net.parameters():
            n = p.numel()
            p.copy_(torch.as_tensor(theta[i:i + n]).reshape(p.shape))
            i += n
