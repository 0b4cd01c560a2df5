"""Saturating response curves per paid (channel, campaign_type) unit.

A unit's daily incremental conversions at daily spend ``s`` follow a Hill curve
``beta * s**a / (s**a + k**a)``. Three ways to fit it (``response.method``):

* ``exposure`` (robust default): the shape ``(k, a)`` comes from how the unit's
  daily exposure grows with its spend (exposure is counted, not attributed, so
  it is far less noisy); the scale ``beta`` comes from the unit's incremental
  conversions pooled over the whole window.
* ``rollouts``: least squares on the journey model's rollouts at scaled spend.
* ``daily``: the naive direct fit to per-day attributed conversions.

Quickstart
----------
>>> import numpy as np, pandas as pd
>>> from journeynet.planning.response import HillCurve, fit_curves
>>> rng = np.random.default_rng(0)
>>> s = rng.uniform(200, 2000, 60)
>>> daily = pd.DataFrame({"date": np.arange(60), "channel": "google_ads",
...     "campaign_type": "search", "spend": s,
...     "exposure": rng.poisson(HillCurve(900.0, 800.0, 1.0)(s)), "attributed": 1.0})
>>> fits = fit_curves(daily, {("google_ads", "search"): 600.0}, None, "exposure")
>>> 0.4 < fits[("google_ads", "search")].curve.a < 2.0
True
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from journeynet.errors import InputError
from journeynet.progress import progress

log = logging.getLogger(__name__)

Unit = tuple[str, str]
METHODS = ("exposure", "rollouts", "daily")
_DAILY_COLUMNS = ("date", "channel", "campaign_type", "spend")
_POINT_COLUMNS = ("channel", "campaign_type", "spend_multiple", "expected_conversions")
# Prior spread of a unit's shape around its channel's: k within about x/÷ 1.6, a within +-0.25.
PRIOR_SD_LOG_K = 0.5
PRIOR_SD_A = 0.25


def hill_value(s: np.ndarray, beta: np.ndarray, k: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Vectorized Hill value ``beta * s**a / (s**a + k**a)`` (negative spend counts as 0)."""
    r = (np.maximum(s, 0.0) / k) ** a
    return beta * r / (1.0 + r)


def hill_derivative(
    s: np.ndarray, beta: np.ndarray, k: np.ndarray, a: np.ndarray
) -> np.ndarray:
    """Vectorized derivative of :func:`hill_value` with respect to ``s``.

    Spend is clipped to ``1e-9 * k`` so the derivative stays finite at 0 when
    ``a < 1`` (where the true slope is infinite).
    """
    s = np.maximum(s, 1e-9 * k)
    r = (s / k) ** a
    return beta * a * r / (s * (1.0 + r) ** 2)


def hill_second_derivative(
    s: np.ndarray, beta: np.ndarray, k: np.ndarray, a: np.ndarray
) -> np.ndarray:
    """Vectorized second derivative of :func:`hill_value` (spend clipped as in the first)."""
    s = np.maximum(s, 1e-9 * k)
    r = (s / k) ** a
    return beta * a * r * ((a - 1.0) - (a + 1.0) * r) / (s**2 * (1.0 + r) ** 3)


@dataclass(frozen=True)
class HillCurve:
    """Daily incremental conversions ``beta * s**a / (s**a + k**a)`` at daily spend ``s``.

    Parameters
    ----------
    beta : float
        Ceiling: conversions per day at infinite spend (>= 0).
    k : float
        Half-saturation daily spend (> 0).
    a : float
        Exponent (> 0); ``a <= 1`` is concave, ``a > 1`` S-shaped.
    """

    beta: float
    k: float
    a: float

    def __post_init__(self) -> None:
        for name, val, ok in (
            ("beta", self.beta, self.beta >= 0),
            ("k", self.k, self.k > 0),
            ("a", self.a, self.a > 0),
        ):
            if not (np.isfinite(val) and ok):
                need = ">= 0" if name == "beta" else "> 0"
                raise ValueError(f"HillCurve.{name} must be finite and {need}, got {val}")

    def __call__(self, s: float | np.ndarray) -> float | np.ndarray:
        """Daily incremental conversions at daily spend ``s``."""
        out = hill_value(np.asarray(s, dtype=float), self.beta, self.k, self.a)
        return float(out) if np.ndim(out) == 0 else out

    def derivative(self, s: float | np.ndarray) -> float | np.ndarray:
        """Marginal conversions per extra unit of daily spend at ``s``."""
        out = hill_derivative(np.asarray(s, dtype=float), self.beta, self.k, self.a)
        return float(out) if np.ndim(out) == 0 else out

    def spend_at_fraction(self, f: float) -> float:
        """Daily spend at which the curve reaches fraction ``f`` (0 < f < 1) of ``beta``."""
        if not 0.0 < f < 1.0:
            raise ValueError(f"fraction must be in (0, 1), got {f}")
        return float(self.k * (f / (1.0 - f)) ** (1.0 / self.a))


@dataclass(frozen=True)
class FittedCurve:
    """A fitted curve and what it was fitted on.

    ``fit_r2`` is the R^2 of the fitted target: exposure for ``exposure``, the
    rollout points for ``rollouts``, per-day conversions for ``daily``.
    """

    curve: HillCurve
    method: str
    fit_r2: float
    n_days: int
    spend_min: float
    spend_max: float
    spend_mean: float


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    ss = float(np.sum((y - y.mean()) ** 2))
    return float(1.0 - np.sum((y - pred) ** 2) / ss) if ss > 0 else float("nan")


def _best_lsq(resid, starts: list[np.ndarray], lb: np.ndarray, ub: np.ndarray,
              full: bool = False, jac="2-point"):
    """Bounded least squares from several starts (the Hill loss is not convex); keep the best."""
    best = None
    for x0 in starts:
        res = least_squares(resid, np.clip(x0, lb, ub), jac=jac, bounds=(lb, ub), method="trf")
        if best is None or res.cost < best.cost:
            best = res
    return best if full else best.x


def _param_var(res) -> np.ndarray:
    """Gauss-Newton variances of the parameters: ``s^2 diag((J'J)^-1)``."""
    n, m = res.jac.shape
    s2 = 2.0 * res.cost / max(n - m, 1)
    return s2 * np.diag(np.linalg.pinv(res.jac.T @ res.jac))


def fit_shape(s: np.ndarray, e: np.ndarray) -> tuple[float, float, float, float, float]:
    """Fit ``e ≈ E_max * s**a / (s**a + k**a)`` with k in [0.1, 10] x mean spend, a in [0.5, 2].

    Residuals are on the square-root scale, which stabilises Poisson count noise.

    Returns
    -------
    tuple of float
        ``(k, a, r2, var_log_k, var_a)``: r2 on the raw exposure scale, and the
        Gauss-Newton variances of ``log k`` and ``a`` (how much the data pin them).
    """
    m = float(s[s > 0].mean())
    top = max(float(e.max()), 1e-9)
    lb = np.array([np.log(top * 0.5), np.log(0.1 * m), 0.5])
    ub = np.array([np.log(top * 1e4), np.log(10.0 * m), 2.0])

    def resid(p: np.ndarray) -> np.ndarray:
        return np.sqrt(hill_value(s, np.exp(p[0]), np.exp(p[1]), p[2])) - np.sqrt(e)

    starts = [np.array([np.log(top * f), np.log(m * g), a]) for f, g, a in
              ((2.0, 1.0, 1.0), (1.2, 0.5, 1.5), (5.0, 3.0, 0.7))]
    res = _best_lsq(resid, starts, lb, ub, full=True)
    p, var = res.x, _param_var(res)
    r2 = _r2(e, hill_value(s, np.exp(p[0]), np.exp(p[1]), p[2]))
    return float(np.exp(p[1])), float(p[2]), r2, float(var[1]), float(var[2])


def _blend(own: tuple, prior: tuple[float, float], w_rule: float) -> tuple[float, float]:
    """Precision-weighted blend of ``(log k, a)`` with the prior, capped by the evidence rule."""
    logk, a, _, var_k, var_a = own
    wk = w_rule * PRIOR_SD_LOG_K**2 / (PRIOR_SD_LOG_K**2 + var_k)
    wa = w_rule * PRIOR_SD_A**2 / (PRIOR_SD_A**2 + var_a)
    return wk * logk + (1.0 - wk) * np.log(prior[0]), wa * a + (1.0 - wa) * prior[1]


def _evidence(s: np.ndarray, min_days: int, min_cv: float) -> float:
    """Shrinkage weight in [0, 1]: ``min(1, n_days/min_days) * min(1, cv/min_cv)``."""
    pos = s[s > 0]
    if len(pos) < 3:
        return 0.0
    cv = float(pos.std() / pos.mean())
    return min(1.0, len(pos) / min_days) * min(1.0, cv / min_cv)


def _spend_stats(s: np.ndarray) -> dict:
    pos = s[s > 0]
    return {"n_days": len(s), "spend_min": float(pos.min()) if len(pos) else 0.0,
            "spend_max": float(s.max()) if len(s) else 0.0,
            "spend_mean": float(pos.mean()) if len(pos) else 0.0}


def _channel_priors(
    groups: dict[Unit, pd.DataFrame], min_days: int, min_cv: float
) -> dict[str, tuple[float, float]]:
    """Pooled relative shape ``(k / mean spend, a)`` per channel, shrunk to the global (1, 1)."""
    out: dict[str, tuple[float, float]] = {}
    for ch in sorted({u[0] for u in groups}):
        s_rel, e_rel = [], []
        for u, g in groups.items():
            s, e = g["spend"].to_numpy(float), g["exposure"].to_numpy(float)
            if u[0] == ch and (s > 0).sum() >= 3 and e.sum() > 0:
                s_rel.append(s / s[s > 0].mean())
                e_rel.append(e / e[s > 0].mean())
        if not s_rel:
            out[ch] = (1.0, 1.0)
            continue
        s_all, e_all = np.concatenate(s_rel), np.concatenate(e_rel)
        k_rel, *rest = fit_shape(s_all, e_all)
        logk, a = _blend((np.log(k_rel), *rest), (1.0, 1.0), _evidence(s_all, min_days, min_cv))
        out[ch] = (float(np.exp(logk)), float(a))
    return out


def _fit_exposure(
    u: Unit, g: pd.DataFrame, total: float, prior: tuple[float, float], min_days: int, min_cv: float
) -> FittedCurve:
    s = g["spend"].to_numpy(float)
    e = g["exposure"].to_numpy(float)
    stats = _spend_stats(s)
    if stats["spend_mean"] <= 0:
        raise InputError(f"spend: {u[0]}/{u[1]} has no day with positive spend; cannot fit a curve")
    k, a, r2 = prior[0] * stats["spend_mean"], prior[1], float("nan")
    if (s > 0).sum() >= 3 and np.isfinite(e).all() and e.sum() > 0:
        k_own, a_own, r2, var_k, var_a = fit_shape(s, e)
        logk, a = _blend((np.log(k_own), a_own, r2, var_k, var_a), (k, a),
                         _evidence(s, min_days, min_cv))
        k, a = float(np.exp(logk)), float(a)
    denom = float(hill_value(s, 1.0, k, a).sum())
    beta = max(total, 0.0) / denom if denom > 0 else 0.0
    return FittedCurve(HillCurve(beta, k, a), "exposure", r2, **stats)


def _fit_rollouts(g: pd.DataFrame, pts: pd.DataFrame, near: HillCurve | None = None) -> FittedCurve:
    s = g["spend"].to_numpy(float)
    stats = _spend_stats(s)
    m = pts["spend_multiple"].to_numpy(float)
    y = pts["expected_conversions"].to_numpy(float)
    mean = stats["spend_mean"]
    top = max(float(y.max()), 1e-9)
    lb = np.array([0.0, np.log(0.1 * mean), 0.5])
    ub = np.array([top * 1e4, np.log(10.0 * mean), 2.0])
    grid = m[:, None] * s[None, :]  # (J, D): spend at multiple j on day d

    pos = grid > 0
    log_grid = np.log(np.where(pos, grid, 1.0))

    def resid(p: np.ndarray) -> np.ndarray:
        return hill_value(grid, p[0], np.exp(p[1]), p[2]).mean(axis=1) - y

    def jac(p: np.ndarray) -> np.ndarray:
        # exact: a forward-difference Jacobian cost three more passes over the grid per step
        # and most of the time of the per-draw curves (response_draws.csv)
        r = np.where(pos, np.exp(p[2] * (log_grid - p[1])), 0.0)  # (s / k) ** a
        sat = r / (1.0 + r)
        slope = p[0] * r / (1.0 + r) ** 2  # d value / d log r
        return np.stack([sat.mean(1), (-p[2] * slope).mean(1),
                         (slope * np.where(pos, log_grid - p[1], 0.0)).mean(1)], axis=1)

    if near is not None:
        starts = [np.array([near.beta, np.log(max(near.k, 1e-12)), near.a])]
    else:
        starts = [np.array([top * f, np.log(mean * q), a]) for f, q, a in
                  ((1.5, 1.0, 1.0), (1.2, 0.5, 1.5), (4.0, 3.0, 0.7))]
    p = _best_lsq(resid, starts, lb, ub, jac=jac)
    r2 = _r2(y, resid(p) + y)
    return FittedCurve(HillCurve(float(p[0]), float(np.exp(p[1])), float(p[2])), "rollouts", r2,
                       **stats)


def _fit_daily(g: pd.DataFrame) -> FittedCurve:
    s = g["spend"].to_numpy(float)
    y = g["attributed"].to_numpy(float)
    stats = _spend_stats(s)
    mean, top = stats["spend_mean"], max(float(y.max()), 1e-9)
    lb = np.array([0.0, np.log(1e-3 * mean), 0.3])
    ub = np.array([top * 1e4, np.log(100.0 * max(stats["spend_max"], 1e-9)), 3.0])

    def resid(p: np.ndarray) -> np.ndarray:
        return hill_value(s, p[0], np.exp(p[1]), p[2]) - y

    starts = [np.array([top * f, np.log(mean * q), a]) for f, q, a in
              ((1.5, 1.0, 1.0), (1.2, 0.5, 1.5), (4.0, 3.0, 0.7))]
    p = _best_lsq(resid, starts, lb, ub)
    r2 = _r2(y, resid(p) + y)
    return FittedCurve(HillCurve(float(p[0]), float(np.exp(p[1])), float(p[2])), "daily", r2,
                       **stats)


def _as_pooled(pooled: pd.Series | Mapping | None) -> dict[Unit, float]:
    if pooled is None:
        return {}
    items = pooled.items() if isinstance(pooled, pd.Series | Mapping) else []
    return {(str(c), "" if pd.isna(t) else str(t)): float(v) for (c, t), v in items}


def _check_columns(df: pd.DataFrame, cols: tuple[str, ...] | list[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InputError(f"{what}: missing column(s) {', '.join(missing)}")


def _normalise(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out["channel"] = out["channel"].astype(str)
    out["campaign_type"] = out["campaign_type"].fillna("").astype(str)
    return out


def fit_curves(
    daily: pd.DataFrame,
    pooled: pd.Series | Mapping[Unit, float] | None,
    points: pd.DataFrame | None,
    method: str,
    *,
    min_days: int = 30,
    min_cv: float = 0.1,
    near: Mapping[Unit, HillCurve] | None = None,
) -> dict[Unit, FittedCurve]:
    """Fit one Hill curve per paid (channel, campaign_type) unit in ``daily``.

    Parameters
    ----------
    daily : pandas.DataFrame
        Columns ``date, channel, campaign_type, spend`` plus ``exposure``
        (method ``exposure``) or ``attributed`` (method ``daily``).
    pooled : pandas.Series or Mapping or None
        Unit -> incremental conversions over the whole window (method ``exposure``).
    points : pandas.DataFrame or None
        ``response_points.csv`` rows (method ``rollouts``).
    method : {"exposure", "rollouts", "daily"}
        Fitting method.
    min_days, min_cv : int, float
        Shrinkage thresholds. For ``exposure`` the unit's own ``(log k, a)`` is
        blended with its channel's pooled shape (fitted on spend and exposure
        relative to each unit's mean, itself blended the same way with the global
        prior ``k = mean spend, a = 1``). The weight on the unit's own estimate is
        ``w_rule * tau**2 / (tau**2 + var)``, per parameter, where
        ``w_rule = min(1, n_days / min_days) * min(1, cv / min_cv)`` (``n_days``
        counts days with positive spend, ``cv`` is their spend's coefficient of
        variation), ``var`` is the fit's Gauss-Newton variance of that parameter
        and ``tau`` the prior spread (``PRIOR_SD_LOG_K = 0.5``, ``PRIOR_SD_A =
        0.25``): ``log k = w log k_unit + (1 - w) log k_channel``, likewise ``a``.
        A unit with few days, flat spend or a shape its data do not pin down
        leans on its channel; a well-measured unit keeps its own shape.
    near : Mapping or None
        Method ``rollouts``: a unit's fit starts from this curve alone instead of
        three generic starts (a draw of the engine starts from the point fit's
        curve: the same curves at a third of the cost, bench/RESULTS.md).

    Returns
    -------
    dict
        ``(channel, campaign_type) -> FittedCurve``.
    """
    if method not in METHODS:
        raise InputError(f"response.method must be one of {', '.join(METHODS)}, got {method!r}")
    need = {"exposure": ["exposure"], "daily": ["attributed"], "rollouts": []}[method]
    _check_columns(daily, list(_DAILY_COLUMNS) + need, "daily spend frame")
    groups = {(c, t): g for (c, t), g in _normalise(daily).groupby(["channel", "campaign_type"])}
    if method == "rollouts":
        if points is None or len(points) == 0:
            raise InputError("response.method=rollouts needs response_points.csv, which this run lacks")
        _check_columns(points, _POINT_COLUMNS, "response_points.csv")
        pts = dict(tuple(_normalise(points).groupby(["channel", "campaign_type"])))
        missing = sorted(set(groups) - set(pts))
        if missing:
            raise InputError(f"response_points.csv: no rollouts for {missing[0][0]}/{missing[0][1]}")
        near = near or {}
        return {u: _fit_rollouts(g, pts[u], near.get(u)) for u, g in groups.items()}
    if method == "daily":
        return {u: _fit_daily(g) for u, g in groups.items()}
    totals = _as_pooled(pooled)
    priors = _channel_priors(groups, min_days, min_cv)
    out = {}
    for u, g in groups.items():
        if u not in totals:
            log.warning("no pooled conversions for %s/%s; its curve is flat (beta=0)", *u)
        out[u] = _fit_exposure(u, g, totals.get(u, 0.0), priors[u[0]], min_days, min_cv)
    return out


def curves_frame(fits: Mapping[Unit, FittedCurve], revenue: Mapping[Unit, float] | None = None) -> pd.DataFrame:
    """Tidy table of fitted curves, one row per unit (``response_curves.csv``).

    ``revenue`` (revenue per conversion per unit, see :mod:`journeynet.planning.revenue`)
    adds a ``revenue_per_conversion`` column, which ``budget.objective=revenue`` needs.
    """
    cols = ["channel", "campaign_type", "beta", "k", "a", "method", "fit_r2", "n_days",
            "spend_min", "spend_max", "spend_mean", "spend_at_80pct"]
    rows = [{"channel": u[0], "campaign_type": u[1], "beta": f.curve.beta, "k": f.curve.k,
             "a": f.curve.a, "method": f.method, "fit_r2": f.fit_r2, "n_days": f.n_days,
             "spend_min": f.spend_min, "spend_max": f.spend_max, "spend_mean": f.spend_mean,
             "spend_at_80pct": f.curve.spend_at_fraction(0.8)} for u, f in sorted(fits.items())]
    if revenue is not None:
        cols.append("revenue_per_conversion")
        for r in rows:
            r["revenue_per_conversion"] = float(revenue.get((r["channel"], r["campaign_type"]), float("nan")))
    return pd.DataFrame(rows, columns=cols)


def bootstrap_curves(
    daily: pd.DataFrame,
    pooled: pd.Series | Mapping[Unit, float] | list | None,
    points: pd.DataFrame | None,
    method: str,
    n: int,
    seed: int,
) -> list[dict[Unit, FittedCurve]]:
    """Refit the curves on ``n`` resamples of the days (with replacement).

    All units share the resampled dates, so cross-unit correlation is kept.
    ``pooled`` may be a list of ``n`` mappings (one per journey resample); a
    single mapping is rescaled per replicate by the resampled share of the
    per-day ``attributed`` credit when that column is present.
    """
    rng = np.random.default_rng(seed)
    daily = _normalise(daily)
    dates = np.asarray(pd.unique(daily["date"]))
    by_date = {d: g for d, g in daily.groupby("date")}
    base = _as_pooled(pooled) if not isinstance(pooled, list) else {}
    attr = daily.groupby(["channel", "campaign_type"])["attributed"].sum() \
        if "attributed" in daily.columns else None
    out = []
    for b in progress(range(n), desc="bootstrap refits"):
        pick = rng.choice(dates, size=len(dates), replace=True)
        # renumber dates so duplicated days stay distinct rows
        sample = pd.concat([by_date[d].assign(date=i) for i, d in enumerate(pick)],
                           ignore_index=True)
        pooled_b = pooled[b] if isinstance(pooled, list) else base
        if not isinstance(pooled, list) and attr is not None and method == "exposure":
            attr_b = sample.groupby(["channel", "campaign_type"])["attributed"].sum()
            pooled_b = {u: v * float(attr_b.get(u, 0.0)) / float(attr[u])
                        if attr.get(u, 0.0) > 0 else v for u, v in base.items()}
        out.append(fit_curves(sample, pooled_b, points, method))
    return out
