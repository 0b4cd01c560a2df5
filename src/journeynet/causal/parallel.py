"""Data-parallel maximum likelihood of the funnel model: every process fits on its own customers.

The log-likelihood is a sum over customers' sequences plus one term for the part of the
market pool that was never touched:

    log L = sum_i log p(sequence_i) + extra * log P(never touched) + log C(N + extra, N)

where ``N`` is the number of sequences and ``extra`` the untouched rest of the pool. Each
process (rank) builds a :class:`~journeynet.causal.fit.FunnelNet` on its own customers
and contributes its sequences' sum; rank 0 adds the pool term for the total ``N`` and
the prior. The loss and its gradient are all-reduced through ``torch.distributed``
(gloo on CPU), so every rank takes the same L-BFGS steps on the full-data objective:
the fit equals the single-process fit on the same customers from the same start, up to
floating-point summation order. No rank holds every customer.

The pool term is read from the engine itself: a net built on none of the sequences,
sharing the parameters, has log-likelihood ``extra * log P(never touched)``; the
binomial count is added for the total ``N`` (checked against the single-process
likelihood in the tests).

Quickstart::

    from journeynet.causal.fit import FunnelFitConfig
    from journeynet.causal.parallel import fit_funnel_processes
    params, diag = fit_funnel_processes(touchpoints, spend, FunnelFitConfig(max_sequences=None), processes=2)

Under ``torchrun`` (one process per node or core, a process group already initialized),
each rank calls :func:`fit_rank` on ``build_funnel_data(own_touchpoints, spend, None,
unpaid_channels=unpaid_channel_names(...))``.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch import Tensor

from journeynet.causal.data import FunnelData, build_funnel_data, spend_matrix
from journeynet.causal.fit import FunnelFitConfig, FunnelNet, make_net
from journeynet.causal.funnel import FunnelParams
from journeynet.data.partition import customer_partition

log = logging.getLogger(__name__)


def unpaid_channel_names(touchpoints: pd.DataFrame, spend: pd.DataFrame) -> list[str]:
    """The unpaid channels of all touchpoints, named and ordered as ``build_funnel_data`` names them.

    Every rank passes this list, so every rank's net has the same parameters in the same order.
    """
    units = set(spend_matrix(spend)[0])
    pairs = touchpoints[["channel", "campaign_type"]].drop_duplicates().astype(str)
    names = {c if k == "" else f"{c}/{k}" for c, k in zip(pairs["channel"], pairs["campaign_type"], strict=True)
             if (c, k) not in units}
    return sorted(names)


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class PoolTerm:
    """``extra * log P(never touched) + log C(N + extra, N)`` for ``n_total`` sequences, tied to ``net``."""

    def __init__(self, net: FunnelNet, cfg: FunnelFitConfig, n_total: int) -> None:
        with np.errstate(divide="ignore", invalid="ignore"):  # a net on no sequence starts from 0/0 rates
            self.empty = make_net(net.data.subset(np.zeros(net.data.n_sequences, dtype=bool)), cfg)
        for name, p in net.named_parameters():
            if "." in name:
                raise ValueError(f"cannot tie nested parameter {name}")
            setattr(self.empty, name, p)  # the same Parameter: gradients flow to ``net``
        self.net, self.n_total = net, float(n_total)

    def __call__(self) -> Tensor:
        """The pool term at the current parameters (differentiable)."""
        extra = self.net.probabilities()["pool_extra"]
        n = torch.as_tensor(self.n_total, dtype=extra.dtype)
        return self.empty.log_likelihood() + torch.lgamma(n + extra + 1) - torch.lgamma(extra + 1)


def _all_reduce(loss: Tensor, params: list[torch.nn.Parameter]) -> Tensor:
    """Sum the loss and every gradient over ranks in one flat buffer; return the summed loss."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([loss.detach().reshape(1), *(g.reshape(-1) for g in grads)])
    dist.all_reduce(flat)
    i = 1
    for p in params:
        n = p.numel()
        p.grad = flat[i:i + n].reshape(p.shape).clone()
        i += n
    return flat[0].clone()


def fit_rank(data: FunnelData, cfg: FunnelFitConfig,
             init: dict[str, np.ndarray] | None = None) -> tuple[FunnelParams, dict[str, float]]:
    """Fit on this rank's sequences, the loss and gradient summed over every rank.

    Parameters
    ----------
    data : FunnelData
        This rank's customers (every rank with the same units, unpaid channels and dates).
    cfg : FunnelFitConfig
        Mechanisms, iterations and prior; ``max_sequences`` is not used (each rank fits all it holds).
    init : dict of str to np.ndarray, optional
        Starting values of the unconstrained parameters by name (e.g. a single-process net's);
        default: rank 0's own starting point, its pool scaled to all ranks' sequences.

    Returns
    -------
    FunnelParams, dict
        The fitted parameters (the pool counts every rank's sequences) and diagnostics;
        every rank returns the same.
    """
    rank, world = _world()
    net = make_net(data, cfg)
    n_total = int(data.n_sequences)
    if world > 1:
        t = torch.tensor([n_total], dtype=torch.int64)
        dist.all_reduce(t)
        n_total = int(t.item())
    with torch.no_grad():
        if init is not None:
            for name, p in net.named_parameters():
                p.copy_(torch.as_tensor(init[name], dtype=p.dtype).reshape(p.shape))
        elif rank == 0:  # rank 0's start counts its own sequences; the untouched rest scales with all
            net.log_extra += float(np.log(max(n_total, 1) / max(data.n_sequences, 1)))
        if world > 1:
            for p in net.parameters():
                dist.broadcast(p.data, 0)
    pool = PoolTerm(net, cfg, n_total) if rank == 0 else None
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=cfg.max_iter, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-6, tolerance_change=1e-9)
    history: list[float] = []
    started, cpu = time.perf_counter(), time.process_time()

    def closure() -> Tensor:
        opt.zero_grad()
        local = net.sequence_log_likelihood().sum()
        if pool is not None:
            local = local + pool() + net.log_prior(cfg.prior_weight)
        loss = -local / max(n_total, 1)
        loss.backward()
        total = _all_reduce(loss, params) if world > 1 else loss.detach()
        history.append(float(total))
        return total

    opt.step(closure)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    with torch.no_grad():
        extra = float(net.probabilities()["pool_extra"])
    fitted = replace(net.to_params(), pool=(n_total + extra) / max(data.sample_fraction, 1e-12))
    log.info("data-parallel funnel fit, rank %d of %d: %d of %d sequences, %d evaluations, loss %.5f -> %.5f "
             "in %.1f s", rank, world, data.n_sequences, n_total, len(history), history[0], history[-1], seconds)
    return fitted, {"loglik_per_sequence": -history[-1], "evaluations": float(len(history)),
                    "sequences": float(n_total), "ranks": float(world), "seconds": seconds,
                    "rank_sequences": float(data.n_sequences), "rank_cpu_seconds": cpu}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, work: str, cfg: FunnelFitConfig, unpaid: list[str],
            init: dict[str, np.ndarray] | None, threads: int) -> None:
    torch.set_num_threads(threads)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        touch = pd.read_parquet(Path(work) / f"rank-{rank}.parquet")
        spend = pd.read_parquet(Path(work) / "spend.parquet")
        data = build_funnel_data(touch, spend, None, cfg.seed, unpaid)
        params, diag = fit_rank(data, cfg, init)
        if rank == 0:
            torch.save({"params": params, "diagnostics": diag}, Path(work) / "result.pt")
    finally:
        dist.destroy_process_group()


def fit_funnel_processes(touchpoints: pd.DataFrame, spend: pd.DataFrame, cfg: FunnelFitConfig,
                         processes: int = 2, init: dict[str, np.ndarray] | None = None,
                         threads: int | None = None) -> tuple[FunnelParams, dict[str, Any]]:
    """Fit every customer on ``processes`` local processes (gloo), customers dealt by hash.

    Each process reads only its customers' touchpoints (written to a scratch directory
    here, as a cluster's ranks would read their own partitions) and builds its own net.
    ``threads`` is torch's threads per process (default: the cores shared out).
    """
    import torch.multiprocessing as mp

    unpaid = unpaid_channel_names(touchpoints, spend)
    part = customer_partition(touchpoints["customer_id"], processes)
    threads = threads or max(1, (os.cpu_count() or 1) // processes)
    with tempfile.TemporaryDirectory(prefix="funnel-ranks-") as work:
        for r in range(processes):
            touchpoints[part == r].to_parquet(Path(work) / f"rank-{r}.parquet", index=False)
        spend.to_parquet(Path(work) / "spend.parquet", index=False)
        mp.spawn(_worker, args=(processes, _free_port(), work, cfg, unpaid, init, threads), nprocs=processes)
        result = torch.load(Path(work) / "result.pt", weights_only=False)
    return result["params"], result["diagnostics"]
