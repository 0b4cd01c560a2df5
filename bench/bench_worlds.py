"""Generated worlds per preset: generation and truth time, and how far the classic rules sit from the truth.

    PYTHONPATH=src python bench/bench_worlds.py [--pool 60000] [--seed 0] [--presets default brand_trap ...]

For each preset (``default`` is ``conf/data/synthetic.yaml`` alone; the others add
``conf/experiment/<name>.yaml``): seconds to generate the canonical frames (world, spend,
sampling, frames) and to compute the exact truth (removal effects, opener/closer split,
channel effects, response points, the SLSQP optimum); the total-variation distance between
each classic rule's paid shares (``attribution/classic.py`` on journeys built as
``train.py`` builds them) and the true removal-effect shares, as ``attribution/evaluation.py``
computes it; the capture-capable units' last-touch share against their true share; the
harmful unit's true effect; and the true optimum against the current mix and an equal
split at the same budget. One process, ``torch`` not used.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from journeynet.attribution.classic import MODELS, classic_credit
from journeynet.attribution.tables import shares, total_variation
from journeynet.data.journeys import Vocab, build_journeys
from journeynet.synthetic.config import SimConfig
from journeynet.synthetic.frames import spend_frame, touchpoints_frame
from journeynet.synthetic.sampler import sample_events
from journeynet.synthetic.truth import ground_truth, plan_conversions
from journeynet.synthetic.world import build_world, spend_history

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ("default", "no_brand", "closer_heavy", "capture", "seasonal", "fatigue", "harmful", "repeat", "hard",
           "pmax_capture", "brand_trap", "holiday_retailer", "many_units")


def preset_config(name: str, pool: int | None, seed: int) -> SimConfig:
    base = OmegaConf.load(ROOT / "conf/data/synthetic.yaml").synthetic
    base.seed = seed
    if name != "default":
        base = OmegaConf.merge(base, OmegaConf.load(ROOT / f"conf/experiment/{name}.yaml").data.synthetic)
    kw = OmegaConf.to_container(base, resolve=True)
    if pool:
        kw["pool"] = pool
    return SimConfig(**kw)


def run(name: str, cfg: SimConfig) -> dict:
    c0 = time.process_time()
    t0 = time.perf_counter()
    world = build_world(cfg)
    rng = np.random.default_rng(cfg.seed)
    spend = spend_history(cfg, world, rng)
    events = sample_events(world, spend, rng)
    tp = touchpoints_frame(events, world.units, world.unpaid_channels, cfg.start, rng)
    spend_df = spend_frame(spend, world.units, events, cfg.start, cfg.reported_window_days)
    t1, c1 = time.perf_counter(), time.process_time()
    truth = ground_truth(world, spend, tp, cfg.to_dict())
    t2, c2 = time.perf_counter(), time.process_time()
    vocab = Vocab.fit(tp, spend_df)
    journeys = build_journeys(tp, vocab, lookback_days=30)
    classic = classic_credit(journeys, len(vocab.units), half_life_days=7.0)
    units = pd.DataFrame(truth["units"])
    ids = vocab.unit_frame().set_index(["channel", "campaign_type"])["unit_id"]
    credit = classic.loc[[ids[(c, k)] for c, k in zip(units["channel"], units["campaign_type"], strict=True)]]
    true_share = shares(units["effect"])
    tv = {m: total_variation(true_share, shares(credit[m].to_numpy())) for m in MODELS}
    lt_share = shares(credit["last_touch"].to_numpy())
    capture = units[units["captured_conversions"] > 0.05 * units["captured_conversions"].sum()]
    level = spend.mean(axis=0)
    opt = truth["optimum"]
    budget = opt["total"] / opt["horizon_days"]
    row = {
        "preset": name, "units": world.n_units, "touchpoints": len(tp), "customers": tp["customer_id"].nunique(),
        "conversions": int(tp["converted"].sum()), "generate_s": t1 - t0, "truth_s": t2 - t1,
        "generate_cpu_s": c1 - c0, "truth_cpu_s": c2 - c1,
        "paid_incremental": units["effect"].clip(lower=0).sum() / truth["expected_conversions"],
        "captured_of_baseline": units["captured_conversions"].sum()
        / max(truth["expected_conversions"] - units["closer_effect_true"].clip(lower=0).sum(), 1.0),
        **{f"tv_{m}": v for m, v in tv.items()},
        "capture_units": "; ".join(f"{k} lt {lt_share[i]:.3f} true {true_share[i]:.3f}"
                                   for i, k in zip(capture.index, capture["campaign_type"], strict=True)),
        "harmful": "; ".join(f"{k} {e:.0f}" for k, e in zip(units.loc[units.role == "harmful", "campaign_type"],
                                                          units.loc[units.role == "harmful", "effect"], strict=True)),
        "opt_vs_mix": opt["expected_conversions"] / plan_conversions(truth, level / level.sum() * budget),
        "opt_vs_equal": opt["expected_conversions"] / opt["equal_split_conversions"],
        "spend_share_top": f"{units['campaign_type'][int(np.argmax(level))]} {level.max() / level.sum():.2f}",
    }
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--presets", nargs="*", default=list(PRESETS))
    ap.add_argument("--reference", action="store_true",
                    help="also time the engine-family sampler (journeynet.causal.sample) at the same pool")
    args = ap.parse_args()
    print(f"cores {os.cpu_count()}, load {os.getloadavg()}")
    if args.reference:
        from journeynet.causal.sample import SimConfig as EngineConfig
        from journeynet.causal.sample import simulate as engine_simulate

        c0, t0 = time.process_time(), time.perf_counter()
        ref = engine_simulate(EngineConfig(pool=args.pool or 60_000, seed=args.seed))
        print(f"reference causal.sample.simulate: {len(ref.touchpoints)} touchpoints, frames and truth in "
              f"{time.perf_counter() - t0:.2f} s wall, {time.process_time() - c0:.2f} s CPU", flush=True)
    rows = []
    for name in args.presets:
        row = run(name, preset_config(name, args.pool, args.seed))
        rows.append(row)
        print(f"{name}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()
                                      if k != "preset"), flush=True)
    df = pd.DataFrame(rows)
    cols = ["preset", "units", "touchpoints", "conversions", "generate_cpu_s", "truth_cpu_s", "paid_incremental",
            "tv_last_touch", "tv_first_touch", "tv_linear", "tv_time_decay", "tv_position_based", "tv_markov",
            "opt_vs_mix", "opt_vs_equal"]
    table = df[cols].round(3).astype(str)
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for _, r in table.iterrows():
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
