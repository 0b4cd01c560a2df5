"""The best achievable conversion probability of a journey, under the generator's true model.

For a journey, compare two hypotheses about its last touch with the true funnel: it
converted (H1), or it did not and the customer then stayed silent until the journey
closed (H0: ``lookback_days`` of silence or the end of the data). Both likelihoods
include the customer's whole history up to that touch, so
``P(converted) = L1 / (L1 + L0)`` is the Bayes-optimal score given everything observable
about the journey; no classifier can rank journeys better on average.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from journeynet.causal.data import build_funnel_data
from journeynet.causal.fit import FunnelNet
from journeynet.causal.funnel import FunnelParams


def journey_probabilities(params: FunnelParams, touchpoints: pd.DataFrame, spend: pd.DataFrame,
                          journeys: object, idx: np.ndarray, lookback_days: float = 30.0) -> np.ndarray:
    """True P(converted) for journeys ``idx`` of ``journeys`` (built from ``touchpoints``)."""
    cust = np.asarray(journeys.customer_id)[idx]
    end = pd.to_datetime(np.asarray(journeys.end_time)[idx])
    keys = np.array([f"{c}#{i}" for c, i in zip(cust, idx, strict=True)], dtype=object)
    hist = touchpoints.merge(pd.DataFrame({"customer_id": cust, "key": keys, "end": end}), on="customer_id")
    hist = hist[hist["timestamp"] <= hist["end"]].copy()
    last = hist.groupby("key")["timestamp"].transform("max") == hist["timestamp"]
    last &= ~hist.duplicated(["key", "timestamp"], keep="last")
    ll = {}
    for h in (1, 0):
        frame = hist.assign(customer_id=hist["key"], converted=np.where(last, h, hist["converted"]))
        data = build_funnel_data(frame[["customer_id", "timestamp", "channel", "campaign_type", "converted",
                                        "revenue"]], spend, unpaid_channels=list(params.unpaid_channels))
        if h == 0:
            last_day = frame[last].set_index("key")["timestamp"].dt.normalize()
            day = ((last_day - data.dates[0]) / pd.Timedelta(days=1)).astype(int)
            closes = np.minimum(day + int(lookback_days), data.n_days - 1)
            own = pd.Series(data.customer).map(closes).to_numpy()
            is_last_seq = data.conv_day < 0
            data.end_day = np.where(is_last_seq & ~pd.isna(own), own, data.end_day).astype(np.int64)
        net = FunnelNet(data, params.n_segments)
        net.load_params(params)
        with torch.no_grad():
            per_seq = net.sequence_log_likelihood().numpy()
        # earlier sequences of the customer (before an earlier purchase) cancel out in the ratio
        ll[h] = pd.Series(per_seq).groupby(pd.Series(data.customer)).sum()
    diff = (ll[1] - ll[0]).reindex(keys).to_numpy()
    return 1.0 / (1.0 + np.exp(-diff))
