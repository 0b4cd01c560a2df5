"""The ``budget`` settings of ``optimize.py``, checked once with messages that name the setting.

Quickstart
----------
>>> from journeynet.planning.settings import BudgetSettings
>>> s = BudgetSettings.from_config({"total": "200000", "horizon_days": 30})
>>> s.total, s.objective
(200000.0, 'conversions')
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from journeynet.errors import InputError

OBJECTIVES = ("conversions", "revenue")
DEFAULT_FRONTIER = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)


def _number(name: str, value: Any, *, low: float | None = None, strict: bool = False,
            optional: bool = False) -> float | None:
    """``value`` as a finite float, or one line naming ``budget.<name>`` and what it needs."""
    if value is None and optional:
        return None
    need = "a number" + ("" if low is None else f" {'>' if strict else '>='} {low:g}")
    if isinstance(value, bool):
        raise InputError(f"budget.{name} must be {need}, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        hint = " (write the digits out, e.g. 200000)" if isinstance(value, str) and value[-1:].lower() in "km" else ""
        raise InputError(f"budget.{name} must be {need}, got {value!r}{hint}") from None
    if not math.isfinite(x) or (low is not None and (x <= low if strict else x < low)):
        raise InputError(f"budget.{name} must be {need}, got {value!r}")
    return x


@dataclass(frozen=True)
class BudgetSettings:
    """Validated ``budget.*`` settings (amounts over the horizon)."""

    total: float = 200000.0
    horizon_days: int = 30
    min_channel_share: float = 0.10
    min_campaign_share: float = 0.005
    max_change: float | None = None
    max_extrapolation: float = 3.0
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    objective: str = "conversions"
    target_cpa: float | None = None
    target_roas: float | None = None
    frontier: tuple[float, ...] = DEFAULT_FRONTIER

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> BudgetSettings:
        """Build from ``cfg.budget`` (a plain mapping); raise :class:`InputError` naming the bad setting."""
        c = dict(cfg)
        horizon = _number("horizon_days", c.get("horizon_days", 30), low=1)
        if horizon != int(horizon):
            raise InputError(f"budget.horizon_days must be a whole number of days >= 1, got {c['horizon_days']!r}")
        shares = {n: _number(n, c.get(n, d), low=0) for n, d in (("min_channel_share", 0.10),
                                                                 ("min_campaign_share", 0.005))}
        for n, v in shares.items():
            if v > 1:
                raise InputError(f"budget.{n} must be a share in [0, 1], got {c[n]!r}")
        objective = str(c.get("objective", "conversions"))
        if objective not in OBJECTIVES:
            raise InputError(f"budget.objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
        s = cls(total=_number("total", c.get("total", 200000.0), low=0),
                horizon_days=int(horizon), **shares,
                max_change=_number("max_change", c.get("max_change"), low=0, optional=True),
                max_extrapolation=_number("max_extrapolation", c.get("max_extrapolation", 3.0), low=0, strict=True),
                bounds=_bounds(c.get("bounds") or {}), objective=objective,
                target_cpa=_number("target_cpa", c.get("target_cpa"), low=0, strict=True, optional=True),
                target_roas=_number("target_roas", c.get("target_roas"), low=0, strict=True, optional=True),
                frontier=_multiples(c.get("frontier", DEFAULT_FRONTIER)))
        if s.target_cpa is not None and s.target_roas is not None:
            raise InputError("budget.target_cpa and budget.target_roas are both set: choose one")
        if s.target_cpa is not None and objective != "conversions":
            raise InputError("budget.target_cpa targets the cost per conversion: use it with budget.objective="
                             "conversions (or budget.target_roas with revenue)")
        if s.target_roas is not None and objective != "revenue":
            raise InputError("budget.target_roas needs budget.objective=revenue")
        return s

    @property
    def target(self) -> float | None:
        """The marginal return to reach: conversions per currency unit (CPA) or revenue per unit (ROAS)."""
        if self.target_cpa is not None:
            return 1.0 / self.target_cpa
        return self.target_roas

    def with_total(self, total: float) -> BudgetSettings:
        """A copy with another total."""
        return replace(self, total=float(total))


def _bounds(raw: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    out = {}
    for key, v in dict(raw).items():
        if not isinstance(v, list | tuple) or len(v) != 2:
            raise InputError(f"budget.bounds[{key!r}] must be [low, high], got {v!r}")
        lo = _number(f"bounds[{key!r}] low", v[0], low=0)
        hi = _number(f"bounds[{key!r}] high", v[1], low=0)
        if lo > hi:
            raise InputError(f"budget.bounds[{key!r}] must satisfy low <= high, got [{v[0]}, {v[1]}]")
        out[str(key)] = (lo, hi)
    return out


def _multiples(raw: Any) -> tuple[float, ...]:
    if not isinstance(raw, list | tuple) or not raw:
        raise InputError(f"budget.frontier must be a list of budget multiples, got {raw!r}")
    return tuple(sorted({_number("frontier", m, low=0, strict=True) for m in raw}))
