"""The data-parallel funnel fit on 1 and 2 processes (gloo), same customers, same start.

    PYTHONPATH=src nice -n 10 python bench/bench_parallel_fit.py --customers 20000 --days 91 --iters 10

Generated touchpoints (3 per customer, 3 paid units, 3 unpaid channels; the generator of
``tests/test_parallel_fit.py``) with every customer in the fit (``max_sequences=None``).
Both runs go through ``fit_funnel_processes`` (spawned workers, each reading only its
customers), start from the same parameters and take the same L-BFGS steps; the wall
time includes process start-up and each rank's ``build_funnel_data``. The figure that
matters is seconds per likelihood evaluation (forward + backward + all-reduce).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--days", type=int, default=91)
    ap.add_argument("--iters", type=int, default=10)
    args = ap.parse_args()
    from journeynet.causal.data import build_funnel_data
    from journeynet.causal.fit import FunnelFitConfig, make_net
    from journeynet.causal.parallel import fit_funnel_processes
    from test_parallel_fit import world

    tp, spend = world(args.customers, args.days)
    cfg = FunnelFitConfig(max_iter=args.iters, max_sequences=None, seed=0)
    full = build_funnel_data(tp, spend, None)
    init = {k: v.detach().numpy().copy() for k, v in make_net(full, cfg).named_parameters()}
    print(f"{len(tp)} touchpoints, {full.n_sequences} sequences, {full.n_days} days; load {os.getloadavg()}")
    out = {}
    for p in (1, 2):
        t = time.perf_counter()
        params, diag = fit_funnel_processes(tp, spend, cfg, processes=p, init=init, threads=1)
        wall = time.perf_counter() - t
        out[p] = params
        per = diag["seconds"] / diag["evaluations"]
        print(f"processes={p}: wall {wall:.1f} s, fit {diag['seconds']:.1f} s, {diag['evaluations']:.0f} evaluations, "
              f"{per:.3f} s per evaluation, loglik/seq {diag['loglik_per_sequence']:.6f}; rank 0: "
              f"{diag['rank_sequences']:.0f} sequences, {diag['rank_cpu_seconds']:.1f} CPU s")
    diff = max(float(np.max(np.abs(np.asarray(getattr(out[1], k)) - np.asarray(getattr(out[2], k)))))
               for k in ("pi0", "rho", "move", "hazard", "unpaid", "capture"))
    print(f"largest parameter difference 1 vs 2 processes: {diff:.2e}; load {os.getloadavg()}")


if __name__ == "__main__":
    main()
