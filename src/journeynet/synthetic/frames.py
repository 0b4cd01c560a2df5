"""Canonical touchpoint and spend frames (see the contract) from sampled events."""

from __future__ import annotations

import numpy as np
import pandas as pd

from journeynet.synthetic.sampler import PAID

CTR = 0.02  # impressions per click in the spend export


def touchpoints_frame(events: dict[str, np.ndarray], units: list[tuple[str, str]], unpaid: list[str],
                      start: str, rng: np.random.Generator) -> pd.DataFrame:
    """Canonical touchpoints: a converting session is the last touch of its customer's day."""
    n = events["day"].size
    paid = events["kind"] == PAID
    channel = np.array([u[0] for u in units] + list(unpaid), dtype=object)
    campaign = np.array([u[1] for u in units] + [""] * len(unpaid), dtype=object)
    code = np.where(paid, events["code"], len(units) + events["code"])
    seconds = session_seconds(events["customer"], events["day"], events["converted"], rng)
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


def session_seconds(customer: np.ndarray, day: np.ndarray, converted: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """Second of the day of each touch: uniform, with a converting session after its customer's other touches.

    A fixed late hour for conversions would hand the label to any model that reads the
    clock; here a conversion is only the last session of its day, as in the process.
    """
    seconds = rng.integers(0, 86_399, customer.size)
    key = customer.astype(np.int64) * 100_000 + day.astype(np.int64)
    others = pd.Series(np.where(converted, -1, seconds)).groupby(key).transform("max").to_numpy()
    latest = np.maximum(seconds, others + 1)
    return np.where(converted, np.minimum(latest, 86_399), np.minimum(seconds, 86_398))


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
