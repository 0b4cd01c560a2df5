"""Journey building at hackathon scale (about 1.6M touchpoints).

    PYTHONPATH=src python bench/bench_journeys.py [--pool 800000] [--repeats 3]

Touchpoints come from ``simulate(SimConfig(pool=800000))`` (about 1.56M touchpoints of
0.58M customers; generation time is printed, not counted). Timed, median of
``--repeats``: ``Vocab.fit`` + ``build_journeys`` (the model's encoded journeys) and the
funnel's ``build_funnel_data`` at the pipeline's setting (``max_sequences=20000``
sampled customers) and on every customer (``max_sequences=None``). Each is run on a
shuffled copy as well (``build_journeys`` skips its sort when the frame comes sorted, as
``simulate`` and the loaders give it).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

import numpy as np

from journeynet.causal.data import build_funnel_data
from journeynet.causal.sample import SimConfig, simulate
from journeynet.data.journeys import Vocab, build_journeys


def timed(fn, repeats: int) -> tuple[float, list[float], object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", type=int, default=800_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"cores {os.cpu_count()}, load {os.getloadavg()}")
    t0 = time.perf_counter()
    sim = simulate(SimConfig(pool=args.pool, seed=0))
    tp, spend = sim.touchpoints, sim.spend
    print(f"simulate(pool={args.pool}): {len(tp)} touchpoints, {tp['customer_id'].nunique()} customers "
          f"in {time.perf_counter() - t0:.1f} s")
    shuffled = tp.sample(frac=1.0, random_state=0).reset_index(drop=True)

    def journeys(frame):
        return lambda: build_journeys(frame, Vocab.fit(frame, spend))

    rows = [
        ("Vocab.fit + build_journeys (sorted input)", journeys(tp)),
        ("Vocab.fit + build_journeys (shuffled input)", journeys(shuffled)),
        ("build_funnel_data max_sequences=20000", lambda: build_funnel_data(tp, spend, 20_000, 0)),
        ("build_funnel_data max_sequences=None", lambda: build_funnel_data(tp, spend, None, 0)),
    ]
    results = {}
    for name, fn in rows:
        med, times, out = timed(fn, args.repeats)
        size = f"{len(out)} journeys" if hasattr(out, "offsets") else f"{out.n_sequences} sequences"
        results[name] = med
        print(f"{name:45s} median {med:6.2f} s  runs {np.round(times, 2).tolist()}  ({size})", flush=True)
    print(f"touchpoints/s, build_journeys sorted: {len(tp) / results[rows[0][0]]:,.0f}")
    print(f"peak RSS of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; "
          f"load after {os.getloadavg()}")


if __name__ == "__main__":
    main()
