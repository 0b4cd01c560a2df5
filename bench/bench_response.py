"""Response-curve methods against the generator's true response, on finished train runs.

For each run dir of a generated world (e.g. from bench/bench_settings.sh), fit the curves
by every method from the run's own outputs (attribution credit, rollouts, daily units)
and compare each unit's predicted mean daily incremental conversions at 0.25x to 3x its
historical spend with the truth (ground_truth.json). Error = sum |predicted - true| /
sum true, over units and multiples.

    PYTHONPATH=src python bench/bench_response.py /tmp/journeynet_settings/*
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from journeynet.planning.response import fit_curves


def evaluate(run: Path) -> dict[str, float]:
    truth = json.loads((run / "ground_truth.json").read_text())
    true_pts = pd.DataFrame(truth["response_points"])
    daily = pd.read_csv(run / "daily_units.csv", parse_dates=["date"])
    points = pd.read_csv(run / "response_points.csv")
    attr = pd.read_csv(run / "attribution.csv")
    for df in (daily, points, attr):
        df["campaign_type"] = df["campaign_type"].fillna("").astype(str)
    paid = attr[attr["paid"]]
    pooled = {(c, k): v for c, k, v in zip(paid.channel, paid.campaign_type, paid.attributed_conversions,
                                            strict=True)}
    out = {"run": run.name}
    for method in ("exposure", "rollouts", "daily"):
        fits = fit_curves(daily, pooled, points, method)
        err, tot = 0.0, 0.0
        for (c, k), g in true_pts[true_pts.spend_multiple > 0].groupby(["channel", "campaign_type"]):
            s = daily[(daily.channel == c) & (daily.campaign_type == k)]["spend"].to_numpy()
            pred = np.array([fits[(c, k)].curve(m * s).mean() for m in g.spend_multiple])
            err += np.abs(pred - g.expected_conversions.to_numpy()).sum()
            tot += g.expected_conversions.abs().sum()
        out[method] = err / tot
    return out


def main() -> None:
    rows = [evaluate(Path(p)) for p in sys.argv[1:]]
    df = pd.DataFrame(rows)
    print(df.round(4).to_string(index=False))
    print("mean", df[["exposure", "rollouts", "daily"]].mean().round(4).to_dict())


if __name__ == "__main__":
    main()
