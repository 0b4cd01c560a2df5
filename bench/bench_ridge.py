"""How well the journeys pin down paid media's total effect: convergence, profile likelihood, per-unit response.

On a generated world (exact truth), after the engine's fit as ``train.py`` runs it:

* ``--converge CHUNK N``: the full fit continued in N chunks of CHUNK L-BFGS iterations;
  per chunk the penalized negative log-likelihood, paid media's total effect over the
  window (every paid unit off) and the removal-effect TV against the truth;
* ``--profile F1,F2,...``: refits with paid media's total effect held (a 1% standard
  error experiment penalty) at each multiple of a free refit's value, the same
  iterations from the same start; per fit the NLL above the free refit, TV, the plan's
  share of the true optimum and its promise (the engine's joint rollout) against the truth;
* ``--response``: each unit's response (mean daily incremental conversions, its history
  scaled) by the engine and by the world.

    PYTHONPATH=src python bench/bench_ridge.py --converge 60 8
    PYTHONPATH=src python bench/bench_ridge.py --profile 0.9,1.15,1.38 --iters 150
    PYTHONPATH=src python bench/bench_ridge.py --response --set refine_iter=120
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import torch
import yaml
from bench_engine import HORIZON, TOTAL, engine_allocation, fit_config, preset

from journeynet.attribution.tables import funnel_table, shares, total_variation
from journeynet.causal.calibration import Experiment, ExperimentPenalty, experiment_values
from journeynet.causal.data import build_funnel_data
from journeynet.causal.engine import _copy_state, _iters, fit_engine
from journeynet.causal.fit import fit_funnel, load_state, make_net
from journeynet.causal.funnel import FunnelParams, expected_conversions
from journeynet.causal.interventions import response_points
from journeynet.synthetic.propagate import propagate
from journeynet.synthetic.simulate import SimConfig, simulate
from journeynet.synthetic.truth import as_world, plan_conversions
from journeynet.synthetic.truth import response_points as true_response_points


class Ridge:
    """One world, the engine's fit on it, and the figures above."""

    def __init__(self, name: str, seed: int, sets: dict) -> None:
        self.sim = simulate(SimConfig(seed=seed, **preset(name)), optimum=True)
        self.world = as_world(self.sim.truth)
        truth = pd.DataFrame(self.sim.truth["units"])
        self.units = list(zip(truth.channel, truth.campaign_type, strict=True))
        self.true_share = shares(truth["effect"])
        self.cfg = replace(fit_config(), max_sequences=20_000, interval_groups=0, **sets)
        self.data = build_funnel_data(self.sim.touchpoints, self.sim.spend, self.cfg.max_sequences, 0)
        days, n_units = self.data.spend.shape
        self.all_paid = Experiment("all paid", "*", "", tuple(range(n_units)), 0, days - 1, 0, 0.0, 1.0)
        self.col = [self.data.units.index(u) for u in self.units]  # engine column of each world unit
        spend = self.data.spend[:, self.col]
        self.truth_all = float(propagate(self.world, spend).conversions.sum()
                               - propagate(self.world, 0 * spend).conversions.sum())
        self.observed = float(self.sim.touchpoints["converted"].sum())
        self.result = fit_engine(self.data, self.cfg)
        cut = self.result.holdout_start or self.data.n_days
        self.warm = make_net(self.data.subset(np.ones(self.data.n_sequences, bool), cut), self.cfg)
        load_state(self.warm, self.result.warm_state)
        self.mean = self.data.spend.mean(0)
        self.free_plan: np.ndarray | None = None

    def total(self, params: FunnelParams) -> float:
        return float(experiment_values(params, self.data.spend, [self.all_paid])[0])

    def tv(self, params: FunnelParams) -> float:
        table = funnel_table(params, self.data.spend, self.observed, [])
        est = table.set_index(["channel", "campaign_type"]).loc[self.units]
        return total_variation(self.true_share, shares(est["removal_effect"].to_numpy()))

    def nll(self, net) -> float:
        with torch.no_grad():
            return float(-(net.log_likelihood() + net.log_prior(self.cfg.prior_weight)))

    def full_net(self):
        net = make_net(self.data, self.cfg)
        _copy_state(self.warm, net)
        return net

    def converge(self, chunk: int, n: int) -> None:
        net, evals = self.full_net(), 0.0
        for i in range(n):
            params, diag = fit_funnel(self.data, _iters(self.cfg, chunk), net=net, quiet=True)
            evals += diag["evaluations"]
            print(json.dumps({"iterations": (i + 1) * chunk, "evaluations": evals, "nll": self.nll(net),
                              "all_paid": self.total(params), "truth_all_paid": self.truth_all,
                              "tv": self.tv(params)}), flush=True)

    def refit(self, iters: int, target: float | None) -> tuple[FunnelParams, float]:
        net = self.full_net()
        penalty = None if target is None else ExperimentPenalty([replace(self.all_paid, measured=target,
                                                                         standard_error=0.01 * abs(target))])
        params, _ = fit_funnel(self.data, _iters(self.cfg, iters), net=net, penalty=penalty, quiet=True)
        return params, self.nll(net)

    def rollout(self, params: FunnelParams, daily: np.ndarray) -> float:
        """Paid-caused conversions per horizon: every history scaled to ``daily`` at once, minus zero spend."""
        run = expected_conversions(params, np.stack([self.data.spend * (daily / self.mean), 0 * self.data.spend]))
        return float((run[0] - run[1]).mean() * HORIZON)

    def plan(self, params: FunnelParams) -> np.ndarray:
        table = funnel_table(params, self.data.spend, self.observed, [])
        return engine_allocation(self.sim, self.data, params, table)

    def score(self, params: FunnelParams) -> dict[str, float]:
        plan = self.plan(params)
        current = self.mean * (TOTAL / HORIZON) / self.mean.sum()
        true = [plan_conversions(self.sim.truth, x[self.col], HORIZON) for x in (plan, current, 0 * current)]
        cur = self.rollout(params, current)
        return {"all_paid": self.total(params), "truth_all_paid": self.truth_all, "tv": self.tv(params),
                "plan_pct": 100 * true[0] / self.sim.truth["optimum"]["expected_conversions"],
                "promised_uplift_pct": 100 * (self.rollout(params, plan) / cur - 1),
                "true_uplift_pct": 100 * ((true[0] - true[2]) / (true[1] - true[2]) - 1),
                "current_paid_engine": cur, "current_paid_true": true[1] - true[2]}

    def profile(self, fractions: list[float], iters: int) -> None:
        free, base = self.refit(iters, None)
        print(json.dumps({"fit": "free", "target": None, "dnll": 0.0} | self.score(free)), flush=True)
        value = self.total(free)
        for f in fractions:
            params, nll = self.refit(iters, f * value)
            print(json.dumps({"fit": "profile", "target": f * value, "dnll": nll - base} | self.score(params)),
                  flush=True)

    def response(self) -> None:
        keys = ["channel", "campaign_type", "spend_multiple"]
        est = response_points(self.result.params, self.data.spend).set_index(keys)["expected_conversions"]
        true = true_response_points(self.world, self.data.spend[:, self.col]).set_index(keys)["expected_conversions"]
        both = pd.DataFrame({"engine": est, "truth": true}).unstack("spend_multiple").dropna(axis=1)
        print(both.round(2).to_string())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="default")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", nargs="*", default=[], help="attribution.funnel overrides, e.g. refine_iter=120")
    ap.add_argument("--converge", nargs=2, type=int, metavar=("CHUNK", "N"))
    ap.add_argument("--profile", type=lambda v: [float(x) for x in v.split(",")])
    ap.add_argument("--iters", type=int, default=150, help="iterations of each profile refit")
    ap.add_argument("--response", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    sets = {k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in args.set)}
    ridge = Ridge(args.preset, args.seed, sets)
    print(json.dumps({"fit": "engine", "set": args.set} | ridge.score(ridge.result.params)), flush=True)
    if args.converge:
        ridge.converge(*args.converge)
    if args.profile:
        ridge.profile(args.profile, args.iters)
    if args.response:
        ridge.response()


if __name__ == "__main__":
    main()
