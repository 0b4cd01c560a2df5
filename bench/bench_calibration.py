"""Lift-test calibration on generated worlds: attribution TV and plan quality, calibrated vs not, and its cost.

For each preset: generate the world, fit the engine weakened as asked (default: capture
off, so brand-style units are over-credited) on the journeys (``warm`` iterations), then
refine the same warm start twice for ``refine`` iterations, once on the journeys alone
and once with one lift test per weakly identified unit (the brand-style unit, and every
unit whose uncalibrated share is off by more than ``--off`` from the truth: the selection
uses the truth, as a marketer's doubt would pick them). Each test switches its unit off
for 28 days mid-window, counts 7 days of lag, and reports the world's exact value with
a standard error of ``--rel-se`` of it (at least 1 conversion).

    PYTHONPATH=src python bench/bench_calibration.py --presets brand_trap holiday_retailer --pool 4000 --days 70
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from journeynet.attribution.tables import funnel_table, shares, total_variation
from journeynet.causal.calibration import Experiment, ExperimentPenalty, experiment_values
from journeynet.causal.data import build_funnel_data
from journeynet.causal.fit import FunnelFitConfig, fit_funnel, make_net
from journeynet.causal.interventions import unit_effects
from journeynet.synthetic.propagate import expected_conversions as world_conversions
from journeynet.synthetic.simulate import SimConfig, simulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import emit, plan_score, preset  # noqa: E402


def true_experiment(sim, units: list, u: int, start: int, end: int, lag: int) -> float:
    """The world's exact conversions lost over ``start..end + lag`` with unit ``u`` off over ``start..end``."""
    spend = sim.spend_matrix.copy()
    w = sim.units.index(units[u])
    off = spend.copy()
    off[start:end + 1, w] = 0.0
    lost = world_conversions(sim.world, spend) - world_conversions(sim.world, off)
    return float(lost[start:end + lag + 1].sum())


def score(name, sim, data, params, units, true_share, plan: bool) -> dict:
    table = funnel_table(params, data.spend, float(sim.touchpoints["converted"].sum()))
    share = shares(unit_effects(params, data.spend))
    out = {"tv": total_variation(true_share, share), "shares": [round(float(s), 4) for s in share]}
    if plan:
        out.update(plan_score(sim, data, params, table, units))
    return out


def one(name: str, args: argparse.Namespace) -> dict:
    sim = simulate(SimConfig(seed=args.seed, pool=args.pool, days=args.days, **preset(name)), optimum=True)
    truth = pd.DataFrame(sim.truth["units"])
    data = build_funnel_data(sim.touchpoints, sim.spend, None, 0)
    units = list(data.units)
    truth = truth.set_index(["channel", "campaign_type"]).loc[units]
    true_share = shares(truth["effect"].to_numpy())
    cfg = FunnelFitConfig(n_segments=2, max_iter=args.warm, seed=0, capture=not args.no_capture)
    net = make_net(data, cfg)
    t0 = time.perf_counter()
    fit_funnel(data, cfg, net=net, quiet=True)
    warm_s = time.perf_counter() - t0
    warm = net.to_params()
    warm_share = shares(unit_effects(warm, data.spend))
    brand = int(np.argmax(truth["captured_conversions"].to_numpy()))
    weak = sorted({brand, *np.flatnonzero(np.abs(warm_share - true_share) > args.off).tolist()})
    mid = data.n_days // 2
    start, end, lag = mid - 14, mid + 13, 7
    tests = []
    for u in weak:
        value = true_experiment(sim, units, u, start, end, lag)
        se = max(args.rel_se * abs(value), 1.0)
        tests.append(Experiment("/".join(units[u]), *units[u], (u,), start, end, lag, value, se))
    state = {k: v.clone() for k, v in net.state_dict().items()}
    rows = {}
    for variant, penalty in (("uncalibrated", None), ("calibrated", ExperimentPenalty(tests))):
        net.load_state_dict(state)
        t0 = time.perf_counter()
        params, diag = fit_funnel(data, FunnelFitConfig(**{**cfg.__dict__, "max_iter": args.refine}), net=net,
                                  quiet=True, penalty=penalty)
        rows[variant] = {"refine_s": round(time.perf_counter() - t0, 1), "evaluations": diag["evaluations"],
                         "experiments_model": [round(float(v), 2) for v in experiment_values(params, data.spend,
                                                                                             tests)],
                         **score(name, sim, data, params, units, true_share, not args.no_plan)}
    ll = lambda: -net.log_likelihood()  # noqa: E731
    pen = ExperimentPenalty(tests)
    cost = {}
    for label, f in (("loglik", ll), ("penalty", lambda: pen(net))):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            f().backward()
            times.append(time.perf_counter() - t0)
        cost[label] = min(times)
    return {"preset": name, "seed": args.seed, "sequences": data.n_sequences, "days": data.n_days,
            "warm_s": round(warm_s, 1), "units": ["/".join(u) for u in units],
            "true_shares": [round(float(s), 4) for s in true_share],
            "tested": [t.name for t in tests], "measured": [round(t.measured, 2) for t in tests],
            "se": [round(t.standard_error, 2) for t in tests],
            "penalty_per_eval_ratio": cost["penalty"] / cost["loglik"], **rows}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="+", default=["brand_trap", "holiday_retailer"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pool", type=int, default=4000)
    ap.add_argument("--days", type=int, default=70)
    ap.add_argument("--warm", type=int, default=25)
    ap.add_argument("--refine", type=int, default=15)
    ap.add_argument("--off", type=float, default=0.03, help="share error that makes a unit weakly identified")
    ap.add_argument("--rel-se", type=float, default=0.15)
    ap.add_argument("--no-capture", action="store_true", default=True)
    ap.add_argument("--no-plan", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name in args.presets:
        emit(one(name, args), args.out)


if __name__ == "__main__":
    main()
