"""The engine on generated worlds it did not write: attribution and plans against the exact truth.

For each preset (conf/experiment/*.yaml) and seed: generate the world
(journeynet.synthetic), fit the engine as train.py does (fit_engine: backtest fit, full
fit, interval draws) with the mechanisms on ("full") and all off ("plain": the previous
engine), and report

* TV: total-variation distance of the paid removal-effect shares from the true ones,
  beside last touch and the best classic rule;
* the brand-style (largest capture) unit's share against its truth, the harmful unit's
  effect (sign), whether every material opener scores above every closer;
* the 90% interval's coverage of the true effects;
* plan / true optimum: rollouts curves, the default budget problem, the plan scored in
  the TRUE world (journeynet.synthetic.truth.plan_conversions), beside the current mix.

    PYTHONPATH=src python bench/bench_engine.py --presets default brand_trap --seeds 0 1 --variants full plain
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from journeynet.attribution.classic import MODELS, classic_credit
from journeynet.attribution.tables import funnel_table, shares, total_variation
from journeynet.causal.data import build_funnel_data
from journeynet.causal.engine import EngineResult, fit_engine
from journeynet.causal.fit import FunnelFitConfig, fit_funnel
from journeynet.causal.interventions import response_points
from journeynet.data.journeys import Vocab, build_journeys
from journeynet.net_free import daily_units
from journeynet.planning.budget import BudgetProblem, allocate_budget, extrapolation_caps
from journeynet.planning.response import fit_curves
from journeynet.synthetic.simulate import SimConfig, simulate
from journeynet.synthetic.truth import plan_conversions

ROOT = Path(__file__).resolve().parents[1]
TOTAL, HORIZON = 200_000.0, 30
PLAIN = {"capture": False, "demand": False, "signed": False, "wear": False}
# full: the engine as train.py runs it; plain: its fits with every mechanism off; previous: the
# previous engine exactly (one 100-iteration fit, no mechanisms, no backtest, no intervals)
VARIANTS = {"full": {}, "plain": PLAIN, "previous": PLAIN}


def preset(name: str) -> dict:
    if name == "default":
        return {}
    cfg = yaml.safe_load((ROOT / "conf" / "experiment" / f"{name}.yaml").read_text())
    return cfg["data"]["synthetic"]


def fit_config() -> FunnelFitConfig:
    conf = yaml.safe_load((ROOT / "conf" / "attribution" / "default.yaml").read_text())["funnel"]
    conf["seed"] = 0
    return FunnelFitConfig(**conf)


def classic_tv(sim, units: list, true_share: np.ndarray) -> dict[str, float]:
    vocab = Vocab.fit(sim.touchpoints, sim.spend)
    journeys = build_journeys(sim.touchpoints, vocab)
    credit = classic_credit(journeys, len(vocab.units), half_life_days=7.0)
    frame = vocab.unit_frame().merge(credit, left_on="unit_id", right_index=True, how="left")
    idx = frame.set_index(["channel", "campaign_type"])
    return {m: total_variation(true_share, shares(idx.loc[units, m].fillna(0).to_numpy())) for m in MODELS}


def engine_allocation(sim, data, params, table) -> np.ndarray:
    """The engine's plan: rollout curves, the default budget problem; daily spend per unit in ``data.units`` order."""
    points = response_points(params, data.spend)
    table = table.assign(paid=True)
    daily = daily_units(sim.touchpoints, sim.spend, table)
    pooled = dict(zip(zip(table.channel, table.campaign_type, strict=True), table.attributed_conversions, strict=True))
    fits = fit_curves(daily, pooled, points, "rollouts")
    units = data.units
    current = dict(zip(units, data.spend.mean(0) * HORIZON, strict=True))
    problem = BudgetProblem(curves={u: fits[u].curve for u in units}, total=TOTAL, horizon_days=HORIZON,
                            current=current, max_daily_spend=extrapolation_caps({u: fits[u].spend_max for u in units},
                                                                                3.0))
    res = allocate_budget(problem, raise_on_fail=False)
    return np.array([res.allocation[u] / HORIZON for u in units])


def plan_score(sim, data, params, table, units: list) -> dict[str, float]:
    col = [data.units.index(u) for u in units]  # the world's order
    plan = plan_conversions(sim.truth, engine_allocation(sim, data, params, table)[col], HORIZON)
    current = data.spend.mean(0)[col] * HORIZON
    scale = TOTAL / current.sum()
    cur = plan_conversions(sim.truth, current * scale / HORIZON, HORIZON)
    best = sim.truth["optimum"]["expected_conversions"]
    return {"plan_pct": 100 * plan / best, "current_pct": 100 * cur / best}


def one(name: str, seed: int, variant: str, max_sequences: int | None, plan: bool,
        overrides: dict | None = None, pool: int | None = None) -> dict:
    world = preset(name) | ({"pool": pool} if pool else {})
    sim = simulate(SimConfig(seed=seed, **world), optimum=plan)
    truth = pd.DataFrame(sim.truth["units"])
    units = list(zip(truth.channel, truth.campaign_type, strict=True))
    true_share = shares(truth["effect"])
    cfg = replace(fit_config(), **VARIANTS[variant], max_sequences=max_sequences, **(overrides or {}))
    data = build_funnel_data(sim.touchpoints, sim.spend, cfg.max_sequences, 0)
    t0 = time.perf_counter()
    if variant == "previous":
        params, _ = fit_funnel(data, replace(cfg, max_iter=100))
        result = EngineResult(params)
    else:
        result = fit_engine(data, cfg)
    fit_s = time.perf_counter() - t0
    table = funnel_table(result.params, data.spend, float(sim.touchpoints["converted"].sum()), result.draws)
    est = table.set_index(["channel", "campaign_type"]).loc[units]
    share = shares(est["removal_effect"].to_numpy())
    capture = truth.get("captured_conversions", pd.Series(0.0, index=truth.index)).to_numpy()
    brand = int(np.argmax(capture))
    harmful = np.flatnonzero(truth["effect"].to_numpy() < 0)
    material = true_share > 0.01
    opener = est["opener_score"].to_numpy()
    roles = truth["role"].to_numpy()
    op, cl = opener[material & (roles == "opener")], opener[material & np.isin(roles, ["closer", "brand"])]
    out = {"preset": name, "seed": seed, "variant": variant, "fit_s": round(fit_s, 1), "sequences": data.n_sequences,
           "tv": total_variation(true_share, share),
           "brand_unit": "/".join(units[brand]), "brand_share": share[brand], "brand_true": true_share[brand],
           "harmful_est": [float(est["removal_effect"].iloc[h]) for h in harmful],
           "harmful_true": [float(truth["effect"].iloc[h]) for h in harmful],
           "roles_ok": bool(op.size and cl.size and op.min() > cl.max()) if op.size and cl.size else None,
           "units": ["/".join(u) for u in units], "share_est": share.round(4).tolist(),
           "share_true": true_share.round(4).tolist()}
    if "removal_effect_low" in est:
        inside = (est["removal_effect_low"].to_numpy() <= truth["effect"].to_numpy()) & (
            truth["effect"].to_numpy() <= est["removal_effect_high"].to_numpy())
        out["coverage"] = float(inside.mean())
    out.update({f"tv_{k}": v for k, v in classic_tv(sim, units, true_share).items()})
    if plan:
        out.update(plan_score(sim, data, result.params, table, units))
    return out


def emit(row: dict, out: str | None) -> None:
    """Print one result as a JSON line, and append it to ``out`` when given."""
    line = json.dumps(row, default=float)
    print(line, flush=True)
    if out:
        with open(out, "a") as f:
            f.write(line + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="+", default=["default"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--variants", nargs="+", default=["full", "plain"])
    ap.add_argument("--max-sequences", type=lambda v: None if v == "null" else int(v), default=20_000,
                    help="customers sampled for the fit; null: every customer")
    ap.add_argument("--no-plan", action="store_true")
    ap.add_argument("--pool", type=int, default=None, help="market size of every world (default: the preset's)")
    ap.add_argument("--out", default=None, help="append JSON lines here")
    ap.add_argument("--set", nargs="*", default=[], help="attribution.funnel overrides, e.g. n_segments=3")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name in args.presets:
        for seed in args.seeds:
            for variant in args.variants:
                sets = {k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in args.set)}
                row = one(name, seed, variant, args.max_sequences, not args.no_plan, sets, args.pool)
                row["set"] = args.set
                emit(row, args.out)


if __name__ == "__main__":
    main()
