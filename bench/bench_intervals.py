"""Do the engine's 90% intervals cover the truth? The group refits' length against coverage and width.

On a generated world (exact truth): fit the engine as ``train.py`` does, then redo its
interval draws (:func:`journeynet.causal.engine.interval_draws`: the customers split into
groups, each group refitted from the full fit, Gaussian draws of the groups' spread) with
each ``interval_iter`` asked for, from the same full fit and the same groups. Per setting:
the share of paid units whose true removal effect lies in its interval, the median
interval width relative to the effect, paid media's total effect with its interval
against the truth, and the refits' seconds. JSON lines.

    PYTHONPATH=src python bench/bench_intervals.py --presets default --seeds 0 1 --iters 15 45
    PYTHONPATH=src python bench/bench_intervals.py --family engine --seeds 0 1 --iters 45 90

``--family engine`` samples the worlds from the engine's own model
(:mod:`journeynet.causal.sample`), where the model is right: there the intervals' misses
are the refits' (the sampling spread they leave out), not the model's error.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import torch
from bench_engine import emit, fit_config, preset

from journeynet.attribution.tables import funnel_table
from journeynet.causal.calibration import Experiment, experiment_values
from journeynet.causal.data import build_funnel_data
from journeynet.causal.engine import fit_engine, interval_draws
from journeynet.causal.fit import load_state, make_net
from journeynet.causal.interventions import unit_effects
from journeynet.causal.sample import SimConfig as EngineSimConfig
from journeynet.causal.sample import simulate as sample_engine_world
from journeynet.synthetic.propagate import propagate
from journeynet.synthetic.simulate import SimConfig, simulate
from journeynet.synthetic.truth import as_world


def engine_world(seed: int):
    """A world sampled from the engine's own model (:mod:`journeynet.causal.sample`): the model is right."""
    sim = sample_engine_world(EngineSimConfig(seed=seed))
    units = list(sim.params.units)
    return sim, units, unit_effects(sim.params, sim.spend_matrix)


def one(name: str, seed: int, iters: list[int], out: str | None, family: str = "generator") -> None:
    if family == "engine":
        sim, units, true_effect = engine_world(seed)
    else:
        sim = simulate(SimConfig(seed=seed, **preset(name)), optimum=False)
        truth = pd.DataFrame(sim.truth["units"])
        units = list(zip(truth["channel"], truth["campaign_type"], strict=True))
        true_effect = truth["effect"].to_numpy()
    cfg = replace(fit_config(), max_sequences=20_000)
    data = build_funnel_data(sim.touchpoints, sim.spend, cfg.max_sequences, 0)
    result = fit_engine(data, replace(cfg, interval_groups=0))
    full = make_net(data, cfg)
    load_state(full, result.full_state)
    days, n_units = data.spend.shape
    all_paid = Experiment("all paid", "*", "", tuple(range(n_units)), 0, days - 1, 0, 0.0, 1.0)
    col = [data.units.index(u) for u in units]
    spend = data.spend[:, col]
    if family == "engine":
        true_total = float(experiment_values(sim.params, sim.spend_matrix, [all_paid])[0])
    else:
        world = as_world(sim.truth)
        true_total = float(propagate(world, spend).conversions.sum() - propagate(world, 0 * spend).conversions.sum())
    total = float(experiment_values(result.params, data.spend, [all_paid])[0])
    observed = float(sim.touchpoints["converted"].sum())
    for n in iters:
        rng = np.random.default_rng(cfg.seed)
        rng.random(data.n_sequences)  # fit_engine's draw for the backtest customers: the same groups as train.py
        started = time.perf_counter()
        draws = interval_draws(data, full, replace(cfg, interval_iter=n), rng)
        seconds = time.perf_counter() - started
        table = funnel_table(result.params, data.spend, observed, draws)
        est = table.set_index(["channel", "campaign_type"]).loc[units]
        lo, hi = est["removal_effect_low"].to_numpy(), est["removal_effect_high"].to_numpy()
        inside = (lo <= true_effect) & (true_effect <= hi)
        totals = np.array([experiment_values(d, data.spend, [all_paid])[0] for d in draws])
        t_lo, t_hi = np.quantile(totals - totals.mean() + total, [0.05, 0.95])  # centred as funnel_table centres
        label = name if family == "generator" else "engine_family"
        emit({"preset": label, "seed": seed, "interval_iter": n, "refit_s": round(seconds, 1),
              "coverage": float(inside.mean()), "covered": inside.tolist(),
              "rel_width": float(np.median((hi - lo) / np.maximum(np.abs(est["removal_effect"].to_numpy()), 1e-9))),
              "paid_total": total, "paid_total_low": t_lo, "paid_total_high": t_hi, "paid_total_true": true_total},
             out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="+", default=["default"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--iters", type=int, nargs="+", default=[15, 45])
    ap.add_argument("--out", default=None, help="append JSON lines here")
    ap.add_argument("--family", choices=["generator", "engine"], default="generator",
                    help="engine: worlds sampled from the engine's own model (--presets ignored)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name in args.presets:
        for seed in args.seeds:
            one(name, seed, args.iters, args.out, args.family)


if __name__ == "__main__":
    main()
