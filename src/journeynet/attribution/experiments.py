"""The next experiment: which unit's effect is worth measuring, and the lift test that would measure it.

For each paid unit, from the engine's 90% interval of its removal effect (the draws of
:func:`journeynet.causal.engine.fit_engine`):

* ``value_of_knowing``: conversions per 30 days of the current plan (the spend as it
  was) that hang on the unit's unknown effect: half the width of the interval of the
  unit's incremental conversions, per 30 days. If the effect sits at either end of its
  interval, the plan's expected conversions are that much higher or lower than the
  model says, and a budget moved on the model's word gains or loses up to that much.
* the test that would pin it down: the unit switched off for ``window_days`` in a
  random ``holdout_share`` of regions. The market effect over the window is estimated
  from the two groups' conversions, so its standard error is Poisson noise of both,
  ``se^2 = L c / (1 - h) + L (c - r) / h`` (``c`` the market's conversions per day,
  ``r`` the unit's effect per day, from the model). The test is sized to bring that
  below half the model's own standard deviation of the effect over the same window
  (the draws' spread, pro rata), at the least conversions given up (``h L r``); when
  no window up to eight weeks gets there, the most informative one is proposed and the
  sentence says so.

Quickstart::

    from journeynet.attribution.experiments import suggest_experiments
    suggestions = suggest_experiments(table, params, spend)  # table: funnel_table(..., draws)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from journeynet.causal.funnel import FunnelParams, expected_conversions

WINDOWS = (7, 14, 21, 28, 42, 56)
SHARES = (0.1, 0.2, 0.3, 0.5)
COLUMNS = ["channel", "campaign_type", "rank", "value_of_knowing", "window_days", "holdout_share",
           "expected_standard_error", "sentence"]
Z90 = 1.6449  # half-width of a 90% interval in standard deviations


def lift_test_standard_error(window_days: float, holdout_share: float, conversions_per_day: float,
                        effect_per_day: float) -> float:
    """Standard error of a geo lift test's market effect over the window (Poisson noise of both groups)."""
    c, r, h = conversions_per_day, effect_per_day, holdout_share
    return float(np.sqrt(window_days * c / (1 - h) + window_days * max(c - r, 0.0) / h))


def size_test(conversions_per_day: float, effect_per_day: float, sd_per_day: float,
              target: float = 0.5) -> tuple[int, float, float, bool]:
    """Window, holdout share and standard error of the cheapest test reaching ``target`` x the model's sd.

    Returns ``(window_days, holdout_share, standard_error, reached)``; when nothing
    reaches the target, the design with the smallest standard error relative to the
    model's sd over its window.
    """
    best, fallback = None, None
    for window in WINDOWS:
        for share in SHARES:
            se = lift_test_standard_error(window, share, conversions_per_day, effect_per_day)
            model_sd = window * sd_per_day
            cost = share * window * max(effect_per_day, 0.0)
            if se <= target * model_sd and (best is None or (cost, window) < best[0]):
                best = ((cost, window), window, share, se)
            ratio = se / model_sd if model_sd > 0 else np.inf
            if fallback is None or ratio < fallback[0]:
                fallback = (ratio, window, share, se)
    if best is not None:
        return best[1], best[2], best[3], True
    return fallback[1], fallback[2], fallback[3], False


def suggest_experiments(table: pd.DataFrame, params: FunnelParams, spend: np.ndarray,
                        horizon_days: int = 30) -> pd.DataFrame:
    """Ranked lift tests for the paid units with an interval (``removal_effect_low``/``_high``).

    Parameters
    ----------
    table
        The funnel table (:func:`journeynet.attribution.tables.funnel_table` with draws):
        ``channel``, ``campaign_type``, ``removal_effect`` and its 90% interval over the
        fitted window.
    params, spend
        The fitted model and the window's daily spend ``(T, U)``, in ``params.units`` order.
    horizon_days
        The plan's horizon ``value_of_knowing`` is expressed in.

    Returns
    -------
    pandas.DataFrame
        :data:`COLUMNS`, rank 1 the most valuable test; empty without intervals.
    """
    if "removal_effect_low" not in table or table.empty:
        return pd.DataFrame(columns=COLUMNS)
    days = spend.shape[0]
    per_day = float(expected_conversions(params, spend).mean())
    index = {u: i for i, u in enumerate(params.units)}
    rows = []
    for row in table.itertuples(index=False):
        u = index.get((row.channel, row.campaign_type))
        if u is None or spend[:, u].sum() <= 0:
            continue
        width = float(row.removal_effect_high - row.removal_effect_low)
        value = 0.5 * width / days * horizon_days
        effect = float(row.removal_effect) / days
        sd = width / (2 * Z90) / days
        window, share, se, reached = size_test(per_day, effect, sd)
        rows.append((row.channel, row.campaign_type, value, window, share, se,
                     _sentence(row, window, share, se, reached, effect, sd, days, horizon_days)))
    out = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "rank"])
    out = out.sort_values("value_of_knowing", ascending=False, kind="stable").reset_index(drop=True)
    out.insert(2, "rank", np.arange(1, len(out) + 1))
    return out[COLUMNS]


def _sentence(row: object, window: int, share: float, se: float, reached: bool, effect: float, sd: float,
              days: int, horizon: int) -> str:
    """One line a marketer can act on."""
    unit = f"{row.channel}/{row.campaign_type}"
    low, high = row.removal_effect_low / days * horizon, row.removal_effect_high / days * horizon
    head = (f"switch {unit} off for {window} days in {share:.0%} of regions: the model expects "
            f"{share * window * effect:.0f} fewer conversions there, and the test would measure the unit's market "
            f"effect over the window ({window * effect:.0f} by the model) to +/-{se:.0f}")
    if reached:
        return (f"{head}, against the model's +/-{window * sd:.0f}; today its effect is {low:.0f} to {high:.0f} "
                f"conversions per {horizon} days (90% interval)")
    # "accept the interval" would read as the effect being known: the model's interval leaves out its
    # model's error (closers at half their effect on generated worlds, bench/RESULTS.md section 24)
    return (f"{head}, no tighter than the model's own +/-{window * sd:.0f}: at this spend a regional test "
            f"cannot pin it down (effect {low:.0f} to {high:.0f} per {horizon} days by the model, an interval "
            f"that leaves out the model's own error); test a larger change of its spend")
