"""The interval refits of :func:`journeynet.causal.engine.interval_draws`, spread over processes.

Each customer group's refit is an independent fit of the same size. In ``train.py`` they
run after the net has trained, while the main process waits for them and a core sits
idle, so ``attribution.funnel.interval_processes`` > 1 hands a share of the groups to
helper processes. The helpers are spawned (a fork of a process holding torch threads can
deadlock) when the engine's fit begins, so their start (importing torch) is paid while
the first two fits run, not on the refits' clock. A group's refit is the same
computation in any process (same data, start and thread count), so the draws do not
depend on the setting; a helper that dies leaves its groups to this process, and a helper
whose parent dies leaves too.

Quickstart::

    with RefitPool(processes=2) as pool:   # helpers start importing now
        ...                                # the backtest and full fits
        thetas = pool.run(jobs)            # one raw-parameter vector per RefitJob
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

import numpy as np
import torch
from torch import Tensor

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

log = logging.getLogger(__name__)

_DIED = "an interval refit helper process died; its groups are refitted in this process"


@dataclass
class RefitJob:
    """One group's refit: its customers, the full fit's raw parameters, the group's share of the sample."""

    data: FunnelData
    cfg: FunnelFitConfig  # max_iter: the refit's iterations
    start: dict[str, np.ndarray]
    log_extra_shift: float  # the untouched pool shrinks with the group's share of the customers
    penalty: Penalty | None = None  # already scaled to the group


class GroupPenalty:
    """A penalty scaled to one of ``groups`` groups (an experiment's weight shrinks with its customers)."""

    def __init__(self, penalty: Penalty, groups: int) -> None:
        self.penalty, self.groups = penalty, groups

    def __call__(self, net: FunnelNet) -> Tensor:
        """The penalty's nats over the number of groups."""
        return self.penalty(net) / self.groups


def refit(job: RefitJob) -> np.ndarray:
    """Fit one group from the full fit; its raw parameters as one vector (in ``net.parameters()`` order)."""
    net = make_net(job.data, job.cfg)
    load_state(net, job.start)
    with torch.no_grad():
        net.log_extra += job.log_extra_shift
    fit_funnel(job.data, job.cfg, net=net, quiet=True, penalty=job.penalty)
    return parameter_vector(net)


def _start_helper(threads: int, parent: int) -> None:
    from journeynet.progress import disable_progress

    disable_progress()  # the main process's bars own the terminal
    torch.set_num_threads(threads)
    # A helper waits on its task queue, and it holds that queue's write end too, so a parent
    # that is killed (train.py ends its engine process when the run fails) never wakes it:
    # it would idle on, orphaned. It leaves as soon as its parent is gone.
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: leave the signals as they are
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class RefitPool:
    """``processes - 1`` helper processes for :func:`refit`; this process takes its share too.

    ``processes`` <= 1 starts nothing and runs every job here. ``threads``: torch threads
    per helper (default: this process's).
    """

    def __init__(self, processes: int, threads: int | None = None) -> None:
        self.processes = max(int(processes), 1)
        self._pool: ProcessPoolExecutor | None = None
        if self.processes > 1:
            threads = threads or torch.get_num_threads()
            self._pool = ProcessPoolExecutor(self.processes - 1, mp_context=get_context("spawn"),
                                             initializer=_start_helper, initargs=(threads, os.getpid()))
            with _sigint_ignored():  # inherited through exec: a Ctrl-C while a helper imports stays the parent's
                for _ in range(self.processes - 1):
                    self._pool.submit(os.getpid)  # spawn and import now, while other work runs

    def run(self, jobs: list[RefitJob]) -> list[np.ndarray]:
        """Every job's result, in order: every ``processes``-th job here, the rest on the helpers."""
        remote: dict[int, Future[np.ndarray]] = {}
        if self._pool is not None:
            with contextlib.suppress(BrokenProcessPool):  # a dead helper: the rest stay unsubmitted
                for i, job in enumerate(jobs):
                    if i % self.processes:
                        remote[i] = self._pool.submit(refit, job)
        out = {i: refit(job) for i, job in enumerate(jobs) if i % self.processes == 0}
        for i, future in remote.items():
            with contextlib.suppress(BrokenProcessPool):
                out[i] = future.result()
        lost = [i for i in range(len(jobs)) if i not in out]
        if lost:
            log.warning(_DIED)
            out.update((i, refit(jobs[i])) for i in lost)
        return [out[i] for i in range(len(jobs))]

    def close(self) -> None:
        """Stop the helpers (idempotent)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> RefitPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
