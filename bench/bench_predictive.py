"""Does the engine reproduce the journeys it was fitted on? Posterior-predictive statistics per paid unit.

On a generated world (exact truth): fit the engine as ``train.py`` does (no interval
draws), sample a market from the fitted process under the observed spend
(:func:`journeynet.causal.sample.sample_events`), and compare, per paid unit, the same
journey statistics on the observed and the sampled touchpoints:

* ``conv/day``: conversions in the unit's sessions per day;
* ``same``: share of the unit's touches in whose session the customer converts;
* ``7d`` / ``30d``: of the customers with a non-converting touch of the unit, the share
  converting within 7 / 30 days of their first such touch; ``30d unpaid``: in an unpaid session;
* ``active``: the share with any touch 1-30 days after it;

beside each unit's removal effect per day, engine against world. A model that matches
the journeys' statistics and still misses the effect was not told the effect by the journeys.

    PYTHONPATH=src python bench/bench_predictive.py --preset default --seed 0
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
import pandas as pd
import torch
from bench_engine import fit_config, preset

from journeynet.attribution.tables import funnel_table
from journeynet.causal.data import build_funnel_data
from journeynet.causal.engine import fit_engine
from journeynet.causal.sample import sample_events
from journeynet.synthetic.simulate import SimConfig, simulate

STATS = ("conv/day", "same", "7d", "30d", "30d unpaid", "active")


def observed_frame(touchpoints: pd.DataFrame) -> pd.DataFrame:
    """Canonical touchpoints as (customer, day, unit, converted)."""
    day0 = touchpoints["timestamp"].min().normalize()
    return pd.DataFrame({"cust": touchpoints["customer_id"].astype(str),
                         "day": (touchpoints["timestamp"].dt.normalize() - day0).dt.days.to_numpy(),
                         "unit": (touchpoints["channel"] + "/" + touchpoints["campaign_type"]).to_numpy(),
                         "conv": touchpoints["converted"].astype(bool).to_numpy()})


def sampled_frame(params, spend: np.ndarray, seed: int) -> pd.DataFrame:
    """A market sampled from the fitted process, in the same shape as :func:`observed_frame`."""
    ev = sample_events(params, spend, np.random.default_rng(seed))
    paid = np.array(["/".join(u) for u in params.units], dtype=object)
    unpaid = np.array(list(params.unpaid_channels), dtype=object)
    name = np.where(ev["kind"] == 0, paid[np.minimum(ev["code"], len(paid) - 1)],
                    unpaid[np.minimum(ev["code"], len(unpaid) - 1)])
    return pd.DataFrame({"cust": ev["customer"], "day": ev["day"], "unit": name, "conv": ev["converted"]})


def journey_stats(frame: pd.DataFrame, units: list[str], days: int) -> pd.DataFrame:
    """The statistics above, one row per unit."""
    paid = frame["unit"].isin(units)
    conv = frame[frame["conv"]].assign(paid=paid[frame["conv"]])
    first_conv = conv.groupby("cust").agg(day=("day", "min"), paid=("paid", "first"))
    rows = {}
    for u in units:
        t = frame[frame["unit"] == u]
        first = t[~t["conv"]].groupby("cust")["day"].min().rename("t")
        j = first.to_frame().join(first_conv, how="left")
        gap = (j["day"] - j["t"]).to_numpy()
        w7, w30 = (gap >= 0) & (gap <= 7), (gap >= 0) & (gap <= 30)
        later = frame.merge(first, left_on="cust", right_index=True)
        active = later[(later["day"] > later["t"]) & (later["day"] <= later["t"] + 30)]["cust"].nunique()
        rows[u] = {"conv/day": float(t["conv"].sum()) / days, "same": float(t["conv"].mean()) if len(t) else np.nan,
                   "7d": float(w7.mean()), "30d": float(w30.mean()),
                   "30d unpaid": float((w30 & (j["paid"] == False).to_numpy()).mean()),  # noqa: E712
                   "active": active / max(len(first), 1)}
    return pd.DataFrame(rows).T


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="default")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", nargs="*", default=[], help="attribution.funnel overrides, e.g. refine_iter=60")
    args = ap.parse_args()
    torch.set_num_threads(1)
    sim = simulate(SimConfig(seed=args.seed, **preset(args.preset)), optimum=False)
    sets = {k: type(getattr(fit_config(), k))(v) for k, v in (s.split("=", 1) for s in args.set)}
    cfg = replace(fit_config(), max_sequences=20_000, interval_groups=0, **sets)
    data = build_funnel_data(sim.touchpoints, sim.spend, cfg.max_sequences, 0)
    params = fit_engine(data, cfg).params
    truth = pd.DataFrame(sim.truth["units"])
    names = [f"{c}/{t}" for c, t in zip(truth["channel"], truth["campaign_type"], strict=True)]
    days = data.n_days
    obs = journey_stats(observed_frame(sim.touchpoints), names, days)
    eng = journey_stats(sampled_frame(params, data.spend, 1), names, days)
    table = funnel_table(params, data.spend, float(sim.touchpoints["converted"].sum()), [])
    effect = table.assign(unit=table["channel"] + "/" + table["campaign_type"]).set_index("unit")["removal_effect"]
    out = pd.concat({"observed": obs, "engine": eng}, axis=1).swaplevel(axis=1)[list(STATS)]
    out[("effect/day", "world")] = truth["effect"].to_numpy() / days
    out[("effect/day", "engine")] = effect.loc[names].to_numpy() / days
    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print(out.round(4).to_string())


if __name__ == "__main__":
    main()
