"""How close a run's attribution is to a generated world's truth.

Compares the share of paid incremental conversions each method gives each paid
unit with the generator's interventional shares (total-variation distance), and
checks that the funnel's opener/closer split orders units as their true roles do.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from journeynet.attribution.classic import MODELS
from journeynet.attribution.tables import shares, total_variation

METHODS = ("removal_effect", "removal_effect_naive", *MODELS)


def truth_report(truth: dict[str, Any], table: pd.DataFrame, touchpoints: pd.DataFrame | None = None) -> dict[str, Any]:
    """TV distance per method, per-unit shares, and the role check, as a JSON-ready dict."""
    keys = ["channel", "campaign_type"]
    true = pd.DataFrame(truth["units"])
    # Suffixes only apply to clashing names, and a run without the funnel has no opener_effect
    # column to clash with: name the truth's columns outright.
    true = true.rename(columns={c: f"{c}_true" for c in ("opener_effect", "closer_effect")})
    paid = table[table["paid"].astype(bool)]
    merged = true.merge(paid.drop(columns=["effect", "role"], errors="ignore"), on=keys, how="left")
    t_share = shares(merged["effect"])
    tv = {}
    for m in METHODS:
        if m in merged and merged[m].notna().any():
            tv[m] = total_variation(t_share, shares(merged[m].fillna(0.0)))
    per_unit = pd.DataFrame({"unit": merged["channel"] + "/" + merged["campaign_type"], "role": merged["role"],
                             "true_share": t_share,
                             "true_opener": merged["opener_effect_true"] / merged["effect"]})
    for m in ("removal_effect", "removal_effect_naive", "last_touch"):
        if m in merged:
            per_unit[f"{m}_share"] = shares(merged[m].fillna(0.0))
    if "opener_score" in merged:
        per_unit["opener_score"] = merged["opener_score"]
    report = {"tv_distance": tv, "units": per_unit.round(5).to_dict(orient="records")}
    report["roles"] = role_check(per_unit)
    if touchpoints is not None:
        conv = touchpoints[touchpoints["converted"] == 1]
        unpaid_last = float((conv["campaign_type"] == "").sum())
        report["last_touch_unpaid_conversions"] = unpaid_last
    return report


def role_check(per_unit: pd.DataFrame) -> dict[str, Any]:
    """Check that every true opener gets a higher opener score than every true closer.

    Only units with a material true effect (over 1% of the paid total) count: a unit with
    no effect has no role to recover.
    """
    if "opener_score" not in per_unit or per_unit["opener_score"].isna().all():
        return {"checked": False}
    material = per_unit[per_unit["true_share"] > 0.01]
    openers = material.loc[material["role"] == "opener", "opener_score"]
    closers = material.loc[material["role"].isin(["closer", "brand"]), "opener_score"]
    ordered = bool(len(openers) and len(closers) and openers.min() > closers.max())
    rank_corr = float(material[["true_opener", "opener_score"]].corr(method="spearman").iloc[0, 1])
    return {"checked": True, "openers_above_closers": ordered,
            "min_opener_score_of_openers": float(openers.min()) if len(openers) else np.nan,
            "max_opener_score_of_closers": float(closers.max()) if len(closers) else np.nan,
            "spearman_true_vs_estimated_opener_share": rank_corr}
