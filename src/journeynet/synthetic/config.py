"""The settings of a generated world: one dataclass, every field a Hydra override.

``conf/data/synthetic.yaml`` mirrors :class:`SimConfig` under ``data.synthetic``, and the
``conf/experiment/*.yaml`` presets switch its mechanisms (``capture``, ``seasonal``,
``fatigue``, ``harmful``, ``repeat``) and pick a unit catalog (``world``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

WORLDS = ("netelixir", "pmax_capture", "brand_trap", "holiday_retailer", "many_units")


@dataclass
class SimConfig:
    """Size, unit catalog and mechanisms of a generated world.

    Each mechanism the attribution engine's own funnel lacks can be switched alone:
    ``capture`` (baseline conversions land in the sessions of capture-capable paid units),
    ``seasonal`` (a demand peak drives arrivals and baseline intent, and spend is raised
    in the same weeks), ``fatigue`` (repeated paid exposure weakens further touches),
    ``harmful`` (the catalog's harmful unit runs: its touches lower intent) and ``repeat``
    (customers who bought come back to the market).
    """

    seed: int = 0
    pool: int = 60_000  # customers in the market, most of them out of market at day 0
    days: int = 182
    start: str = "2024-01-01"
    world: str = "netelixir"  # unit catalog, one of WORLDS
    brand: bool = True  # run the catalog's brand-search units
    capture: bool = True  # session capture by brand, PMax-style and retargeting units
    seasonal: bool = False  # demand peak confounded with spend
    fatigue: bool = False  # ad fatigue (per-customer state 0..3)
    harmful: bool = False  # run the catalog's harmful unit
    repeat: bool = False  # post-purchase customers re-enter the market
    opener_scale: float = 1.0  # multiplies openers' effect on intent
    closer_scale: float = 1.0  # multiplies closers' direct conversion probability
    spend_scale: float = 1.0  # multiplies every unit's daily spend level
    capture_scale: float = 1.0  # multiplies every unit's capture ceiling (kept below 0.95)
    season_amplitude: float = 1.5  # demand at the peak is 1 + amplitude
    season_peak: float = 0.75  # day of the peak as a fraction of the window
    season_width_days: float = 12.0  # standard deviation of the peak, days
    spend_follows_demand: float = 1.0  # spend is multiplied by demand ** this
    fatigue_strength: float = 0.8  # a touch at fatigue f works 1 / (1 + strength * f) as well
    fatigue_decay: float = 0.3  # daily probability that fatigue drops one level without a paid touch
    harm_scale: float = 1.0  # multiplies the harmful unit's push down and out of market
    repeat_rate: float = 0.01  # daily probability that a buyer re-enters the market
    dark_weeks: int = 2  # weeks per unit with spend switched off
    reported_window_days: int = 7  # platforms claim any conversion this long after a touch

    def __post_init__(self) -> None:
        if self.pool < 100:
            raise ValueError(f"synthetic.pool must be at least 100, got {self.pool}")
        if self.days < 28:
            raise ValueError(f"synthetic.days must be at least 28, got {self.days}")
        if self.world not in WORLDS:
            raise ValueError(f"synthetic.world must be one of {', '.join(WORLDS)}, got {self.world!r}")
        if not 0.0 <= self.fatigue_decay <= 1.0:
            raise ValueError(f"synthetic.fatigue_decay must be in [0, 1], got {self.fatigue_decay}")
        if not 0.0 <= self.repeat_rate <= 0.5:
            raise ValueError(f"synthetic.repeat_rate must be in [0, 0.5], got {self.repeat_rate}")
        if self.season_width_days <= 0:
            raise ValueError(f"synthetic.season_width_days must be positive, got {self.season_width_days}")
        if self.dark_weeks < 0 or self.dark_weeks > (self.days + 6) // 7 - 2:
            raise ValueError(f"synthetic.dark_weeks must be in [0, {(self.days + 6) // 7 - 2}], "
                             f"got {self.dark_weeks}")
        for name in ("opener_scale", "closer_scale", "spend_scale", "capture_scale", "season_amplitude",
                     "harm_scale", "fatigue_strength"):
            if getattr(self, name) < 0:
                raise ValueError(f"synthetic.{name} must be non-negative, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        """The config as a plain dict (stored in the truth)."""
        return asdict(self)
