"""Batch inference with a trained net, and attention summaries by position.

Quickstart
----------
>>> import numpy as np
>>> from types import SimpleNamespace
>>> from journeynet.model.net import AttentionLSTM
>>> from journeynet.model.predict import attention_by_position, predict_proba
>>> n = np.array([2, 1, 3])
>>> j = SimpleNamespace(offsets=np.r_[0, np.cumsum(n)], channel=np.arange(2, 8),
...     campaign=np.ones(6, np.int64), log_dt_prev=np.zeros(6, np.float32),
...     log_dt_end=np.zeros(6, np.float32), position=np.r_[0, 1, 0, 0, 1, 2],
...     time=np.arange(6) * 10**12, label=np.array([1, 0, 1], np.int8))
>>> p, att = predict_proba(AttentionLSTM(8, 2, hidden_size=4), j)
>>> p.shape, att.shape, bool(np.isclose(att[:2].sum(), 1.0))
((3,), (6,), True)
>>> list(attention_by_position(j, att).columns)
['pos_from_end', 'label', 'attention', 'n']
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from journeynet.data.calendar import attached_calendar
from journeynet.data.history import journey_history
from journeynet.model.net import collate_journeys, journey_lengths, touch_features

log = logging.getLogger(__name__)


@torch.no_grad()
def predict_proba(
    net: nn.Module, journeys: Any, batch_size: int = 4096, device: str | torch.device = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """Conversion probability per journey and attention per touch.

    Journeys are scored in length-sorted batches (little padding) and put back in order.

    Parameters
    ----------
    net : nn.Module
        A net with the :class:`~journeynet.model.net.AttentionLSTM` forward signature.
    journeys : Journeys
        Journeys to score.
    batch_size : int
        Journeys per forward pass.
    device : str | torch.device
        Where to run the net.

    Returns
    -------
    tuple[np.ndarray, np.ndarray]
        ``p`` float64 (n_journeys,) and ``attention`` float64 (n_touch,), aligned with the
        per-touch arrays of ``journeys`` (sums to 1 within each journey).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    was_training = net.training
    net.eval().to(device)
    feats = touch_features(journeys)
    lengths = journey_lengths(journeys)
    history = journey_history(journeys)  # the customers' earlier journeys, from the whole set given
    # model.calendar: journeys are placed against the TRAINING window the checkpoint keeps (net.config["window"]),
    # their position clamped to [0, 1] (a file past the window reads as its end, the latest season the net saw);
    # "days to the data's end" counts to these journeys' own last touch, since a file's journeys are censored
    # where it stops. A net saved without a window uses the journeys' own span.
    calendar = attached_calendar(journeys, getattr(net, "config", {}).get("window"))
    offsets = np.asarray(journeys.offsets, dtype=np.int64)
    p = np.empty(len(lengths), dtype=np.float64)
    attention = np.zeros(int(offsets[-1]), dtype=np.float64)
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        b = collate_journeys(journeys, feats, idx, lengths, history, calendar)
        out = net(*(b[k].to(device) for k in ("channel", "campaign", "feats", "lengths", "full_length")),
                  **{k: b[k].to(device) for k in ("history", "calendar") if k in b})
        p[idx] = torch.sigmoid(out["logits"].float()).cpu().numpy()
        att = out["attention"].float().cpu().numpy()  # (B, T)
        mask = np.arange(att.shape[1])[None, :] < lengths[idx][:, None]  # (B, T)
        touch = offsets[idx][:, None] + np.arange(att.shape[1])[None, :]  # (B, T)
        attention[touch[mask]] = att[mask]
    net.train(was_training)
    return p, attention


def attention_by_position(
    journeys: Any, attention: np.ndarray, from_end: bool = True, max_pos: int = 20
) -> pd.DataFrame:
    """Mean attention by touch position, for converting and non-converting journeys.

    Parameters
    ----------
    journeys : Journeys
        Journeys the attention belongs to (needs ``offsets`` and ``label``).
    attention : np.ndarray
        Per-touch attention from :func:`predict_proba`, shape (n_touch,).
    from_end : bool
        Count positions from the last touch (0 = last) rather than the first.
    max_pos : int
        Keep positions ``0 .. max_pos - 1``.

    Returns
    -------
    pd.DataFrame
        Long frame with columns ``pos_from_end`` (or ``pos_from_start``), ``label``,
        ``attention`` (mean) and ``n`` (touches averaged).
    """
    attention = np.asarray(attention, dtype=np.float64)
    offsets = np.asarray(journeys.offsets, dtype=np.int64)
    if attention.shape != (offsets[-1],):
        raise ValueError(f"attention must have shape ({offsets[-1]},), got {attention.shape}")
    lengths = np.diff(offsets)
    jid = np.repeat(np.arange(len(lengths)), lengths)  # (n_touch,) journey of each touch
    pos = np.arange(offsets[-1]) - offsets[jid]  # 0-based from the first touch
    if from_end:
        pos = lengths[jid] - 1 - pos
    col = "pos_from_end" if from_end else "pos_from_start"
    frame = pd.DataFrame(
        {col: pos, "label": np.asarray(journeys.label)[jid].astype(np.int64), "attention": attention}
    )
    frame = frame[frame[col] < max_pos]
    out = frame.groupby([col, "label"], as_index=False).agg(
        attention=("attention", "mean"), n=("attention", "size")
    )
    return out.sort_values(["label", col], ignore_index=True)
