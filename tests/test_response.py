import numpy as np
import pandas as pd
import pytest

from journeynet.errors import InputError
from journeynet.planning.response import (
    FittedCurve,
    HillCurve,
    bootstrap_curves,
    curves_frame,
    fit_curves,
)

TRUE = {("google_ads", "search"): HillCurve(6.0, 900.0, 1.4),
        ("google_ads", "shopping"): HillCurve(4.0, 400.0, 0.8),
        ("meta_ads", ""): HillCurve(3.0, 1500.0, 1.0)}
MEAN_SPEND = {("google_ads", "search"): 800.0, ("google_ads", "shopping"): 500.0,
              ("meta_ads", ""): 1200.0}
E_MAX = 400.0  # touches per day at saturation


def make_daily(seed: int, n_days: int = 120) -> tuple[pd.DataFrame, dict]:
    """Planted truth: Poisson exposure and Poisson per-day conversions, market-driven spend."""
    rng = np.random.default_rng(seed)
    market = np.exp(rng.normal(0, 0.3, n_days))  # demand shocks that move spend and sales
    rows, pooled = [], {}
    for u, c in TRUE.items():
        s = MEAN_SPEND[u] * np.exp(rng.normal(0, 0.5, n_days)) * market
        conv = rng.poisson(c(s) * market)  # market lifts conversions too: confounds daily fits
        expo = rng.poisson(E_MAX * c(s) / c.beta)
        pooled[u] = float(c(s).sum())
        rows.append(pd.DataFrame({"date": np.arange(n_days), "channel": u[0],
                                  "campaign_type": u[1], "spend": s, "exposure": expo,
                                  "attributed": conv.astype(float)}))
    return pd.concat(rows, ignore_index=True), pooled


def shape_error(fits: dict, u) -> float:
    c, t = fits[u].curve, TRUE[u]
    return abs(np.log(c.k / t.k)) + abs(c.a - t.a)


def test_hill_curve_values_and_derivative():
    c = HillCurve(10.0, 100.0, 1.5)
    assert c(100.0) == pytest.approx(5.0)
    assert c(0.0) == 0.0
    s = np.array([10.0, 80.0, 400.0])
    num = (c(s + 1e-4) - c(s - 1e-4)) / 2e-4
    assert np.allclose(c.derivative(s), num, rtol=1e-6)
    assert c(c.spend_at_fraction(0.8)) == pytest.approx(8.0)
    assert np.isfinite(HillCurve(1.0, 10.0, 0.5).derivative(0.0))


@pytest.mark.parametrize("args, match", [((-1.0, 1.0, 1.0), "beta"), ((1.0, 0.0, 1.0), "k"),
                                         ((1.0, 1.0, 0.0), "a"), ((1.0, np.nan, 1.0), "k")],
                         ids=["negative_beta", "zero_k", "zero_a", "nan_k"])
def test_hill_curve_rejects_bad_parameters(args, match):
    with pytest.raises(ValueError, match=match):
        HillCurve(*args)


def test_exposure_fit_recovers_shape_better_than_daily_fit():
    err_exp, err_daily = [], []
    for seed in range(3):
        daily, pooled = make_daily(seed)
        fe = fit_curves(daily, pooled, None, "exposure")
        fd = fit_curves(daily, None, None, "daily")
        err_exp += [shape_error(fe, u) for u in TRUE]
        err_daily += [shape_error(fd, u) for u in TRUE]
        for u in TRUE:  # the scale reproduces the pooled window total
            s = daily[(daily.channel == u[0]) & (daily.campaign_type == u[1])].spend.to_numpy()
            assert fe[u].curve(s).sum() == pytest.approx(pooled[u], rel=1e-9)
    assert np.mean(err_exp) < 0.25
    assert np.mean(err_exp) < 0.5 * np.mean(err_daily)


def test_rollouts_fit_recovers_a_known_curve():
    daily, _ = make_daily(0)
    rows = []
    for u, c in TRUE.items():
        s = daily[(daily.channel == u[0]) & (daily.campaign_type == u[1])].spend.to_numpy()
        for m in (0, 0.25, 0.5, 0.75, 1, 1.5, 2, 3):
            rows.append({"channel": u[0], "campaign_type": u[1], "spend_multiple": m,
                         "daily_spend": m * s.mean(), "expected_conversions": c(m * s).mean()})
    fits = fit_curves(daily, None, pd.DataFrame(rows), "rollouts")
    for u, c in TRUE.items():
        assert fits[u].curve.k == pytest.approx(c.k, rel=1e-3)
        assert fits[u].curve.a == pytest.approx(c.a, rel=1e-3)
        assert fits[u].fit_r2 > 0.9999


def test_rollouts_fit_started_near_a_curve_recovers_the_same_curve():
    """``near`` (each draw's fit starts at the point fit) lands on the known curve, from a start off it."""
    daily, _ = make_daily(0)
    rows, near = [], {}
    for u, c in TRUE.items():
        s = daily[(daily.channel == u[0]) & (daily.campaign_type == u[1])].spend.to_numpy()
        for m in (0, 0.25, 0.5, 0.75, 1, 1.5, 2, 3):
            rows.append({"channel": u[0], "campaign_type": u[1], "spend_multiple": m,
                         "daily_spend": m * s.mean(), "expected_conversions": c(m * s).mean()})
        near[u] = HillCurve(c.beta * 1.3, c.k * 0.7, min(c.a * 1.2, 2.0))
    fits = fit_curves(daily, None, pd.DataFrame(rows), "rollouts", near=near)
    for u, c in TRUE.items():
        assert fits[u].curve.k == pytest.approx(c.k, rel=1e-3)
        assert fits[u].curve.a == pytest.approx(c.a, rel=1e-3)
        assert fits[u].curve.beta == pytest.approx(c.beta, rel=1e-3)


def test_short_flat_history_is_shrunk_toward_the_channel():
    daily, pooled = make_daily(1)
    u = ("google_ads", "search")
    rest = daily[(daily.channel != u[0]) | (daily.campaign_type != u[1])]
    few = daily[(daily.channel == u[0]) & (daily.campaign_type == u[1])].head(6).copy()
    few["spend"] = 800.0 * (1 + 0.01 * np.arange(6))  # cv ~ 0.02: no shape information
    few["exposure"] = [10, 300, 5, 290, 8, 310]  # junk the unit's own fit would chase
    fits = fit_curves(pd.concat([rest, few]), pooled, None, "exposure")
    sib = fits[("google_ads", "shopping")].curve
    assert fits[u].curve.a == pytest.approx(sib.a, abs=0.15)
    assert 0.5 <= fits[u].curve.a <= 2.0


@pytest.mark.parametrize(
    "method, points, drop, match",
    [("rollouts", None, None, r"response\.method=rollouts needs response_points\.csv"),
     ("magic", None, None, r"response\.method must be one of exposure, rollouts, daily"),
     ("exposure", None, "exposure", r"missing column\(s\) exposure"),
     ("daily", None, "attributed", r"missing column\(s\) attributed")],
    ids=["rollouts_without_points", "unknown_method", "no_exposure", "no_attributed"],
)
def test_fit_curves_input_errors(method, points, drop, match):
    daily, pooled = make_daily(0, 40)
    if drop:
        daily = daily.drop(columns=drop)
    with pytest.raises(InputError, match=match):
        fit_curves(daily, pooled, points, method)


def test_curves_frame_and_bootstrap():
    daily, pooled = make_daily(2, 60)
    fits = fit_curves(daily, pooled, None, "exposure")
    df = curves_frame(fits)
    assert list(df.columns) == ["channel", "campaign_type", "beta", "k", "a", "method", "fit_r2",
                                "n_days", "spend_min", "spend_max", "spend_mean", "spend_at_80pct"]
    assert len(df) == 3 and (df.n_days == 60).all() and (df.spend_min <= df.spend_max).all()
    boots = bootstrap_curves(daily, pooled, None, "exposure", n=3, seed=7)
    again = bootstrap_curves(daily, pooled, None, "exposure", n=3, seed=7)
    assert len(boots) == 3 and all(isinstance(b[u], FittedCurve) for b in boots for u in TRUE)
    assert [b[u].curve for b in boots for u in TRUE] == [b[u].curve for b in again for u in TRUE]
    assert len({b[("meta_ads", "")].curve.beta for b in boots}) == 3


def test_revenue_per_conversion_follows_the_conversions_a_unit_touched():
    from journeynet.planning.response import curves_frame
    from journeynet.planning.revenue import revenue_per_conversion

    ts = pd.Timestamp("2024-01-01")
    rows = []
    for i in range(40):  # search touches customers who buy for 200; social touches those who buy for 50
        unit, value = (("google_ads", "search"), 200.0) if i % 2 else (("meta_ads", "social"), 50.0)
        rows += [{"customer_id": i, "timestamp": ts, "channel": unit[0], "campaign_type": unit[1], "converted": 0,
                  "revenue": 0.0},
                 {"customer_id": i, "timestamp": ts + pd.Timedelta(hours=2), "channel": "direct", "campaign_type": "",
                  "converted": 1, "revenue": value}]
    rows.append({"customer_id": 99, "timestamp": ts + pd.Timedelta(days=1), "channel": "google_ads",
                 "campaign_type": "search", "converted": 0, "revenue": 0.0})  # touched after: no credit
    tp = pd.DataFrame(rows)
    units = {("google_ads", "search"), ("meta_ads", "social"), ("microsoft_ads", "search")}
    value = revenue_per_conversion(tp, units, prior_weight=10.0)
    mean = 125.0
    assert value[("google_ads", "search")] == pytest.approx((20 * 200 + 10 * mean) / 30)
    assert value[("meta_ads", "social")] == pytest.approx((20 * 50 + 10 * mean) / 30)
    assert value[("microsoft_ads", "search")] == pytest.approx(mean)  # no conversions: the overall mean
    assert revenue_per_conversion(tp.drop(columns="revenue"), units) is None
    fits = fit_curves(pd.DataFrame({"date": range(5), "channel": "google_ads", "campaign_type": "search",
                                    "spend": [1.0, 2, 3, 4, 5], "attributed": [1.0, 2, 2, 3, 3]}), None, None,
                      "daily")
    assert curves_frame(fits, value)["revenue_per_conversion"].iloc[0] == pytest.approx(
        value[("google_ads", "search")])


def _draw_inputs() -> tuple[pd.DataFrame, dict, pd.DataFrame, pd.DataFrame, int]:
    """make_daily's units with last-touch counts, an engine table (attributed = 1.1 x raw effect) and
    three draws whose rollouts at multiple 1 give effects 0.8, 1.0 and 1.2 times the point's."""
    daily, pooled = make_daily(0)
    n_days = int(daily["date"].nunique())
    daily["last_touch"] = daily["attributed"]
    raw = {u: v / 1.1 for u, v in pooled.items()}
    funnel = pd.DataFrame({"channel": [u[0] for u in raw], "campaign_type": [u[1] for u in raw],
                           "removal_effect": list(raw.values()),
                           "attributed_conversions": [1.1 * v for v in raw.values()]})
    rows = [{"draw": d, "channel": u[0], "campaign_type": u[1], "spend_multiple": m, "daily_spend": 0.0,
             "expected_conversions": f * raw[u] / n_days * m}
            for d, f in enumerate((0.8, 1.0, 1.2)) for u in raw for m in (0.0, 1.0, 2.0)]
    return daily, pooled, funnel, pd.DataFrame(rows), n_days


@pytest.mark.parametrize("method", ["exposure", "daily"])
def test_credit_based_draws_carry_each_draws_effect(method):
    """Exposure and daily curves fit on a unit's credit: each draw's credit moves with that draw's effect.

    Before, every draw reused the point's credit: identical curves and a plan interval of zero width.
    """
    from journeynet.net_free import response_draws, spread_credit

    daily, pooled, funnel, points, n_days = _draw_inputs()
    daily["attributed"] = spread_credit(daily, pooled)
    draws = response_draws(daily, pooled, points, method, funnel=funnel, n_days=n_days)
    for u in TRUE:
        rows = draws[(draws.channel == u[0]) & (draws.campaign_type == u[1])].sort_values("draw")
        s = daily[(daily.channel == u[0]) & (daily.campaign_type == u[1])].spend.to_numpy()
        totals = [HillCurve(b, k, a)(s).sum() for b, k, a in zip(rows.beta, rows.k, rows.a, strict=True)]
        # credit = point credit + 1.1 x (draw effect - mean effect) = pooled x (1 +- 0.2)
        if method == "exposure":  # the exposure fit reproduces a unit's credit over the window exactly
            np.testing.assert_allclose(totals, [0.8 * pooled[u], pooled[u], 1.2 * pooled[u]], rtol=1e-6)
        else:
            assert totals[0] < totals[1] < totals[2]


def test_credit_based_draws_need_the_rollout_at_multiple_one():
    from journeynet.net_free import MULTIPLE_ONE, response_draws
    from journeynet.preflight import SettingError

    daily, pooled, funnel, points, n_days = _draw_inputs()
    with pytest.raises(SettingError, match="response.spend_multiples must include 1"):
        response_draws(daily, pooled, points[points.spend_multiple != 1.0], "exposure", funnel=funnel, n_days=n_days)
    assert "exposure or daily" in MULTIPLE_ONE
