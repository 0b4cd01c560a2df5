"""Timestamp parsing at hackathon scale: one format per column against pandas' per-column inference.

    PYTHONPATH=src nice -n 10 python bench/bench_timestamps.py
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd

from journeynet.data.timestamps import parse_timestamps

N = 1_600_000


def best_of(fn, reps: int = 2) -> tuple[float, pd.Series]:
    times, out = [], None
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    stamps = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.random.default_rng(0).integers(0, 182 * 86400, N), "s")
    for name, fmt in [("ISO-8601", "%Y-%m-%d %H:%M:%S"), ("dd/mm/YYYY HH:MM", "%d/%m/%Y %H:%M")]:
        text = pd.Series(stamps.strftime(fmt)).astype("str")
        truth = stamps.floor("min") if "HH:MM" in name else stamps
        new_s, new = best_of(lambda t=text: parse_timestamps(t, "touchpoints", "f", "timestamp", "timestamps"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            old_s, old = best_of(lambda t=text: pd.to_datetime(t, errors="coerce", utc=True).dt.tz_localize(None))
        print(f"{name}, {N:,} rows: one format {new_s:.2f}s, pandas inference {old_s:.2f}s, ratio {new_s / old_s:.2f}; "
              f"rows right {np.mean(new.values == truth.values):.3f} vs {np.mean(old.values == truth.values):.3f}")


if __name__ == "__main__":
    main()
