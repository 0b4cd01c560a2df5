"""Removal attribution at market scale: funnel fit + interventions, and naive deletion.

    PYTHONPATH=src python bench/bench_attribution.py [--pool 1375000] [--repeats 3] [--naive-journeys 50000]

A generated market with about 1M touched customers (``simulate`` touches about 0.73 of
its pool, so ``pool=1375000``; generation is not timed). Timed, median of ``--repeats``:

* ``build_funnel_data`` with the pipeline's sample (``attribution.funnel.max_sequences``
  from ``conf/attribution/default.yaml``, 20000 customers), ``fit_funnel`` with that
  file's settings (``max_iter`` included), ``interventions.removal_effects`` and
  ``interventions.response_points`` (the pipeline's spend multiples);
* accuracy: total-variation distance between the shares of the fitted removal effects
  and the true interventional shares (``sim.truth["units"]``), merged on unit;
* naive deletion: ``attribution.naive_deletion`` of every paid unit with an untrained
  :class:`AttentionLSTM` (hidden 64) over ``--naive-journeys`` journeys; the figure is
  journeys re-scored per second (one per journey a unit touches), beside plain
  ``predict_proba`` journeys/s.

``torch.set_num_threads(1)``, as the pipeline runs. CPU seconds of this process are printed
beside wall seconds: on a shared machine they show what the step costs alone.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import OmegaConf

from journeynet.attribution.tables import naive_deletion, shares, total_variation
from journeynet.causal.data import build_funnel_data
from journeynet.causal.fit import FunnelFitConfig, fit_funnel
from journeynet.causal.interventions import removal_effects, response_points
from journeynet.causal.sample import SimConfig, simulate
from journeynet.data.journeys import Vocab, build_journeys
from journeynet.model.net import AttentionLSTM
from journeynet.model.predict import predict_proba

ROOT = Path(__file__).resolve().parents[1]


def funnel_config() -> tuple[FunnelFitConfig, tuple[float, ...]]:
    att = OmegaConf.load(ROOT / "conf/attribution/default.yaml")
    resp = OmegaConf.load(ROOT / "conf/response/default.yaml")
    funnel = OmegaConf.to_container(att.funnel)
    funnel["seed"] = 0
    return FunnelFitConfig(**funnel), tuple(resp.get("spend_multiples"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", type=int, default=1_375_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--naive-journeys", type=int, default=50_000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    fit_cfg, multiples = funnel_config()
    print(f"cores {os.cpu_count()}, torch threads 1, load {os.getloadavg()}")
    print(f"funnel fit config {fit_cfg}; spend multiples {multiples}")
    t0 = time.perf_counter()
    sim = simulate(SimConfig(pool=args.pool, seed=0))
    tp, spend = sim.touchpoints, sim.spend
    print(f"simulate(pool={args.pool}): {len(tp)} touchpoints, {tp['customer_id'].nunique()} customers, "
          f"{int(tp['converted'].sum())} conversions in {time.perf_counter() - t0:.1f} s", flush=True)
    truth = pd.DataFrame(sim.truth["units"])[["channel", "campaign_type", "effect"]]

    phases = {k: [] for k in ("build_funnel_data", "fit_funnel", "removal_effects", "response_points", "total")}
    tvs, cpu = [], []
    for r in range(args.repeats):
        c0 = time.process_time()
        t = [time.perf_counter()]
        data = build_funnel_data(tp, spend, fit_cfg.max_sequences, fit_cfg.seed)
        t.append(time.perf_counter())
        params, diag = fit_funnel(data, fit_cfg)
        t.append(time.perf_counter())
        effects = removal_effects(params, data.spend)
        t.append(time.perf_counter())
        response_points(params, data.spend, multiples)
        t.append(time.perf_counter())
        for k, a, b in zip(phases, t, t[1:], strict=False):
            phases[k].append(b - a)
        phases["total"].append(t[-1] - t[0])
        cpu.append(time.process_time() - c0)
        merged = truth.merge(effects, on=["channel", "campaign_type"], how="left", suffixes=("_true", ""))
        tv = total_variation(shares(merged["effect_true"]), shares(merged["effect"].fillna(0.0)))
        tvs.append(tv)
        print(f"repeat {r}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in phases.items())
              + f" (CPU {cpu[-1]:.2f} s); TV {tv:.4f}; {diag['evaluations']:.0f} likelihood evaluations", flush=True)
    for k, v in phases.items():
        print(f"median {k:18s} {statistics.median(v):7.2f} s")
    print(f"median CPU time (user+system, this process) of the total {statistics.median(cpu):.2f} s")
    print(f"TV distance of removal-effect shares vs truth: median {statistics.median(tvs):.4f} "
          f"(runs {np.round(tvs, 4).tolist()})")
    print(merged.assign(true_share=shares(merged["effect_true"]), fitted_share=shares(merged["effect"].fillna(0)))
          [["channel", "campaign_type", "true_share", "fitted_share"]].round(4).to_string(index=False))

    # naive deletion throughput
    vocab = Vocab.fit(tp, spend)
    journeys = build_journeys(tp, vocab)
    idx = np.sort(np.random.default_rng(0).choice(len(journeys), size=min(args.naive_journeys, len(journeys)),
                                                  replace=False))
    sub = journeys.subset(idx)
    torch.manual_seed(0)
    net = AttentionLSTM(vocab.n_channels, vocab.n_campaigns).eval()
    paid = vocab.unit_frame().query("paid")["unit_id"].tolist()
    jid = np.repeat(np.arange(len(sub)), sub.lengths)
    rescored = sum(int(np.unique(jid[sub.unit == u]).size) for u in paid)
    pred_t, naive_t, naive_cpu = [], [], []
    for _ in range(args.repeats):
        c0 = time.process_time()
        t0 = time.perf_counter()
        base_p, _ = predict_proba(net, sub)
        t1 = time.perf_counter()
        c1 = time.process_time()
        naive_deletion(net, sub, paid, base_p)
        t2 = time.perf_counter()
        naive_cpu.append(time.process_time() - c1)
        pred_t.append(t1 - t0)
        naive_t.append(t2 - t1)
    print(f"naive deletion: {len(sub)} journeys, {len(paid)} paid units, {rescored} journeys re-scored; "
          f"median {statistics.median(naive_t):.2f} s = {rescored / statistics.median(naive_t):,.0f} journeys/s "
          f"(runs {np.round(naive_t, 2).tolist()}; CPU {statistics.median(naive_cpu):.2f} s "
          f"= {rescored / statistics.median(naive_cpu):,.0f} journeys per CPU second)")
    print(f"predict_proba: median {statistics.median(pred_t):.2f} s = "
          f"{len(sub) / statistics.median(pred_t):,.0f} journeys/s")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; load after {os.getloadavg()}")


if __name__ == "__main__":
    main()
