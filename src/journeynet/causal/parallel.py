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
    params, diag, state = fit_data_processes(data, cfg, processes=2, init=start)  # data: a FunnelData

:func:`fit_data_processes` is the engine's entry point (``attribution.funnel.processes``):
it deals an already built :class:`~journeynet.causal.data.FunnelData` to the processes
by customer hash (``data.subset``), where :func:`fit_funnel_processes` gives each
process its customers' touchpoints to build from. Both run the same worker.

Under ``torchrun`` (one process per node or core, a process group already initialized),
each rank calls :func:`fit_rank` on ``build_funnel_data(own_touchpoints, spend, None,
unpaid_channels=unpaid_channel_names(...))``.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch import Tensor

from journeynet.causal.data import FunnelData, build_funnel_data, spend_matrix
from journeynet.causal.fit import FunnelFitConfig, FunnelNet, Penalty, load_state, make_lbfgs, make_net
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


def parameter_net(data: FunnelData, cfg: FunnelFitConfig) -> FunnelNet:
    """A net with ``data``'s parameters (units, channels, days) on none of its sequences: cheap to build.

    It holds a parameter vector (a warm start, a fit's result) without the cost of the
    sequences' event tables; its own likelihood is the untouched pool's alone.
    """
    with np.errstate(divide="ignore", invalid="ignore"):  # a net on no sequence starts from 0/0 rates
        return make_net(data.subset(np.zeros(data.n_sequences, dtype=bool)), cfg)


def sequence_partition(data: FunnelData, processes: int) -> np.ndarray:
    """The process of each sequence ``(N,)``: the hash of its customer, else its index, modulo ``processes``.

    A customer's sequences (one per purchase) all go to one process, as the frame-level
    fit's ``customer_partition`` of the touchpoints does.
    """
    if data.customer is not None:
        return customer_partition(pd.Series(data.customer), processes)
    return np.arange(data.n_sequences, dtype=np.int64) % processes


def whole_params(net: FunnelNet, n_sequences: int, sample_fraction: float) -> FunnelParams:
    """``net.to_params()`` with the pool of ``n_sequences`` sequences, ``sample_fraction`` of the market.

    For a net on a share of the sequences (a rank's, or :func:`parameter_net`'s none)
    whose parameters are the whole fit's.
    """
    with torch.no_grad():
        return FunnelNet.params_from(_WholeNet(net, n_sequences, sample_fraction), net.probabilities())  # type: ignore[arg-type]


class _WholeNet:
    """A rank's net as a penalty sees the whole fit's net: the pool counts every rank's sequences.

    A penalty such as :class:`~journeynet.causal.calibration.ExperimentPenalty` reads the
    pool as ``(data.n_sequences + extra) / data.sample_fraction``; on rank 0 those two are
    the totals of all ranks, the rest is the rank's own net.
    """

    def __init__(self, net: FunnelNet, n_total: int, sample_fraction: float) -> None:
        self._net = net
        self.data = _WholeData(net.data, n_total, sample_fraction)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._net, name)


class _WholeData:
    def __init__(self, data: FunnelData, n_sequences: int, sample_fraction: float) -> None:
        self._data, self.n_sequences, self.sample_fraction = data, n_sequences, sample_fraction

    def __getattr__(self, name: str) -> Any:
        return getattr(self._data, name)


class PoolTerm:
    """``extra * log P(never touched) + log C(N + extra, N)`` for ``n_total`` sequences, tied to ``net``."""

    def __init__(self, net: FunnelNet, cfg: FunnelFitConfig, n_total: int) -> None:
        self.empty = parameter_net(net.data, cfg)
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


def fit_rank(data: FunnelData, cfg: FunnelFitConfig, init: dict[str, np.ndarray] | None = None,
             penalty: Penalty | None = None,
             sample_fraction: float | None = None) -> tuple[FunnelParams, dict[str, float]]:
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
    penalty : callable, optional
        Added to the objective once, on rank 0, evaluated as on the whole fit's net
        (e.g. lift-test experiments; see :class:`_WholeNet`); it must pickle to reach a spawned worker.
    sample_fraction : float, optional
        The share of the market's sequences all ranks hold together; default: ``data``'s own
        (1.0 for a rank built by ``build_funnel_data(own, spend, None)``). A rank holding
        ``whole.subset(mask)`` passes ``whole.sample_fraction``.

    Returns
    -------
    FunnelParams, dict
        The fitted parameters (the pool counts every rank's sequences) and diagnostics;
        every rank returns the same.
    """
    return _fit(data, cfg, init, penalty, sample_fraction)[1:]


def _fit(data: FunnelData, cfg: FunnelFitConfig, init: dict[str, np.ndarray] | None, penalty: Penalty | None,
         sample_fraction: float | None) -> tuple[FunnelNet, FunnelParams, dict[str, float]]:
    rank, world = _world()
    fraction = data.sample_fraction if sample_fraction is None else float(sample_fraction)
    net = make_net(data, cfg)
    n_total = int(data.n_sequences)
    if world > 1:
        t = torch.tensor([n_total], dtype=torch.int64)
        dist.all_reduce(t)
        n_total = int(t.item())
    if init is not None:
        load_state(net, init)
    with torch.no_grad():
        if init is None and rank == 0:  # rank 0's start counts its own sequences; the untouched rest scales with all
            net.log_extra += float(np.log(max(n_total, 1) / max(data.n_sequences, 1)))
        if world > 1:
            for p in net.parameters():
                dist.broadcast(p.data, 0)
    pool = PoolTerm(net, cfg, n_total) if rank == 0 else None
    whole = _WholeNet(net, n_total, fraction) if rank == 0 and penalty is not None else None
    params = [p for p in net.parameters() if p.requires_grad]
    opt = make_lbfgs(params, cfg.max_iter)
    history: list[float] = []
    started, cpu = time.perf_counter(), time.process_time()

    def closure() -> Tensor:
        opt.zero_grad()
        local = net.sequence_log_likelihood().sum()
        if pool is not None:
            local = local + pool() + net.log_prior(cfg.prior_weight)
        if whole is not None:
            local = local - penalty(whole)  # type: ignore[misc]  # set only with a penalty
        loss = -local / max(n_total, 1)
        loss.backward()
        total = _all_reduce(loss, params) if world > 1 else loss.detach()
        history.append(float(total))
        if rank == 0 and cfg.log_every and len(history) % cfg.log_every == 0:
            log.info("data-parallel funnel fit: evaluation %d, loss %.5f, %.0f s", len(history), history[-1],
                     time.perf_counter() - started)
        return total

    opt.step(closure)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    fitted = whole_params(net, n_total, fraction)
    log.info("data-parallel funnel fit, rank %d of %d: %d of %d sequences, %d evaluations, loss %.5f -> %.5f "
             "in %.1f s", rank, world, data.n_sequences, n_total, len(history), history[0], history[-1], seconds)
    return net, fitted, {"loglik_per_sequence": -history[-1], "evaluations": float(len(history)),
                         "sequences": float(n_total), "sample_fraction": fraction, "ranks": float(world),
                         "seconds": seconds, "rank_sequences": float(data.n_sequences), "rank_cpu_seconds": cpu}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _FrameShards:
    """Each rank's touchpoints as a Parquet file (``rank-R.parquet``) and the spend: a rank builds its own data."""

    def __init__(self, work: str, unpaid: list[str], seed: int) -> None:
        self.work, self.unpaid, self.seed = work, unpaid, seed

    def load(self, rank: int) -> FunnelData:
        touch = pd.read_parquet(Path(self.work) / f"rank-{rank}.parquet")
        spend = pd.read_parquet(Path(self.work) / "spend.parquet")
        return build_funnel_data(touch, spend, None, self.seed, self.unpaid)


class _DataShards:
    """Each rank's ``FunnelData`` subset, pickled (``rank-R.pkl``)."""

    def __init__(self, work: str) -> None:
        self.work = work

    def load(self, rank: int) -> FunnelData:
        with open(Path(self.work) / f"rank-{rank}.pkl", "rb") as f:
            return pickle.load(f)


def _worker(rank: int, world: int, port: int, shards: _FrameShards | _DataShards, cfg: FunnelFitConfig,
            init: dict[str, np.ndarray] | None, threads: int, penalty: Penalty | None,
            sample_fraction: float | None) -> None:
    torch.set_num_threads(threads)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        data = shards.load(rank)
        net, params, diag = _fit(data, cfg, init, penalty, sample_fraction)
        if rank == 0:
            state = {name: p.detach().numpy().copy() for name, p in net.named_parameters()}
            torch.save({"params": params, "diagnostics": diag, "state": state}, Path(shards.work) / "result.pt")
    finally:
        dist.destroy_process_group()


def _launch(shards: _FrameShards | _DataShards, processes: int, cfg: FunnelFitConfig,
            init: dict[str, np.ndarray] | None, threads: int | None, penalty: Penalty | None = None,
            sample_fraction: float | None = None) -> dict[str, Any]:
    """Spawn ``processes`` gloo workers on ``shards``; rank 0's result (params, diagnostics, state)."""
    import torch.multiprocessing as mp

    threads = threads or max(1, (os.cpu_count() or 1) // processes)
    mp.spawn(_worker, args=(processes, _free_port(), shards, cfg, init, threads, penalty, sample_fraction),
             nprocs=processes)
    return torch.load(Path(shards.work) / "result.pt", weights_only=False)


def fit_funnel_processes(touchpoints: pd.DataFrame, spend: pd.DataFrame, cfg: FunnelFitConfig,
                         processes: int = 2, init: dict[str, np.ndarray] | None = None,
                         threads: int | None = None) -> tuple[FunnelParams, dict[str, Any]]:
    """Fit every customer on ``processes`` local processes (gloo), customers dealt by hash.

    Each process reads only its customers' touchpoints (written to a scratch directory
    here, as a cluster's ranks would read their own partitions) and builds its own net.
    ``threads`` is torch's threads per process (default: the cores shared out).
    """
    unpaid = unpaid_channel_names(touchpoints, spend)
    part = customer_partition(touchpoints["customer_id"], processes)
    with tempfile.TemporaryDirectory(prefix="funnel-ranks-") as work:
        for r in range(processes):
            touchpoints[part == r].to_parquet(Path(work) / f"rank-{r}.parquet", index=False)
        spend.to_parquet(Path(work) / "spend.parquet", index=False)
        result = _launch(_FrameShards(work, unpaid, cfg.seed), processes, cfg, init, threads)
    return result["params"], result["diagnostics"]


def fit_data_processes(data: FunnelData, cfg: FunnelFitConfig, processes: int = 2,
                       init: dict[str, np.ndarray] | None = None, penalty: Penalty | None = None,
                       threads: int | None = None) -> tuple[FunnelParams, dict[str, Any], dict[str, np.ndarray]]:
    """Fit ``data``'s sequences on ``processes`` local processes (gloo), dealt by :func:`sequence_partition`.

    Each process gets only its ``data.subset`` (pickled to a scratch directory) and builds
    its own net from ``init`` (the unconstrained parameters by name, e.g. the engine's warm
    start); rank 0 adds the pool term, the prior and ``penalty``. Returns the fitted
    parameters (the pool scaled by ``data.sample_fraction`` as the single-process fit
    scales it), the diagnostics, and the fitted unconstrained parameters by name.
    """
    part = sequence_partition(data, processes)
    with tempfile.TemporaryDirectory(prefix="funnel-ranks-") as work:
        for r in range(processes):
            with open(Path(work) / f"rank-{r}.pkl", "wb") as f:
                pickle.dump(data.subset(part == r), f, protocol=pickle.HIGHEST_PROTOCOL)
        result = _launch(_DataShards(work), processes, cfg, init, threads, penalty, data.sample_fraction)
    return result["params"], result["diagnostics"], result["state"]
