"""Seconds per likelihood evaluation (forward and backward) of the funnel model, as the fit pays them.

The default generated world's funnel data (20,000 sampled customers, 22,000 sequences,
182 days) and the backtest fit's share of it (30% of the sequences, 154 days), every
mechanism on, one torch thread. ``--reference FILE`` times another implementation of
``FunnelNet`` in the same run (e.g. the day-by-day pass before the event schedule:
``git show 9841367:src/journeynet/causal/likelihood.py > /tmp/day_by_day.py``) and
checks that both give the same log-likelihood. ``--experiments 2 8`` also times the
lift-test penalty (``causal/calibration.py``) with that many 4-week tests, as a share of
an evaluation (issue 12 asks calibration to cost under 20% more).

    PYTHONPATH=src python bench/bench_likelihood.py --reference /tmp/day_by_day.py --experiments 2 8
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time

import numpy as np
import torch

from journeynet.causal.calibration import Experiment, ExperimentPenalty
from journeynet.causal.data import build_funnel_data
from journeynet.causal.likelihood import FunnelNet, Mechanisms
from journeynet.synthetic.simulate import SimConfig, simulate


def load_reference(path: str):
    spec = importlib.util.spec_from_file_location("reference_likelihood", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.FunnelNet


def seconds_per_evaluation(net_class, data, repeats: int, objective=None) -> tuple[float, float]:
    net = net_class(data, 3, 0, Mechanisms())
    objective = objective or (lambda n: n.log_likelihood())
    times = []
    for _ in range(repeats + 1):
        net.zero_grad()
        t0 = time.perf_counter()
        value = objective(net)
        value.backward()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:])), float(value.detach())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", default=None, help="a likelihood module to time beside the current one")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--experiments", type=int, nargs="*", default=[], help="time the penalty of this many tests")
    args = ap.parse_args()
    torch.set_num_threads(1)
    sim = simulate(SimConfig(seed=0), optimum=False)
    full = build_funnel_data(sim.touchpoints, sim.spend, 20_000, 0)
    backtest = full.subset(np.random.default_rng(0).random(full.n_sequences) < 0.3, full.n_days - 28)
    impls = {"event schedule": FunnelNet}
    if args.reference:
        impls["reference"] = load_reference(args.reference)
    for name, data in (("backtest", backtest), ("full", full)):
        row = {}
        for impl, cls in impls.items():
            row[impl] = seconds_per_evaluation(cls, data, args.repeats)
        line = f"{name}: {data.n_sequences} sequences, {data.n_days} days; " + "; ".join(
            f"{impl} {s:.3f} s per evaluation (log-lik {ll:.6f})" for impl, (s, ll) in row.items())
        if len(row) == 2:
            line += f"; {row['reference'][0] / row['event schedule'][0]:.1f}x"
        print(line, flush=True)
    for n_tests in args.experiments:
        tests = [Experiment(f"t{i}", "", "", (i % len(full.units),), 60 + 5 * i, 87 + 5 * i, 7, 10.0, 2.0)
                 for i in range(n_tests)]
        penalty = ExperimentPenalty(tests)
        seconds, _ = seconds_per_evaluation(FunnelNet, full, args.repeats, penalty)
        print(f"penalty of {n_tests} tests: {seconds:.3f} s per evaluation, "
              f"{seconds / row['event schedule'][0]:.2f} of the full likelihood's", flush=True)


if __name__ == "__main__":
    main()
