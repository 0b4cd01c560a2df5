"""The paid units of each generated world, and how each role moves a customer's intent.

Spend levels of the ``netelixir`` world are the mean daily costs of the NetElixir Google,
Meta and Microsoft Ads exports (Jan-Jun 2024), and ``volatility`` is the week-to-week
spread those exports show (Microsoft audience is flat, Microsoft Performance Max swings);
units without a counterpart there are sized like typical budgets of their kind.

Intent levels: ``0`` out of market, ``1..5`` rising intent, ``6`` just bought (post-purchase).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_LEVELS = 7
OUT, POST = 0, 6
READY = 5
ROLES = ("opener", "closer", "mixed", "brand", "harmful")


@dataclass(frozen=True)
class UnitSpec:
    """One paid unit of a catalog.

    ``reach`` is the daily touch probability of a fully targeted customer at unlimited
    spend; reach saturates as ``1 - exp(-spend / (half * level))``; ``capture`` is the
    ceiling of the share of baseline conversions whose session this unit takes.
    """

    role: str
    level: float  # mean daily spend
    reach: float
    half: float = 1.0
    capture: float = 0.0
    volatility: float = 0.4


# Relative touch probability by intent level 0..6, per role (targeting by intent).
TARGETING = {
    "opener": [1.0, 0.8, 0.5, 0.3, 0.15, 0.1, 0.0],
    "closer": [0.01, 0.08, 0.35, 0.8, 1.0, 1.2, 0.0],
    "mixed": [0.35, 0.6, 0.8, 1.0, 1.0, 1.0, 0.0],
    "brand": [0.0, 0.0, 0.0, 0.03, 0.4, 1.0, 0.0],
    "harmful": [0.4, 0.8, 1.0, 1.0, 1.0, 1.0, 0.0],
}

# Impressions without a visit per visit, by role: they tire the customer (fatigue) but move nothing.
FREQUENCY = {"opener": 20.0, "closer": 3.0, "mixed": 8.0, "brand": 1.0, "harmful": 10.0}

# Per intent level 0..5: probability a touch moves the customer one and two levels up,
# one level down, out of market, or converts them on the spot.
_OPEN_UP1 = np.array([0.22, 0.16, 0.10, 0.05, 0.02, 0.0])
_OPEN_UP2 = np.array([0.06, 0.04, 0.02, 0.0, 0.0, 0.0])
_CLOSE_UP1 = np.array([0.0, 0.01, 0.03, 0.05, 0.06, 0.0])
_CLOSE_CONV = np.array([0.0, 0.0, 0.01, 0.05, 0.15, 0.35])
_BRAND_CONV = np.array([0.0, 0.0, 0.0, 0.0, 0.02, 0.04])
_HARM_OUT = np.array([0.0, 0.08, 0.08, 0.08, 0.08, 0.08])
_HARM_DOWN = np.array([0.0, 0.0, 0.12, 0.12, 0.12, 0.12])
_WEAK_CONV = np.array([0.0, 0.0, 0.0, 0.002, 0.005, 0.01])


def role_moves(role: str, opener: float = 1.0, closer: float = 1.0, harm: float = 1.0) -> np.ndarray:
    """Off-diagonal move probabilities of one touch, ``(6, 8)``: from level 0..5 to level 0..6 or conversion.

    The diagonal (staying put) is left at zero; :func:`move_matrix` completes the rows.
    """
    up1 = np.zeros(6)
    up2 = np.zeros(6)
    conv = np.zeros(6)
    down = np.zeros(6)
    out = np.zeros(6)
    if role == "opener":
        up1, up2, conv = _OPEN_UP1 * opener, _OPEN_UP2 * opener, _WEAK_CONV * closer
    elif role == "closer":
        up1, conv = _CLOSE_UP1 * opener, _CLOSE_CONV * closer
    elif role == "mixed":
        up1 = 0.5 * (_OPEN_UP1 + _CLOSE_UP1) * opener
        up2 = 0.5 * _OPEN_UP2 * opener
        conv = 0.5 * _CLOSE_CONV * closer
    elif role == "brand":
        conv = _BRAND_CONV
    elif role == "harmful":
        out, down = _HARM_OUT * harm, _HARM_DOWN * harm
    else:
        raise ValueError(f"unknown role {role!r}, expected one of {', '.join(ROLES)}")
    m = np.zeros((6, N_LEVELS + 1))
    for level in range(6):
        if level + 1 <= READY:
            m[level, level + 1] += up1[level]
        if level + 2 <= READY:
            m[level, level + 2] += up2[level]
        if level >= 2:
            m[level, level - 1] += down[level]
        if level >= 1:
            m[level, OUT] += out[level]
        m[level, N_LEVELS] = conv[level]
    total = m.sum(axis=1, keepdims=True)
    return np.where(total > 0.95, m * 0.95 / np.maximum(total, 1e-12), m)


G, M, MS = "google_ads", "meta_ads", "microsoft_ads"

CATALOGS: dict[str, dict[tuple[str, str], UnitSpec]] = {
    # The NetElixir exports' units, a brand-search unit, and a retargeting unit that harms.
    "netelixir": {
        (G, "brand_search"): UnitSpec("brand", 300.0, 0.06, 0.8, capture=0.3, volatility=0.25),
        (G, "cross_network"): UnitSpec("mixed", 3172.2, 0.0045, 1.2, capture=0.12, volatility=0.37),
        (G, "display_network"): UnitSpec("opener", 0.34, 0.00002, 1.0, volatility=0.8),
        (G, "search_network"): UnitSpec("closer", 1418.8, 0.03, 0.9, volatility=0.47),
        (G, "youtube"): UnitSpec("opener", 94.5, 0.003, 1.0, volatility=0.5),
        (M, "retargeting"): UnitSpec("harmful", 150.0, 0.012, 1.0, volatility=0.4),
        (M, "social"): UnitSpec("opener", 108.1, 0.003, 1.1, volatility=0.32),
        (MS, "audience"): UnitSpec("opener", 24.1, 0.0008, 1.0, volatility=0.07),
        (MS, "performance_max"): UnitSpec("mixed", 62.4, 0.0012, 1.0, capture=0.06, volatility=0.9),
        (MS, "search_content"): UnitSpec("closer", 757.7, 0.02, 1.0, volatility=0.28),
        (MS, "shopping"): UnitSpec("closer", 190.7, 0.01, 1.0, volatility=0.45),
    },
    # A PMax-style unit that takes about a third of organic conversion sessions.
    "pmax_capture": {
        (G, "performance_max"): UnitSpec("mixed", 3500.0, 0.005, 1.2, capture=0.5, volatility=0.35),
        (G, "search_network"): UnitSpec("closer", 1400.0, 0.03, 0.9, volatility=0.45),
        (G, "youtube"): UnitSpec("opener", 300.0, 0.004, 1.0, volatility=0.5),
        (M, "advantage_plus"): UnitSpec("mixed", 600.0, 0.003, 1.0, capture=0.08, volatility=0.35),
        (M, "retargeting"): UnitSpec("harmful", 200.0, 0.012, 1.0, volatility=0.4),
        (M, "social"): UnitSpec("opener", 900.0, 0.006, 1.1, volatility=0.3),
        (MS, "audience"): UnitSpec("opener", 60.0, 0.001, 1.0, volatility=0.1),
        (MS, "search_content"): UnitSpec("closer", 700.0, 0.02, 1.0, volatility=0.3),
        (MS, "shopping"): UnitSpec("closer", 250.0, 0.01, 1.0, volatility=0.45),
    },
    # Brand search takes about a quarter of spend and tops last-touch ROAS.
    "brand_trap": {
        (G, "brand_search"): UnitSpec("brand", 1500.0, 0.12, 0.8, capture=0.8, volatility=0.2),
        (G, "display_network"): UnitSpec("opener", 400.0, 0.004, 1.0, volatility=0.5),
        (G, "search_network"): UnitSpec("closer", 1300.0, 0.03, 0.9, volatility=0.45),
        (G, "shopping"): UnitSpec("closer", 700.0, 0.015, 1.0, volatility=0.4),
        (G, "youtube"): UnitSpec("opener", 500.0, 0.005, 1.0, volatility=0.5),
        (M, "prospecting"): UnitSpec("opener", 900.0, 0.006, 1.1, volatility=0.3),
        (M, "retargeting"): UnitSpec("mixed", 300.0, 0.004, 1.0, capture=0.1, volatility=0.35),
        (MS, "brand_search"): UnitSpec("brand", 150.0, 0.04, 0.8, capture=0.3, volatility=0.25),
        (MS, "search_content"): UnitSpec("closer", 500.0, 0.02, 1.0, volatility=0.3),
    },
    # A retailer with a holiday season: openers that tire, brand and PMax capture, and a
    # retargeting campaign that drives customers away.
    "holiday_retailer": {
        (G, "brand_search"): UnitSpec("brand", 600.0, 0.08, 0.8, capture=0.45, volatility=0.25),
        (G, "display_network"): UnitSpec("opener", 300.0, 0.004, 1.0, volatility=0.5),
        (G, "performance_max"): UnitSpec("mixed", 2500.0, 0.004, 1.2, capture=0.25, volatility=0.35),
        (G, "search_network"): UnitSpec("closer", 1200.0, 0.03, 0.9, volatility=0.45),
        (G, "youtube"): UnitSpec("opener", 600.0, 0.006, 1.0, volatility=0.5),
        (M, "advantage_plus"): UnitSpec("opener", 1500.0, 0.008, 1.1, volatility=0.3),
        (M, "retargeting"): UnitSpec("harmful", 500.0, 0.01, 1.0, volatility=0.35),
        (MS, "search_content"): UnitSpec("closer", 500.0, 0.02, 1.0, volatility=0.3),
    },
    # Fifteen units on six platforms, with an interstitial campaign that harms.
    "many_units": {
        (G, "brand_search"): UnitSpec("brand", 500.0, 0.07, 0.8, capture=0.5, volatility=0.25),
        (G, "display_network"): UnitSpec("opener", 300.0, 0.003, 1.0, volatility=0.5),
        (G, "performance_max"): UnitSpec("mixed", 2000.0, 0.004, 1.2, capture=0.2, volatility=0.35),
        (G, "search_network"): UnitSpec("closer", 1100.0, 0.025, 0.9, volatility=0.45),
        (G, "youtube"): UnitSpec("opener", 500.0, 0.005, 1.0, volatility=0.5),
        (M, "advantage_plus"): UnitSpec("opener", 1200.0, 0.007, 1.1, volatility=0.3),
        (M, "reels"): UnitSpec("opener", 300.0, 0.003, 1.0, volatility=0.4),
        (M, "retargeting"): UnitSpec("mixed", 400.0, 0.005, 1.0, capture=0.1, volatility=0.35),
        (MS, "search_content"): UnitSpec("closer", 500.0, 0.018, 1.0, volatility=0.3),
        (MS, "shopping"): UnitSpec("closer", 250.0, 0.01, 1.0, volatility=0.45),
        ("tiktok_ads", "in_feed"): UnitSpec("opener", 700.0, 0.006, 1.0, volatility=0.45),
        ("tiktok_ads", "interstitial"): UnitSpec("harmful", 300.0, 0.008, 1.0, volatility=0.4),
        ("pinterest_ads", "promoted_pins"): UnitSpec("opener", 250.0, 0.003, 1.0, volatility=0.4),
        ("amazon_ads", "dsp"): UnitSpec("opener", 400.0, 0.004, 1.0, volatility=0.4),
        ("amazon_ads", "sponsored_products"): UnitSpec("closer", 600.0, 0.015, 1.0, volatility=0.35),
    },
}

UNPAID = ("direct", "email", "organic_search", "referral")
# Daily probability of an unpaid touch by intent level 0..6: intent causes these visits.
UNPAID_RATES = np.array([
    [0.0003, 0.004, 0.008, 0.014, 0.024, 0.04, 0.003],  # direct
    [0.0006, 0.003, 0.004, 0.006, 0.008, 0.01, 0.005],  # email
    [0.0004, 0.006, 0.01, 0.015, 0.02, 0.03, 0.001],  # organic_search
    [0.0002, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0005],  # referral
])
SESSION = np.array([0.42, 0.12, 0.38, 0.08])  # unpaid channel of a baseline conversion's session
