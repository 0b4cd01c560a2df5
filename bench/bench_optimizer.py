"""Benchmark allocate_budget against scipy SLSQP on the same problems.

    PYTHONPATH=src python bench/bench_optimizer.py [--slsqp-max 1000]

Campaigns are grouped 20 to a channel (at least 2 channels), Hill curves with
random beta, k and a in [0.5, 1] (concave, so both solvers target the same
optimum), contract floors scaled so they stay feasible. Median of 3 runs.
SLSQP is dense (O(n^2) memory, O(n^3) per iteration), so it runs only up to
``--slsqp-max`` campaigns.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from scipy.optimize import minimize

from journeynet.planning.budget import BudgetProblem, allocate_budget
from journeynet.planning.response import HillCurve

A_MAX = 1.0  # curve exponents drawn from [0.5, A_MAX]; above 1 the curves are S-shaped


def make_problem(n: int, seed: int = 0) -> BudgetProblem:
    rng = np.random.default_rng(seed)
    n_ch = max(2, n // 20)
    curves = {(f"ch{i % n_ch}", f"c{i}"): HillCurve(rng.uniform(1, 100), rng.uniform(100, 5000),
                                                    rng.uniform(0.5, A_MAX)) for i in range(n)}
    return BudgetProblem(curves, total=20_000.0 * n, min_channel_share=0.5 / n_ch,
                         min_campaign_share=0.1 / n)


def objective(p: BudgetProblem, x: np.ndarray) -> float:
    beta, k, a = p.params()
    r = (np.maximum(x, 0) / p.horizon_days / k) ** a
    return float((p.horizon_days * beta * r / (1 + r)).sum())


def slsqp(p: BudgetProblem) -> np.ndarray:
    b, H, T = p.box, p.horizon_days, p.total
    beta, k, a = p.params()
    norm = H * beta.sum()

    def f(u):
        r = (np.maximum(u * T, 1e-12) / H / k) ** a
        return -(H * beta * r / (1 + r)).sum() / norm

    def jac(u):
        s = np.maximum(u * T, 1e-12) / H
        r = (s / k) ** a
        return -(beta * a * r / (s * (1 + r) ** 2)) * T / norm

    onehot = np.eye(len(b.channels))[b.ch].T  # (C, n)
    cons = [{"type": "eq", "fun": lambda u: u.sum() - 1.0, "jac": lambda u: np.ones((1, len(u)))},
            {"type": "ineq", "fun": lambda u: onehot @ u - b.ch_lo / T, "jac": lambda u: onehot}]
    res = minimize(f, np.full(len(b.lo), 1.0 / len(b.lo)), jac=jac, method="SLSQP",
                   bounds=list(zip(b.lo / T, b.hi / T, strict=True)), constraints=cons,
                   options={"ftol": 1e-12, "maxiter": 1000})
    return res.x * T


def timed(fn, repeats: int = 3) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slsqp-max", type=int, default=1000)
    ap.add_argument("--slsqp-repeats", type=int, default=3)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10000])
    ap.add_argument("--a-max", type=float, default=1.0, help="largest curve exponent (>1: S-shaped curves)")
    args = ap.parse_args()
    global A_MAX
    A_MAX = args.a_max
    print("| campaigns | channels | allocate_budget (s) | iterations | SLSQP (s) "
          "| objective ours / SLSQP |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        p = make_problem(n)
        t_ours, res = timed(lambda p=p: allocate_budget(p))
        x_ours = np.array([res.allocation[u] for u in p.units])
        if n <= args.slsqp_max:
            t_ref, x_ref = timed(lambda p=p: slsqp(p), args.slsqp_repeats)
            ratio = f"{objective(p, x_ours) / objective(p, x_ref):.9f}"
            t_ref_s = f"{t_ref:.3f}"
        else:
            t_ref_s, ratio = "skipped (dense, too slow)", "n/a"
        print(f"| {n:,} | {len(p.box.channels)} | {t_ours:.3f} | {res.n_iter} | {t_ref_s} "
              f"| {ratio} |")


if __name__ == "__main__":
    main()
