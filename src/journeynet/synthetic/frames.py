"""Canonical touchpoint and spend frames (see the contract) from sampled events."""

from __future__ import annotations

import numpy as np
import pandas as pd

from journeynet.synthetic.sampler import PAID

CONVERSION_SECONDS = 79_200  # converting sessions happen after 22:00, other touches before
CTR = 0.02  # impressions per click in the spend export


def touchpoints_frame(events: dict[str, np.ndarray], units: list[tuple[str, str]], unpaid: list[str],
                      start: str, rng: np.random.Generator) -> pd.DataFrame:
    """Canonical touchpoints: a converting session is the last touch of its customer's day."""
    n = events["day"].size
    paid = events["kind"] == PAID
    channel = np.array([u[0] for u in units] + list(unpaid), dtype=object)
    campaign = np.array([u[1] for u in units] + [""] * len(unpaid), dtype=object)
    code = np.where(paid, events["code"], len(units) + events["code"])
    seconds = np.where(events["converted"], rng.integers(CONVERSION_SECONDS, 86_400, n),
                       rng.integers(0, CONVERSION_SECONDS, n))
    stamps = (np.datetime64(start, "s") + events["day"].astype("timedelta64[D]")
              + seconds.astype("timedelta64[s]"))
    revenue = np.where(events["converted"], np.round(rng.lognormal(4.3, 0.6, n), 2), 0.0)
    df = pd.DataFrame({
        "customer_id": np.char.add("c", np.char.zfill(events["customer"].astype(str), 7)),
        "timestamp": pd.to_datetime(stamps),
        "channel": channel[code],
        "campaign_type": campaign[code],
        "converted": events["converted"].astype(np.int8),
        "revenue": revenue,
    })
    return df.sort_values(["customer_id", "timestamp"], kind="stable").reset_index(drop=True)


def spend_frame(spend: np.ndarray, units: list[tuple[str, str]], events: dict[str, np.ndarray], start: str,
                window_days: int) -> pd.DataFrame:
    """Canonical spend with platform-reported conversions that over-claim.

    A platform claims every conversion within ``window_days`` after any of its touches
    (view-through), once per customer and unit, so several platforms claim the same sale.
    """
    t, n_u = spend.shape
    paid = events["kind"] == PAID
    cust, day, unit = events["customer"][paid], events["day"][paid], events["code"][paid].astype(np.int64)
    clicks = np.zeros((t, n_u))
    np.add.at(clicks, (day, unit), 1)
    conv = events["converted"]
    # conversion days per customer; a returning buyer can buy more than once
    conv_c, conv_d = events["customer"][conv], events["day"][conv]
    frame = pd.DataFrame({"c": cust, "d": day, "u": unit})
    buys = pd.DataFrame({"c": conv_c, "cd": conv_d})
    pairs = frame.merge(buys, on="c")
    lag = pairs["cd"] - pairs["d"]
    pairs = pairs[(lag >= 0) & (lag < window_days)].drop_duplicates(["c", "u", "cd"])
    reported = np.zeros((t, n_u))
    np.add.at(reported, (pairs["cd"].to_numpy(), pairs["u"].to_numpy()), 1)
    dates = pd.date_range(start, periods=t, freq="D")
    return pd.DataFrame({
        "date": np.repeat(dates.values, n_u),
        "channel": [c for _ in range(t) for c, _ in units],
        "campaign_type": [k for _ in range(t) for _, k in units],
        "spend": spend.ravel(),
        "impressions": np.round(clicks.ravel() / CTR),
        "clicks": clicks.ravel(),
        "conversions": reported.ravel(),
        "revenue": np.round(reported.ravel() * 95.0, 2),
    })
