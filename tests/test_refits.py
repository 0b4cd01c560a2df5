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
