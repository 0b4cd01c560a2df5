"""The interval refits' helper processes (journeynet.causal.refits) do not outlive their parent."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path


def _hold_a_pool(conn) -> None:
    from journeynet.causal.refits import RefitPool

    pool = RefitPool(2)
    pool._pool.submit(os.getpid).result()  # the helper has started and imported
    conn.send(list(pool._pool._processes))
    time.sleep(120)


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "State:\tZ" not in status.read_text()
    except FileNotFoundError:
        return False


def test_a_helper_leaves_when_its_parent_is_killed() -> None:
    """train.py ends its engine process when a run fails: the refit helper it started must not idle on."""
    ctx = mp.get_context("spawn")
    mine, theirs = ctx.Pipe()
    parent = ctx.Process(target=_hold_a_pool, args=(theirs,))
    parent.start()
    assert mine.poll(120), "the pool's helper did not start"
    (helper,) = mine.recv()
    assert _alive(helper)
    parent.kill()
    parent.join()
    deadline = time.monotonic() + 10
    while _alive(helper) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(helper)


def test_the_groups_of_a_dead_helper_are_refitted_here(caplog) -> None:
    """A helper killed before the refits: its groups run in this process, with the same results and a warning."""
    import numpy as np

    from journeynet.causal.data import build_funnel_data
    from journeynet.causal.fit import FunnelFitConfig, make_net
    from journeynet.causal.refits import RefitJob, RefitPool, refit
    from journeynet.causal.sample import SimConfig, simulate

    sim = simulate(SimConfig(pool=2000, days=35))
    data = build_funnel_data(sim.touchpoints, sim.spend, 600, 0)
    cfg = FunnelFitConfig(n_segments=2, max_iter=3, seed=0)
    start = {name: p.detach().numpy().copy() for name, p in make_net(data, cfg).named_parameters()}
    label = np.arange(data.n_sequences) % 4
    jobs = [RefitJob(data.subset(label == b), cfg, start, 0.0) for b in range(4)]
    with RefitPool(2) as pool:
        pool._pool.submit(os.getpid).result()
        (helper,) = list(pool._pool._processes)
        os.kill(helper, 9)
        time.sleep(0.5)
        thetas = pool.run(jobs)
    assert caplog.text.count("an interval refit helper process died; its groups are refitted in this process") == 1
    for job, theta in zip(jobs, thetas, strict=True):
        np.testing.assert_array_equal(theta, refit(job))
