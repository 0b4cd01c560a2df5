"""The plan's promise against the generated world's truth, and the engine's own joint rollout of the plan.

After ``python train.py hydra.run.dir=RUN`` on a generated world and ``python optimize.py
run_dir=RUN hydra.run.dir=RUN/plan``: score the plan's allocation and the current mix
(scaled to the plan's budget) in the true world (``journeynet.synthetic.truth.plan_conversions``),
against zero paid spend, and in the fitted engine (every campaign's spend history scaled to
each allocation's daily spend at once), beside what ``plan.json`` promises.

    PYTHONPATH=src python bench/bench_promise.py --run RUN --seed 0
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from journeynet.causal.data import spend_matrix
from journeynet.causal.funnel import FunnelParams, expected_conversions
from journeynet.synthetic.simulate import SimConfig, simulate
from journeynet.synthetic.truth import plan_conversions


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True, help="train.py run directory with plan/plan.json")
    ap.add_argument("--seed", type=int, default=0, help="the generated world's seed (train.py's seed)")
    args = ap.parse_args()
    run = Path(args.run)
    plan = json.loads((run / "plan" / "plan.json").read_text())
    horizon, total = plan["horizon_days"], plan["total"]
    alloc = {(a["channel"], a["campaign_type"]): a["spend"] / horizon for a in plan["allocation"]}

    sim = simulate(SimConfig(seed=args.seed), optimum=False)
    current = sim.spend_matrix.mean(0)
    current = current * (total / horizon) / current.sum()
    planned = np.array([alloc[u] for u in sim.units])
    true = [plan_conversions(sim.truth, x, horizon) for x in (planned, current, np.zeros_like(current))]

    params = FunnelParams.from_dict(json.loads((run / "funnel_params.json").read_text()))
    units, _, history = spend_matrix(pd.read_csv(run / "spend.csv", parse_dates=["date"]))
    mean = history.mean(0)
    scale = [np.array([alloc[u] for u in units]) / mean, np.full(len(units), (total / horizon) / mean.sum()), 0.0]
    engine = expected_conversions(params, np.stack([history * s for s in scale])).mean(1) * horizon

    def uplift(plan_value: float, current_value: float) -> float:
        return 100 * (plan_value / current_value - 1)

    rows = {
        "promised (plan.json, conversions caused by paid media)": (
            plan["expected_conversions"], plan["current_scaled_expected_conversions"]),
        "engine, joint rollout (caused by paid media)": (engine[0] - engine[2], engine[1] - engine[2]),
        "true, caused by paid media": (true[0] - true[2], true[1] - true[2]),
        "true, every conversion": (true[0], true[1]),
    }
    for name, (p, c) in rows.items():
        print(f"{name}: plan {p:.1f}, current mix scaled {c:.1f}, uplift {uplift(p, c):+.1f}%")
    interval = plan.get("interval") or {}
    if "uplift_90" in interval:
        print("promised 90% interval: {:+.1f}% to {:+.1f}%".format(*(100 * np.asarray(interval["uplift_90"]))))


if __name__ == "__main__":
    main()
