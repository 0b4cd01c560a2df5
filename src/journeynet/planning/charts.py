"""Geometry of the report's plain-SVG charts: scales, ticks, paths; no drawing library.

Each function returns a dict of numbers and path strings that the report template turns
into ``<svg>`` elements; text (names from user data) stays in the template, where it is
escaped.

Quickstart
----------
>>> from journeynet.planning.charts import Frame
>>> f = Frame((0.0, 10.0), (0.0, 1.0))
>>> f.path([0.0, 10.0], [0.0, 1.0]).startswith("M")
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from journeynet.planning.response import HillCurve


def nice_ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    """About ``n`` round tick values covering ``[lo, hi]``."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    return [round(start + i * step, 10) for i in range(int((hi - start) / step + 1e-9) + 1)]


def short(v: float) -> str:
    """A compact label: 1.2k, 35, 0.04."""
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e3:
        return f"{v / 1e3:.3g}k"
    return f"{v:.3g}"


@dataclass(frozen=True)
class Frame:
    """A plot area: data ranges mapped to pixels inside margins."""

    xr: tuple[float, float]
    yr: tuple[float, float]
    width: int = 300
    height: int = 190
    left: int = 44
    right: int = 10
    top: int = 10
    bottom: int = 30

    def x(self, v: float) -> float:
        """Pixel x of data ``v``."""
        span = (self.xr[1] - self.xr[0]) or 1.0
        return round(self.left + (v - self.xr[0]) / span * (self.width - self.left - self.right), 2)

    def y(self, v: float) -> float:
        """Pixel y of data ``v``."""
        span = (self.yr[1] - self.yr[0]) or 1.0
        return round(self.height - self.bottom - (v - self.yr[0]) / span * (self.height - self.top - self.bottom), 2)

    def path(self, xs: Sequence[float], ys: Sequence[float]) -> str:
        """An SVG path through the points (gaps where y is not finite)."""
        parts, pen = [], "M"
        for a, b in zip(xs, ys, strict=True):
            if b is None or not math.isfinite(b):
                pen = "M"
                continue
            parts.append(f"{pen}{self.x(a)},{self.y(b)}")
            pen = "L"
        return " ".join(parts)

    def band(self, xs: Sequence[float], lo: Sequence[float], hi: Sequence[float]) -> str:
        """A closed area between ``lo`` and ``hi``."""
        top = [f"{self.x(a)},{self.y(b)}" for a, b in zip(xs, hi, strict=True)]
        bot = [f"{self.x(a)},{self.y(b)}" for a, b in zip(reversed(xs), reversed(lo), strict=True)]
        return "M" + " L".join(top + bot) + " Z" if top else ""

    def axes(self) -> dict[str, Any]:
        """Tick positions and labels."""
        return {"w": self.width, "h": self.height, "x0": self.left, "x1": self.width - self.right,
                "y0": self.height - self.bottom, "y1": self.top,
                "xticks": [{"p": self.x(t), "label": short(t)} for t in nice_ticks(*self.xr)
                           if self.xr[0] <= t <= self.xr[1]],
                "yticks": [{"p": self.y(t), "label": short(t)} for t in nice_ticks(*self.yr)
                           if self.yr[0] <= t <= self.yr[1]]}


def curve_panel(curve: HillCurve, horizon: int, current: float, planned: float, spend_min: float,
                spend_max: float, band: Sequence[HillCurve] | None = None) -> dict[str, Any]:
    """One response-curve panel: conversions over the horizon against spend over the horizon.

    The history range (``spend_min`` to ``spend_max`` daily, times the horizon) is shaded so
    a planned point beyond it reads as extrapolation; ``band`` (refitted or posterior curves)
    gives a 90% band.
    """
    h = horizon
    top = max(2.5 * curve.k * h, 1.3 * current, 1.3 * planned, 1.2 * spend_max * h, 1.0)
    xs = np.linspace(0.0, top, 80)
    ys = h * np.asarray(curve(xs / h))
    lo_b = hi_b = None
    if band:
        ens = np.array([h * np.asarray(c(xs / h)) for c in band])
        lo_b, hi_b = np.percentile(ens, 5, axis=0), np.percentile(ens, 95, axis=0)
    ymax = max(float(ys.max()), float(hi_b.max()) if hi_b is not None else 0.0, 1e-9) * 1.08
    f = Frame((0.0, float(top)), (0.0, ymax))
    pt = lambda s, cls: {"cx": f.x(s), "cy": f.y(h * float(curve(s / h))), "cls": cls}  # noqa: E731
    return {**f.axes(), "line": f.path(xs, ys),
            "band": f.band(list(xs), list(lo_b), list(hi_b)) if lo_b is not None else "",
            "hist_x": f.x(spend_min * h), "hist_w": max(f.x(spend_max * h) - f.x(spend_min * h), 1.0),
            "hist_end": f.x(spend_max * h), "points": [pt(current, "current"), pt(planned, "planned")]}


def frontier_chart(frontier: Sequence[Mapping[str, Any]], key: str = "expected_conversions") -> dict[str, Any]:
    """The frontier: optimal value against total budget, the given budget marked."""
    pts = [p for p in frontier if p.get("feasible") and p.get(key) is not None]
    if len(pts) < 2:
        return {}
    xs = [float(p["total"]) for p in pts]
    ys = [float(p[key]) for p in pts]
    f = Frame((0.0, max(xs) * 1.05), (0.0, max(ys) * 1.1), width=520, height=240, left=56)
    return {**f.axes(), "line": f.path(xs, ys),
            "points": [{"cx": f.x(x), "cy": f.y(y), "cls": "given" if abs(p["multiple"] - 1) < 1e-9 else "",
                        "title": f"{x:,.0f}: {y:,.1f}"} for x, y, p in zip(xs, ys, pts, strict=True)]}


def checks_chart(rows: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """Predicted (with band) against observed conversions over time; periods shaded."""
    n = len(rows["observed"])
    if n == 0:
        return {}
    t = list(range(n))
    obs = [float(v) for v in rows["observed"]]
    pred = [float(v) for v in rows["predicted"]]
    lo = [float(v) if v is not None and math.isfinite(float(v)) else p for v, p in zip(rows["low"], pred, strict=True)]
    hi = [float(v) if v is not None and math.isfinite(float(v)) else p for v, p in zip(rows["high"], pred, strict=True)]
    vals = [v for v in obs + hi if math.isfinite(v)]
    f = Frame((0.0, max(n - 1, 1)), (0.0, max(vals + [1e-9]) * 1.1), width=520, height=200, left=48)
    spans, start = [], 0
    periods = list(rows["period"])
    for i in range(1, n + 1):
        if i == n or periods[i] != periods[start]:
            if periods[start] != "normal":
                x0 = f.x(max(start - 0.5, 0))
                spans.append({"x": x0, "w": max(f.x(min(i - 0.5, n - 1)) - x0, 1), "period": periods[start]})
            start = i
    axes = f.axes()
    dates = list(rows["date"])
    axes["xticks"] = [{"p": f.x(i), "label": str(dates[int(i)])[5:10]} for i in nice_ticks(0, n - 1)
                      if 0 <= i < n and float(i).is_integer()]
    return {**axes, "band": f.band(t, lo, hi), "pred": f.path(t, pred), "obs": f.path(t, obs), "spans": spans}
