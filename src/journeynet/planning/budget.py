"""Budget allocation across paid (channel, campaign_type) units.

Maximises expected conversions over the horizon, ``H * sum_i Hill_i(x_i / H)``,
subject to: spends sum to the total; each unit within its bounds (campaign
floor, named bounds, ``max_change``, extrapolation cap); each channel within
its bounds (channel floor, named bounds). Projected gradient ascent with an
exact projection onto that polytope (see :func:`project` and :func:`_ascend`).

Quickstart
----------
>>> from journeynet.planning.response import HillCurve
>>> from journeynet.planning.budget import BudgetProblem, allocate_budget
>>> curves = {("google_ads", "search"): HillCurve(100.0, 2000.0, 0.8),
...           ("meta_ads", ""): HillCurve(60.0, 1500.0, 1.2)}
>>> res = allocate_budget(BudgetProblem(curves, total=100_000.0))
>>> round(sum(res.allocation.values()), 2)
100000.0
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from journeynet.errors import InfeasibleError, JourneynetError
from journeynet.planning.polytope import Box as _Box
from journeynet.planning.polytope import project, round_cents
from journeynet.planning.response import HillCurve, hill_derivative, hill_second_derivative, hill_value

log = logging.getLogger(__name__)
Unit = tuple[str, str]


class OptimizationError(JourneynetError):
    """The optimizer stopped before its KKT residual reached the tolerance."""


def _name(u: Unit) -> str:
    return f"{u[0]}/{u[1]}"


@dataclass(frozen=True)
class BudgetProblem:
    """A budget allocation problem that validates itself on construction.

    Parameters
    ----------
    curves : Mapping
        ``(channel, campaign_type) -> HillCurve`` (daily curves) for every paid unit.
    total : float
        Budget over the horizon.
    horizon_days : int
        Days the budget is spent over, evenly per day.
    min_channel_share, min_campaign_share : float
        Floors as shares of ``total`` for each channel and each unit.
    bounds : Mapping or None
        ``"channel"`` or ``"channel/campaign_type"`` -> ``(low, high)`` amounts
        over the horizon; equal ends lock the amount.
    current : Mapping or None
        Current spend per unit over the horizon.
    max_change : float or None
        Each unit stays within ``[(1 - mc) * current, (1 + mc) * current]``.
    max_daily_spend : Mapping or None
        Extrapolation cap per unit (daily); a cap below a floor yields to the floor.

    Raises
    ------
    ValueError
        A field is malformed (the message names it).
    InfeasibleError
        The constraints cannot all hold (one line naming the constraint).
    """

    curves: Mapping[Unit, HillCurve]
    total: float
    horizon_days: int = 30
    min_channel_share: float = 0.10
    min_campaign_share: float = 0.005
    bounds: Mapping[str, tuple[float, float]] | None = None
    current: Mapping[Unit, float] | None = None
    max_change: float | None = None
    max_daily_spend: Mapping[Unit, float] | None = None
    box: _Box = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._check_fields()
        object.__setattr__(self, "box", _build_box(self))

    def _check_fields(self) -> None:
        if not self.curves:
            raise ValueError("budget: curves is empty; there is no paid unit to allocate to")
        for u, c in self.curves.items():
            if not (isinstance(u, tuple) and len(u) == 2 and isinstance(c, HillCurve)):
                raise ValueError(f"curves must map (channel, campaign_type) to HillCurve, got {u!r}")
        if not (np.isfinite(self.total) and self.total >= 0):
            raise ValueError(f"budget.total must be a finite amount >= 0, got {self.total}")
        if int(self.horizon_days) != self.horizon_days or self.horizon_days < 1:
            raise ValueError(f"budget.horizon_days must be an integer >= 1, got {self.horizon_days}")
        for name in ("min_channel_share", "min_campaign_share"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"budget.{name} must be in [0, 1], got {v}")
        if self.max_change is not None and not self.max_change >= 0:
            raise ValueError(f"budget.max_change must be >= 0 or null, got {self.max_change}")
        known = {u[0] for u in self.curves} | {_name(u) for u in self.curves}
        for key, (lo, hi) in (self.bounds or {}).items():
            if key not in known:
                raise ValueError(f"budget.bounds: unknown channel or campaign {key!r}; "
                                 f"known: {', '.join(sorted(known))}")
            if not (0 <= lo <= hi):
                raise ValueError(f"budget.bounds[{key!r}] must satisfy 0 <= low <= high, "
                                 f"got ({lo}, {hi})")
        for fname in ("current", "max_daily_spend"):
            for u, v in (getattr(self, fname) or {}).items():
                if u not in self.curves:
                    raise ValueError(f"{fname}: unknown unit {u!r}")
                if not (np.isfinite(v) and v >= 0):
                    raise ValueError(f"{fname}[{_name(u)}] must be a finite amount >= 0, got {v}")
        if self.max_change is not None and not self.current:
            raise ValueError("budget.max_change needs the current spend per unit")

    @property
    def units(self) -> list[Unit]:
        """Units in the fixed (sorted) order used by the arrays."""
        return self.box.units

    def params(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Curve parameters ``(beta, k, a)`` as arrays in :attr:`units` order."""
        cs = [self.curves[u] for u in self.units]
        return (np.array([c.beta for c in cs]), np.array([c.k for c in cs]),
                np.array([c.a for c in cs]))


def _tighten(lo, hi, lsrc, hsrc, i, low, high, name) -> None:
    if low > lo[i]:
        lo[i], lsrc[i] = low, name
    if high < hi[i]:
        hi[i], hsrc[i] = high, name


def _build_box(p: BudgetProblem) -> _Box:
    units = sorted(p.curves)
    chans = sorted({u[0] for u in units})
    n, C, T = len(units), len(chans), float(p.total)
    pc, pu = p.min_channel_share, p.min_campaign_share
    if C * pc > 1 + 1e-12:
        raise InfeasibleError(f"infeasible: budget.min_channel_share={pc:g} x {C} paid channels "
                              f"= {C * pc:g} of budget.total > 1")
    if n * pu > 1 + 1e-12:
        raise InfeasibleError(f"infeasible: budget.min_campaign_share={pu:g} x {n} campaigns "
                              f"= {n * pu:g} of budget.total > 1")
    b = _Box(units, chans, np.array([chans.index(u[0]) for u in units]),
             np.full(n, pu * T), np.full(n, T), np.full(C, pc * T), np.full(C, T),
             ["budget.min_campaign_share"] * n, ["budget.total"] * n,
             ["budget.min_channel_share"] * C, ["budget.total"] * C)
    index = {_name(u): i for i, u in enumerate(units)}
    for key, (low, high) in (p.bounds or {}).items():
        src = f"budget.bounds[{key!r}]"
        if key in index:
            _tighten(b.lo, b.hi, b.lo_src, b.hi_src, index[key], low, high, src)
        else:
            _tighten(b.ch_lo, b.ch_hi, b.ch_lo_src, b.ch_hi_src, chans.index(key), low, high, src)
    if p.max_change is not None:
        for i, u in enumerate(units):
            cur = float(p.current.get(u, 0.0))
            _tighten(b.lo, b.hi, b.lo_src, b.hi_src, i, (1 - p.max_change) * cur,
                     (1 + p.max_change) * cur, "budget.max_change")
    for i, u in enumerate(units):
        if b.lo[i] > b.hi[i] + 1e-9:
            raise InfeasibleError(f"infeasible: {_name(u)} floor {b.lo[i]:,.2f} ({b.lo_src[i]}) "
                                  f"exceeds its cap {b.hi[i]:,.2f} ({b.hi_src[i]})")
    _apply_caps(p, b)
    _check_sums(b, T)
    return b


def _apply_caps(p: BudgetProblem, b: _Box) -> None:
    """Extrapolation caps: soft, so they yield (with a warning) to any floor they break."""
    if not p.max_daily_spend:
        return
    cap = np.array([p.max_daily_spend.get(u, np.inf) * p.horizon_days for u in b.units])
    hard = b.hi.copy()
    for i in np.flatnonzero(cap < b.lo):
        warnings.warn(f"extrapolation cap for {_name(b.units[i])} ({cap[i]:,.2f}) is below its "
                      f"floor {b.lo[i]:,.2f}; the floor wins", stacklevel=4)
    capped = np.maximum(np.minimum(b.hi, cap), b.lo)
    for c in range(len(b.channels)):
        m = b.ch == c
        if capped[m].sum() < b.ch_lo[c] <= hard[m].sum():
            warnings.warn(f"extrapolation caps in channel {b.channels[c]} sum below its floor "
                          f"{b.ch_lo[c]:,.2f}; the floor wins, caps lifted there", stacklevel=4)
            capped[m] = hard[m]
    room = np.minimum(np.bincount(b.ch, capped, len(b.channels)), b.ch_hi).sum()
    if room < p.total:
        warnings.warn(f"extrapolation caps sum to {room:,.2f} < budget.total={p.total:,.2f}; "
                      "caps lifted", stacklevel=4)
        capped = hard
    for i in np.flatnonzero(capped < b.hi):
        b.hi[i], b.hi_src[i] = capped[i], "budget.max_extrapolation"


def _check_sums(b: _Box, T: float) -> None:
    C = len(b.channels)
    sum_lo, sum_hi = np.bincount(b.ch, b.lo, C), np.bincount(b.ch, b.hi, C)
    eps = 1e-9 * max(T, 1.0)
    for c, ch in enumerate(b.channels):
        if b.ch_lo[c] > b.ch_hi[c] + eps:
            raise InfeasibleError(f"infeasible: channel {ch} floor {b.ch_lo[c]:,.2f} "
                                  f"({b.ch_lo_src[c]}) exceeds its cap {b.ch_hi[c]:,.2f} "
                                  f"({b.ch_hi_src[c]})")
        if sum_lo[c] > b.ch_hi[c] + eps:
            raise InfeasibleError(f"infeasible: campaign floors in channel {ch} sum to "
                                  f"{sum_lo[c]:,.2f} > its cap {b.ch_hi[c]:,.2f} ({b.ch_hi_src[c]})")
        if sum_hi[c] < b.ch_lo[c] - eps:
            raise InfeasibleError(f"infeasible: campaign caps in channel {ch} sum to "
                                  f"{sum_hi[c]:,.2f} < its floor {b.ch_lo[c]:,.2f} "
                                  f"({b.ch_lo_src[c]})")
    need = np.maximum(b.ch_lo, sum_lo).sum()
    room = np.minimum(b.ch_hi, sum_hi).sum()
    if need > T + eps:
        raise InfeasibleError(f"infeasible: channel and campaign floors and locked amounts sum to "
                              f"{need:,.2f} > budget.total={T:,.2f}")
    if room < T - eps:
        raise InfeasibleError(f"infeasible: budget.bounds caps sum to {room:,.2f} < "
                              f"budget.total={T:,.2f}")
    # a plan is paid in cents: every positive floor costs at least one
    unit_cents = np.bincount(b.ch, np.ceil(np.round(b.lo * 100, 6)), C)
    cents = np.maximum(np.ceil(np.round(b.ch_lo * 100, 6)), unit_cents).sum()
    if cents > round(T * 100):
        raise InfeasibleError(f"infeasible: channel and campaign floors rounded up to whole cents sum to "
                              f"{cents / 100:,.2f} > budget.total={T:,.2f}")


@dataclass(frozen=True)
class AllocationResult:
    """Outcome of :func:`allocate_budget`, shaped like scipy's ``OptimizeResult``.

    ``allocation`` is in cents and sums to the total exactly; conversions are
    over the horizon; ``kkt_residual`` is ``max|P(x + g) - x| / total`` at the
    unrounded optimum, with the gradient scaled so its largest entry is ``total``.
    """

    allocation: dict[Unit, float]
    expected_conversions: float
    per_unit_conversions: dict[Unit, float]
    success: bool
    n_iter: int
    message: str
    kkt_residual: float


def _value(x: np.ndarray, prm: tuple, horizon: int) -> np.ndarray:
    return horizon * hill_value(x / horizon, *prm)


def _ascend(x: np.ndarray, p: BudgetProblem, prm: tuple, scale: float, tol: float,
            max_iter: int) -> tuple[np.ndarray, int, float, str]:
    """Diagonally scaled projected gradient ascent with Armijo backtracking.

    The step is ``P_W(x + W g) - x`` with ``W = 1 / |F''|`` (a projected Newton
    step for this separable objective, projected exactly in the metric ``W^-1``):
    plain Euclidean steps need thousands of iterations when curvatures differ
    by orders of magnitude across campaigns, as they do in practice.
    """
    H, T = p.horizon_days, float(p.total)
    F = _value(x, prm, H)
    res, last_step, hist = np.inf, np.inf, []
    for it in range(1, max_iter + 1):
        g = hill_derivative(x / H, *prm) * scale  # scaled so gradient steps are in currency
        # the residual costs a projection: measure it once steps get small (and every 10th)
        if last_step <= 1e-4 * T or it % 10 == 1:
            res = float(np.max(np.abs(project(x + g, p.box, T) - x))) / max(T, 1e-12)
            if res <= tol:
                return x, it - 1, res, "converged"
        curv = np.abs(hill_second_derivative(x / H, *prm)) * scale / H
        w = 1.0 / np.maximum(curv, 1e-9 * max(float(curv.max()), 1e-300))
        d = project(x + w * g, p.box, T, w) - x
        gd, theta = float(g @ d), 1.0
        while True:
            xn = x + theta * d
            Fn = _value(xn, prm, H)
            gain = float((Fn - F).sum())  # per-unit differences: less cancellation
            # near the optimum the gain drowns in rounding; then accept while still uphill
            flat = abs(gain) <= 1e-13 * float(np.abs(F).sum()) and float(
                hill_derivative(xn / H, *prm) @ d) >= 0
            if gain >= 1e-4 * theta * gd / scale or flat or theta < 1e-12:
                break
            theta *= 0.5
        if theta < 1e-12:
            return x, it, res, "line search stalled"
        last_step = float(np.max(np.abs(xn - x)))
        x, F = xn, Fn
        hist.append(float(F.sum()))
        # a start that stops improving (e.g. wedged on an S-curve's knee) is abandoned early;
        # another start, or a loud OptimizationError, decides
        if len(hist) > 50 and hist[-1] - hist[-51] <= 1e-13 * abs(hist[-1]):
            return x, it, res, "stalled"
    return x, max_iter, res, f"max_iter={max_iter} reached"


def _greedy_start(p: BudgetProblem, prm: tuple, steps: int = 100) -> np.ndarray:
    """Floors, then the rest in chunks to the best *average* gain (gets past S-curve knees)."""
    b, H = p.box, p.horizon_days
    x = b.lo.copy()
    chunk = max(float(p.total) - x.sum(), 0.0) / steps
    for _ in range(steps if chunk > 0 else 0):
        step = np.minimum(chunk, b.hi - x)
        gain = _value(x + step, prm, H) - _value(x, prm, H)
        gain[step <= 0] = -np.inf
        i = int(np.argmax(gain))
        x[i] += step[i]
    return x


def _starts(p: BudgetProblem, prm: tuple) -> list[np.ndarray]:
    n, T = len(p.units), float(p.total)
    starts = [np.full(n, T / n)]
    if p.current and sum(p.current.values()) > 0:
        cur = np.array([p.current.get(u, 0.0) for u in p.units])
        starts.insert(0, cur * T / cur.sum())
    if np.any(prm[2] > 1):  # S-shaped curves: several basins, try more than one start
        starts.append(_greedy_start(p, prm))
    else:
        starts = starts[:1]
    return [project(s, p.box, T) for s in starts]


def allocate_budget(
    problem: BudgetProblem,
    x0: Mapping[Unit, float] | None = None,
    tol: float = 1e-7,
    max_iter: int = 5000,
    raise_on_fail: bool = True,
) -> AllocationResult:
    """Maximise expected conversions over the horizon under the problem's constraints.

    Parameters
    ----------
    problem : BudgetProblem
        Curves and constraints.
    x0 : Mapping or None
        Extra starting allocation (projected onto the constraints first).
    tol : float
        Stop when the KKT residual (see :class:`AllocationResult`) is below ``tol``. The
        default, 1e-7 of the budget, is below the cent the plan is rounded to on any
        budget under 100,000; curves with a < 1 have unbounded slope at 0 and can stall
        just above tighter tolerances.
    max_iter : int
        Iterations per start.
    raise_on_fail : bool
        Raise :class:`OptimizationError` when no start converges; if False,
        return the best plan with ``success=False`` instead.

    Returns
    -------
    AllocationResult
        The best plan over the starts, rounded to cents.
    """
    p, T, H = problem, float(problem.total), problem.horizon_days
    prm = p.params()
    starts = _starts(p, prm)
    if x0 is not None:
        starts.insert(0, project(np.array([float(x0.get(u, 0.0)) for u in p.units]), p.box, T))
    # scale gradients so the largest is worth the whole budget: tiny betas still move the plan
    gmax = float(np.max(hill_derivative(starts[0] / H, *prm)))
    scale = T / gmax if gmax > 0 and T > 0 else 1.0
    best = None
    for s in starts:
        x, nit, res, msg = _ascend(s, p, prm, scale, tol, max_iter)
        F = float(_value(x, prm, H).sum())
        # a residual below half a cent cannot change the plan, which is rounded to cents
        ok = res <= tol or res * T <= 0.005
        if best is None or (ok, F) > (best[0], best[1]):
            best = (ok, F, x, nit, res, msg)
    ok, _, x, nit, res, msg = best
    msg = f"{msg}: KKT residual {res:.2e} (tol {tol:g}) after {nit} iterations, " \
          f"best of {len(starts)} start(s)"
    if not ok and raise_on_fail:
        raise OptimizationError(f"budget optimizer failed: {msg}")
    xr = round_cents(x, p.box, T)
    per = _value(xr, prm, H)
    log.debug("allocate_budget %s", msg)
    return AllocationResult(dict(zip(p.units, xr.tolist(), strict=True)), float(per.sum()),
                            dict(zip(p.units, per.tolist(), strict=True)), bool(ok), nit, msg,
                            res)


def evaluate_allocation(
    problem: BudgetProblem, allocation: Mapping[Unit, float]
) -> tuple[float, dict[Unit, float], list[str]]:
    """Score a given allocation and list every constraint it breaks, in words.

    Returns
    -------
    tuple
        ``(total conversions over the horizon, per-unit conversions, violations)``.
    """
    p, b = problem, problem.box
    viol = [f"{_name(u)}: not a paid campaign in the curves" for u in allocation
            if u not in p.curves]
    viol += [f"{_name(u)}: missing from the allocation (taken as 0)" for u in p.units
             if u not in allocation]
    x = np.array([float(allocation.get(u, 0.0)) for u in p.units])
    eps = 0.005  # half a cent
    if abs(x.sum() - p.total) > eps:
        viol.append(f"budget.total: spends sum to {x.sum():,.2f}, not {p.total:,.2f}")
    for i, u in enumerate(p.units):
        if x[i] < b.lo[i] - eps:
            viol.append(f"{_name(u)}: {x[i]:,.2f} below its floor {b.lo[i]:,.2f} ({b.lo_src[i]})")
        if x[i] > b.hi[i] + eps:
            viol.append(f"{_name(u)}: {x[i]:,.2f} above its cap {b.hi[i]:,.2f} ({b.hi_src[i]})")
    csum = np.bincount(b.ch, x, len(b.channels))
    for c, ch in enumerate(b.channels):
        if csum[c] < b.ch_lo[c] - eps:
            viol.append(f"channel {ch}: {csum[c]:,.2f} below its floor {b.ch_lo[c]:,.2f} "
                        f"({b.ch_lo_src[c]})")
        if csum[c] > b.ch_hi[c] + eps:
            viol.append(f"channel {ch}: {csum[c]:,.2f} above its cap {b.ch_hi[c]:,.2f} "
                        f"({b.ch_hi_src[c]})")
    per = _value(x, p.params(), p.horizon_days)
    return float(per.sum()), dict(zip(p.units, per.tolist(), strict=True)), viol


def scaled_current(problem: BudgetProblem) -> dict[Unit, float]:
    """Scale the current allocation to ``problem.total`` (the baseline a plan must beat)."""
    cur = problem.current or {}
    tot = float(sum(cur.get(u, 0.0) for u in problem.units))
    if tot <= 0:
        raise ValueError("current: no current spend to scale; pass current= to BudgetProblem")
    return {u: float(cur.get(u, 0.0)) * problem.total / tot for u in problem.units}


def extrapolation_caps(spend_max: Mapping[Unit, float], max_extrapolation: float
                       ) -> dict[Unit, float]:
    """Daily caps ``budget.max_extrapolation x`` the highest daily spend each curve saw."""
    if not max_extrapolation > 0:
        raise ValueError(f"budget.max_extrapolation must be > 0, got {max_extrapolation}")
    return {u: float(v) * max_extrapolation for u, v in spend_max.items() if v > 0}
