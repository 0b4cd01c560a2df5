"""The engine's full fit on every customer of the default generated world, on 1 and 2 processes.

    PYTHONPATH=src OMP_NUM_THREADS=1 python bench/bench_engine_processes.py --iters 10 --refine-iter 10

``fit_engine`` as ``train.py`` runs it with ``attribution.funnel.max_sequences=null``, except
fewer iterations (``--iters`` for the backtest fit, ``--refine-iter`` for the full fit) and no
interval refits: the figure is the full fit (stage 2), in seconds per likelihood evaluation,
with ``processes=1`` (in this process) and ``processes=2`` (spawned gloo workers, one torch
thread each, each on its own customers' ``data.subset``). Both start from the same backtest
fit, so they take the same L-BFGS steps; the largest parameter difference is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=10, help="backtest fit iterations (the warm start)")
    ap.add_argument("--refine-iter", type=int, default=10, help="full fit iterations")
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    torch.set_num_threads(1)
    from bench_engine import fit_config

    from journeynet.causal.data import build_funnel_data
    from journeynet.causal.engine import fit_engine
    from journeynet.synthetic.simulate import SimConfig, simulate

    sim = simulate(SimConfig(seed=0), optimum=False)
    data = build_funnel_data(sim.touchpoints, sim.spend, None, 0)
    cfg = replace(fit_config(), max_sequences=None, max_iter=args.iters, refine_iter=args.refine_iter,
                  interval_groups=0)
    print(f"{len(sim.touchpoints)} touchpoints, {data.n_sequences} sequences (every customer), {data.n_days} days, "
          f"{len(data.units)} units; load {os.getloadavg()}", flush=True)
    out = {}
    for p in args.processes:
        t = time.perf_counter()
        result = fit_engine(data, replace(cfg, processes=p))
        wall = time.perf_counter() - t
        d = result.diagnostics
        out[p] = result.params
        full_wall = d.get("full_fit_wall_seconds", d["full_fit_seconds"])
        print(f"processes={p}: engine wall {wall:.1f} s; full fit {d['full_fit_evaluations']:.0f} evaluations, "
              f"{d['full_fit_seconds']:.1f} s fitting = {d['full_fit_seconds'] / d['full_fit_evaluations']:.2f} s per "
              f"evaluation, {full_wall:.1f} s with process start-up, (rank 0) CPU "
              f"{d['full_fit_cpu_seconds'] / d['full_fit_evaluations']:.2f} s per evaluation; "
              f"loglik/seq {d['loglik_per_sequence']:.6f}; "
              f"load {os.getloadavg()}", flush=True)
    if len(out) > 1:
        a, b = (out[p] for p in args.processes[:2])
        diff = max(float(np.max(np.abs(np.asarray(getattr(a, k)) - np.asarray(getattr(b, k)))))
                   for k in ("pi0", "rho", "move", "hazard", "unpaid", "capture"))
        print(f"largest fitted-probability difference: {diff:.2e}; pool {a.pool:.1f} vs {b.pool:.1f}")


if __name__ == "__main__":
    main()
