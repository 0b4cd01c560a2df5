"""What the best achievable AUC knows that the journey models do not, on a generated world.

The generator's exact posterior (``journeynet.synthetic.oracle``) reads each customer's whole
history and the day's spend; the journey models read one journey. Gradient boosting on the
journey summaries is fitted with and without two extra pieces of information, on the same
customer split, and all are scored against the oracle on the same test journeys:

* ``prior``: the customer's journeys and touches before this one, and log hours since the
  customer's first touch (known when a journey is scored); ``journey index`` is the first
  of these alone, the one every journey already carries (``Journeys.journey``);
* ``spend``: log1p of the day's spend of the touch's campaign, at the last touch and
  averaged over the journey's touches (the spend file is an input of every run);
* ``to end``: log1p hours from the journey's last touch to the data's last touch, capped at
  the 30-day lookback (the oracle's no-conversion hypothesis needs that much silence, or
  less near the end of the data).

    PYTHONPATH=src python bench/bench_gap_information.py [--seed 0] [--preset-overrides k=v ...]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

from journeynet.data.journeys import Vocab, build_journeys, split_journeys
from journeynet.model.baselines import binary_metrics, summary_features
from journeynet.synthetic.config import SimConfig
from journeynet.synthetic.oracle import journey_probabilities
from journeynet.synthetic.simulate import simulate

_NS_PER_DAY = 86_400_000_000_000


def prior_history(j: object) -> np.ndarray:
    """Per journey: earlier journeys and touches of its customer, log1p hours since the customer's first touch."""
    lengths = np.diff(j.offsets)
    start = np.asarray(j.time)[j.offsets[:-1]]
    df = pd.DataFrame({"c": np.asarray(j.customer_id), "len": lengths, "start": start, "i": np.arange(len(lengths))})
    df = df.sort_values(["c", "start"])
    df["prior_j"] = df.groupby("c").cumcount()
    df["prior_t"] = df.groupby("c")["len"].cumsum() - df["len"]
    df["since_first"] = np.log1p((df["start"] - df.groupby("c")["start"].transform("min")) / 3.6e12)
    return df.sort_values("i")[["prior_j", "prior_t", "since_first"]].to_numpy(float)


def day_spend(j: object, vocab: Vocab, spend: pd.DataFrame, start: pd.Timestamp) -> np.ndarray:
    """Per journey: log1p spend of the last touch's campaign that day, and its mean over the journey's touches."""
    day = (np.asarray(j.time) - start.value) // _NS_PER_DAY
    s = spend.assign(day=(pd.to_datetime(spend["date"]) - start).dt.days)
    look = {(d, c, k): v for d, c, k, v in zip(s["day"], s["channel"], s["campaign_type"], s["spend"], strict=True)}
    touch = np.log1p([look.get((d, vocab.channels[c], vocab.campaign_types[k]), 0.0)
                      for d, c, k in zip(day, j.channel, j.campaign, strict=True)])
    lengths = np.diff(j.offsets)
    jid = np.repeat(np.arange(len(lengths)), lengths)
    return np.stack([touch[j.offsets[1:] - 1], np.bincount(jid, touch) / lengths], axis=1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("overrides", nargs="*", help="SimConfig fields, e.g. world=brand_trap seasonal=true")
    args = ap.parse_args()
    kw = {k: (v == "true" if v in ("true", "false") else v) for k, v in (o.split("=", 1) for o in args.overrides)}
    sim = simulate(SimConfig(seed=args.seed, **kw), optimum=False)
    tp, spend = sim.touchpoints, sim.spend
    vocab = Vocab.fit(tp, spend)
    j = build_journeys(tp, vocab, lookback_days=30, max_len=50)
    splits = split_journeys(j, 0.1, 0.2, by="customer", seed=args.seed)
    tr, te = splits["train"], splits["test"]
    y = np.asarray(j.label).astype(int)
    oracle = binary_metrics(y[te], journey_probabilities(sim.truth, tp, spend, j, te, 30))
    print(f"best achievable (oracle): AUC {oracle['auc']:.4f}, log-loss {oracle['logloss']:.4f}")
    base, prior = summary_features(j, vocab.n_channels), prior_history(j)
    spent = day_spend(j, vocab, spend, pd.Timestamp(sim.truth["config"]["start"]))
    index = np.log1p(np.asarray(j.journey, dtype=float))[:, None]  # the journey's order within its customer
    last = np.asarray(j.time)[j.offsets[1:] - 1]
    to_end = np.log1p(np.minimum((np.asarray(j.time).max() - last) / 3.6e12, 30 * 24))[:, None]
    for name, X in [("summaries", base), ("+ journey index", np.hstack([base, index])),
                    ("+ prior", np.hstack([base, prior])), ("+ spend", np.hstack([base, spent])),
                    ("+ prior + spend", np.hstack([base, prior, spent])),
                    ("+ prior + to end", np.hstack([base, prior, to_end])),
                    ("+ prior + spend + to end", np.hstack([base, prior, spent, to_end]))]:
        model = HistGradientBoostingClassifier(max_iter=500, learning_rate=0.05, early_stopping=True,
                                               validation_fraction=0.1, n_iter_no_change=20, random_state=0)
        model.fit(X[tr], y[tr])
        m = binary_metrics(y[te], model.predict_proba(X[te])[:, 1])
        print(f"gbdt {name:24s} AUC {m['auc']:.4f} (gap {oracle['auc'] - m['auc']:.4f}), log-loss {m['logloss']:.4f}")


if __name__ == "__main__":
    main()
