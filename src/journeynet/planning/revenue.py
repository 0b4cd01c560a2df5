"""What a conversion is worth per paid unit: the value ``budget.objective=revenue`` maximizes.

Quickstart
----------
>>> import pandas as pd
>>> from journeynet.planning.revenue import revenue_per_conversion
>>> tp = pd.DataFrame({"customer_id": [1, 1], "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02"]),
...                    "channel": ["google_ads", "direct"], "campaign_type": ["search", ""],
...                    "converted": [0, 1], "revenue": [0.0, 80.0]})
>>> revenue_per_conversion(tp, {("google_ads", "search")})
{('google_ads', 'search'): 80.0}
"""

from __future__ import annotations

import pandas as pd

Unit = tuple[str, str]


def revenue_per_conversion(touchpoints: pd.DataFrame, units: list[Unit] | set[Unit],
                           prior_weight: float = 10.0) -> dict[Unit, float] | None:
    """Mean revenue of the conversions each unit touched beforehand (the same customer), per unit.

    A unit with few such conversions is shrunk toward the mean revenue of all conversions
    (``prior_weight`` pseudo-conversions), so one large order does not decide a plan.

    Returns
    -------
    dict or None
        Unit -> revenue per conversion; None when the touchpoints carry no revenue.
    """
    if "revenue" not in touchpoints or not touchpoints["revenue"].notna().any():
        return None
    tp = touchpoints.copy()
    tp["channel"] = tp["channel"].astype(str)
    tp["campaign_type"] = tp["campaign_type"].fillna("").astype(str)
    conv = tp.loc[tp["converted"].astype(bool), ["customer_id", "timestamp", "revenue"]].reset_index(drop=True)
    conv["revenue"] = conv["revenue"].fillna(0.0).astype(float)
    if conv.empty:
        return None
    overall = float(conv["revenue"].mean())
    keys = pd.MultiIndex.from_tuples(sorted(units), names=["channel", "campaign_type"])
    paid = tp.set_index(["channel", "campaign_type"])
    paid = paid[paid.index.isin(keys)].reset_index()[["customer_id", "timestamp", "channel", "campaign_type"]]
    m = paid.merge(conv.rename(columns={"timestamp": "converted_at"}).reset_index(names="conversion"),
                   on="customer_id")
    m = m[m["timestamp"] <= m["converted_at"]].drop_duplicates(["conversion", "channel", "campaign_type"])
    g = m.groupby(["channel", "campaign_type"])["revenue"].agg(["sum", "count"])
    return {u: float((g["sum"].get(u, 0.0) + prior_weight * overall) / (g["count"].get(u, 0) + prior_weight))
            for u in units}
