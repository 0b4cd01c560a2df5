"""Attribution tables: interventional effects from the funnel, beside the descriptive views.

Three kinds of answer sit side by side in ``attribution.csv``:

* ``removal_effect``: conversions lost when the unit's spend is switched off, in the
  fitted funnel model (an intervention; see :mod:`journeynet.causal.interventions`), with
  ``opener_score``/``closer_score`` splitting it into the part that flows through moving
  customers up the funnel and the part its touches convert directly;
* ``removal_effect_naive``: the unit's touches deleted from recorded journeys and the
  journeys re-scored by the attention-LSTM (evidence, not effect: a diagnostic);
* the classic rules (last touch ... Markov) and the attention-LSTM's start/end split.

Quickstart::

    from journeynet.attribution.tables import total_variation
    total_variation([0.5, 0.5], [0.6, 0.4])  # 0.1
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from journeynet.causal.funnel import FunnelParams, expected_conversions
from journeynet.causal.interventions import removal_effects, unit_effects
from journeynet.progress import progress

log = logging.getLogger(__name__)

UNPAID_NOTE = "unpaid: an outcome of intent in the funnel model, not a cause"


def funnel_table(params: FunnelParams, spend: np.ndarray, observed_conversions: float,
                 draws: list[FunnelParams] | None = None) -> pd.DataFrame:
    """Interventional effects per paid unit, scaled to the observed conversions.

    ``attributed_conversions`` = raw effect x observed / model-expected conversions, so a
    model that is off in level is corrected in level only; raw effects are kept. With
    ``draws`` of the model, ``removal_effect_low``/``_high`` is the 90% interval of the
    effect over them. A harmful unit's effect is negative and stays so.
    """
    effects = removal_effects(params, spend)
    expected = float(expected_conversions(params, spend).sum())
    scale = observed_conversions / expected if expected > 0 else np.nan
    total = effects["effect"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        # roles split a positive effect; a harmful unit's split has no meaning
        opener = np.where(total > 0, np.clip(effects["opener_effect"] / total, 0.0, 1.0), np.nan)
    table = pd.DataFrame({
        "channel": effects["channel"], "campaign_type": effects["campaign_type"],
        "attributed_conversions": total * scale, "removal_effect": total,
        "opener_score": opener, "closer_score": 1.0 - opener,
        "opener_effect": effects["opener_effect"], "closer_effect": effects["closer_effect"],
    })
    if draws:
        spread = np.stack([unit_effects(d, spend) for d in progress(draws, desc="effect intervals")])  # (D, U)
        # the draws' spread around their mean, centred on the fit: a shift of the draws' mean is not uncertainty
        centred = spread - spread.mean(0) + total
        table["removal_effect_low"], table["removal_effect_high"] = np.quantile(centred, [0.05, 0.95], axis=0)
    return table


def attention_roles(journeys: Any, attention: np.ndarray, n_units: int) -> pd.DataFrame:
    """Attention credit at the start versus the end of converting journeys, per unit id.

    A touch at relative position ``r`` (0 first, 1 last) gives ``(1 - r)`` of its
    attention to *start* and ``r`` to *end*; a one-touch journey splits evenly.
    """
    lengths = np.diff(journeys.offsets)
    jid = np.repeat(np.arange(lengths.size), lengths)
    conv = journeys.label.astype(bool)[jid]
    pos = np.arange(journeys.unit.size) - journeys.offsets[jid]
    span = np.maximum(lengths[jid] - 1, 1)
    r = np.where(lengths[jid] > 1, pos / span, 0.5)
    w = attention * conv
    start = np.bincount(journeys.unit, weights=w * (1 - r), minlength=n_units)
    end = np.bincount(journeys.unit, weights=w * r, minlength=n_units)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(start + end > 0, start / (start + end), np.nan)
    return pd.DataFrame({"attention_start": start, "attention_end": end, "attention_opener": share},
                        index=pd.RangeIndex(n_units, name="unit"))


def delete_unit(journeys: Any, unit_id: int) -> tuple[Any, np.ndarray]:
    """Journeys with every touch of ``unit_id`` removed, features rebuilt; and the kept journey ids."""
    from journeynet.data.journeys import Journeys

    keep = journeys.unit != unit_id
    lengths = np.diff(journeys.offsets)
    jid = np.repeat(np.arange(lengths.size), lengths)
    new_len = np.bincount(jid[keep], minlength=lengths.size)
    kept = np.flatnonzero(new_len > 0)
    keep &= new_len[jid] > 0
    jid_k = jid[keep]
    offsets = np.r_[0, np.cumsum(new_len[kept])].astype(np.int64)
    time = journeys.time[keep]
    first = np.r_[True, jid_k[1:] != jid_k[:-1]]
    hours = np.diff(time, prepend=time[:1]) / 3.6e12
    dt_prev = np.where(first, 0.0, np.log1p(np.maximum(hours, 0)))
    last_time = time[offsets[1:] - 1]
    dt_end = np.log1p(np.maximum((np.repeat(last_time, new_len[kept]) - time) / 3.6e12, 0))
    position = np.arange(time.size) - np.repeat(offsets[:-1], new_len[kept])
    out = Journeys(channel=journeys.channel[keep], campaign=journeys.campaign[keep], unit=journeys.unit[keep],
                   log_dt_prev=dt_prev.astype(np.float32), log_dt_end=dt_end.astype(np.float32),
                   position=position.astype(np.int64), time=time, offsets=offsets,
                   label=journeys.label[kept], customer_id=journeys.customer_id[kept],
                   journey=journeys.journey[kept], revenue=journeys.revenue[kept],
                   end_time=journeys.end_time[kept],
                   history=None if journeys.history is None else journeys.history[kept],
                   calendar=None if journeys.calendar is None else journeys.calendar[kept])
    return out, kept


def naive_deletion(net: Any, journeys: Any, unit_ids: list[int], base_p: np.ndarray,
                   batch_size: int = 4096, device: str = "cpu") -> dict[int, float]:
    """Sum over journeys of the drop in predicted conversion when a unit's touches are deleted.

    A journey left with no touch counts as not happening (probability 0).
    """
    from journeynet.data.calendar import attached_calendar
    from journeynet.data.history import journey_history
    from journeynet.model.predict import predict_proba
    from journeynet.progress import progress

    history = journey_history(journeys)  # before subsetting: a subset lacks the customers' other journeys
    # and the whole set's window: the deleted unit's journeys keep their place (scored when they ended)
    calendar = attached_calendar(journeys, getattr(net, "config", {}).get("window"))
    out = {}
    for u in progress(unit_ids, desc="naive deletion"):
        touched = np.flatnonzero(np.bincount(np.repeat(np.arange(len(journeys)), np.diff(journeys.offsets)),
                                             weights=journeys.unit == u, minlength=len(journeys)) > 0)
        if touched.size == 0:
            out[u] = 0.0
            continue
        sub = journeys.subset(touched)
        sub.history = None if history is None else history[touched]
        sub.calendar = None if calendar is None else calendar[touched]
        reduced, kept = delete_unit(sub, u)
        p_new = np.zeros(touched.size)
        if len(reduced):
            p_new[kept] = predict_proba(net, reduced, batch_size=batch_size, device=device)[0]
        out[u] = float((base_p[touched] - p_new).sum())
    return out


def shares(values: pd.Series | np.ndarray) -> np.ndarray:
    """Non-negative parts normalized to sum 1 (all zero stays zero)."""
    v = np.clip(np.asarray(values, dtype=float), 0, None)
    v = np.nan_to_num(v)
    return v / v.sum() if v.sum() > 0 else v


def total_variation(p: pd.Series | np.ndarray, q: pd.Series | np.ndarray) -> float:
    """Total-variation distance between two share vectors."""
    return float(0.5 * np.abs(np.asarray(p, dtype=float) - np.asarray(q, dtype=float)).sum())


NO_SPEND_NOTE = ("no spend data: interventional effects need spend (data.spend); "
                 "the classic and attention columns are computed")


def assemble(vocab: Any, classic: pd.DataFrame, attention: pd.DataFrame, naive: dict[int, float],
             funnel: pd.DataFrame | None, reason: str = NO_SPEND_NOTE) -> pd.DataFrame:
    """One row per (channel, campaign_type) of the vocabulary, with every view as columns.

    Without ``funnel`` the interventional columns are empty (NaN, a blank cell in the CSV),
    never 0.0, for every unit, and ``note`` says why (``reason``): 0.0 would claim the
    model found no effect, when no model ran.
    """
    units = vocab.unit_frame()
    table = units.join(classic, on="unit_id").join(attention, on="unit_id")
    table["removal_effect_naive"] = table["unit_id"].map(naive).astype(float)
    if funnel is not None:
        table = table.merge(funnel, on=["channel", "campaign_type"], how="left")
        table["note"] = np.where(table["paid"], "", UNPAID_NOTE)
        unpaid = ~table["paid"].astype(bool)
        table.loc[unpaid, ["attributed_conversions", "removal_effect"]] = 0.0
    else:
        for col in ("attributed_conversions", "removal_effect", "opener_score", "closer_score"):
            table[col] = np.nan
        table["note"] = reason
    first = ["channel", "campaign_type", "paid", "attributed_conversions", "removal_effect",
             "removal_effect_naive", "opener_score", "closer_score"]
    rest = [c for c in table.columns if c not in first and c != "unit_id"]
    return table[first + rest]
